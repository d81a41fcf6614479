// Package contract is what a reader of a generated fragment may rely on
// finding in it, besides HAProxy's own directives: one comment line, the
// contract line, that names what the check's rules judge.
//
//	# haproxycheck-contract: v1 request=grpc.health.v1.HealthCheckRequest response=grpc.health.v1.HealthCheckResponse healthy=00000000020801 not-serving=00000000020802 not-serving-drains=true drain-time=4000ms
//
// The fragment renderer (internal/fragment) writes it, and the probe
// (internal/probe) reads it; neither reads what the other writes in any
// other comment. HAProxy ignores it, as every comment. The rules stay the
// authority on what passes: the contract line names the messages, so that a
// reader can explain an answer in terms of them.
package contract

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Prefix starts the contract line.
const Prefix = "# haproxycheck-contract:"

// Version is the version of the contract this package writes and reads.
const Version = "v1"

// Line is the contract line of a fragment.
type Line struct {
	// RequestType and ResponseType are the full names of the message types
	// of the check's request and of its responses.
	RequestType, ResponseType string
	// Healthy is the healthy response, as a gRPC Length-Prefixed-Message.
	Healthy []byte
	// NotServing is the response of a server that says it is not
	// serving, as a gRPC Length-Prefixed-Message; nil when the check has
	// none.
	NotServing []byte
	// NotServingDrains reports whether the check drains a server that
	// answers NotServing (status L7OKC) rather than failing it.
	NotServingDrains bool
	// DrainTime is the longest HAProxy takes, with the check's timing, to
	// stop sending new connections to a server once it says it is not
	// serving: how long a server waits before it stops.
	DrainTime time.Duration
}

// String returns the line as a fragment holds it.
func (l Line) String() string {
	notServing := "-"
	if l.NotServing != nil {
		notServing = hex.EncodeToString(l.NotServing)
	}
	return fmt.Sprintf("%s %s request=%s response=%s healthy=%s not-serving=%s not-serving-drains=%t drain-time=%dms",
		Prefix, Version, l.RequestType, l.ResponseType, hex.EncodeToString(l.Healthy), notServing, l.NotServingDrains, l.DrainTime.Milliseconds())
}

// Parse reads line, which starts with Prefix.
func Parse(line string) (Line, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), Prefix)
	if !ok {
		return Line{}, fmt.Errorf("not a contract line: it does not start with %q", Prefix)
	}
	words := strings.Fields(rest)
	if len(words) == 0 || words[0] != Version {
		return Line{}, fmt.Errorf("contract %q: this reader knows %s only", strings.Join(words[:min(1, len(words))], ""), Version)
	}
	var l Line
	seen := map[string]bool{}
	for _, w := range words[1:] {
		key, value, ok := strings.Cut(w, "=")
		if !ok || seen[key] {
			return Line{}, fmt.Errorf("contract: %q is not a new key=value", w)
		}
		seen[key] = true
		var err error
		switch key {
		case "request":
			l.RequestType = value
		case "response":
			l.ResponseType = value
		case "healthy":
			l.Healthy, err = hex.DecodeString(value)
		case "not-serving":
			if value != "-" {
				l.NotServing, err = hex.DecodeString(value)
			}
		case "not-serving-drains":
			l.NotServingDrains, err = strconv.ParseBool(value)
		case "drain-time":
			ms, ok := strings.CutSuffix(value, "ms")
			var n uint64
			if n, err = strconv.ParseUint(ms, 10, 32); err == nil && !ok {
				err = fmt.Errorf("want milliseconds, such as 4000ms")
			}
			l.DrainTime = time.Duration(n) * time.Millisecond
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return Line{}, fmt.Errorf("contract: %s: %v", w, err)
		}
	}
	for _, key := range []string{"request", "response", "healthy", "not-serving", "not-serving-drains", "drain-time"} {
		if !seen[key] {
			return Line{}, fmt.Errorf("contract: %s is missing", key)
		}
	}
	if len(l.Healthy) == 0 {
		return Line{}, fmt.Errorf("contract: healthy is empty")
	}
	return l, nil
}
