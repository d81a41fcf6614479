package probe

import "fmt"

// Status is an HAProxy check status, as HAProxy's logs and stats page
// name it (HAProxy's configuration manual, "check_status").
type Status int

// The check statuses a probe gives.
const (
	// StatusNone is no status: the check has not ended.
	StatusNone Status = iota
	// L4OK: layer 4 check passed (a connect rule alone).
	L4OK
	// L4TOUT: the TCP connection timed out.
	L4TOUT
	// L4CON: the TCP connection failed (refused, unreachable).
	L4CON
	// L6OK: layer 6 (TLS) check passed.
	L6OK
	// L6TOUT: the TLS handshake timed out.
	L6TOUT
	// L6RSP: the TLS handshake failed.
	L6RSP
	// L7OK: every rule passed.
	L7OK
	// L7OKC: a rule ended the check with a conditional pass, which puts
	// the server in NOLB (drain).
	L7OKC
	// L7TOUT: the answer did not come in time.
	L7TOUT
	// L7RSP: a rule failed on the answer.
	L7RSP
	// L7STS: a rule failed on a status code.
	L7STS
	// SOCKERR: the connection failed before the answer.
	SOCKERR
)

var statusNames = [...]string{
	StatusNone: "", L4OK: "L4OK", L4TOUT: "L4TOUT", L4CON: "L4CON", L6OK: "L6OK", L6TOUT: "L6TOUT", L6RSP: "L6RSP",
	L7OK: "L7OK", L7OKC: "L7OKC", L7TOUT: "L7TOUT", L7RSP: "L7RSP", L7STS: "L7STS", SOCKERR: "SOCKERR",
}

// String returns HAProxy's name of the status, "L7OK".
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusNames[s]
}

// MarshalText names the status in JSON.
func (s Status) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// parseStatus reads HAProxy's name of a status, as an expect rule's
// ok-status, error-status or tout-status gives it.
func parseStatus(name string) (Status, error) {
	for s, n := range statusNames {
		if n == name && n != "" {
			return Status(s), nil
		}
	}
	return StatusNone, fmt.Errorf("%q is not an HAProxy check status", name)
}

// Class is the kind of a check's outcome; each has its own exit code in
// haproxycheck-probe.
type Class int

// The classes of outcomes.
const (
	// Healthy: every rule passed (L7OK).
	Healthy Class = iota
	// ConnectionFailed: no connection, or one that failed before any
	// answer (L4CON, L4TOUT, SOCKERR).
	ConnectionFailed
	// Timeout: the server did not end the call within the check's time
	// (L7TOUT).
	Timeout
	// WrongAnswer: the call ended, or the connection closed, without the
	// healthy answer (L7RSP).
	WrongAnswer
	// TLSFailure: the TLS handshake failed (L6RSP, L6TOUT), or the check
	// and the server disagree on TLS or ALPN h2, whatever status the rules
	// then give.
	TLSFailure
	// Draining: the server says it is not serving, and the check drains it
	// (L7OKC): HAProxy's NOLB state.
	Draining
)

// ClassInfo describes a class for people: its name, the exit code of
// haproxycheck-probe, the HAProxy statuses it stands for, and what it
// means. The README's table of exit codes is checked against Classes.
type ClassInfo struct {
	Class    Class
	Name     string
	ExitCode int
	Statuses []Status
	Meaning  string
}

// ExitUsage is haproxycheck-probe's exit code when it could not probe.
const ExitUsage = 1

// Classes describes every class, in the order of their exit codes.
var Classes = []ClassInfo{
	{Healthy, "healthy", 0, []Status{L7OK}, "every rule passed: a successful call with the healthy response"},
	{ConnectionFailed, "connection-failed", 2, []Status{L4CON, L4TOUT, SOCKERR}, "refused, unreachable, or reset before any answer"},
	{Timeout, "timeout", 3, []Status{L7TOUT}, "the server did not end the call in time"},
	{WrongAnswer, "wrong-answer", 4, []Status{L7RSP}, "the call ended, or the connection closed, without a successful call with the healthy response: an error grpc-status, another message, a non-200 or non-gRPC answer, RST_STREAM or GOAWAY"},
	{TLSFailure, "tls-failure", 5, []Status{L6RSP, L6TOUT}, "the handshake failed, the server did not choose ALPN h2, or TLS is on one side only"},
	{Draining, "draining", 6, []Status{L7OKC}, "the server says it is not serving, and HAProxy drains it (NOLB)"},
}

// Info returns the description of c.
func (c Class) Info() ClassInfo {
	for _, info := range Classes {
		if info.Class == c {
			return info
		}
	}
	return ClassInfo{Class: c, Name: fmt.Sprintf("Class(%d)", int(c))}
}

// String names the class: "healthy", "wrong-answer"...
func (c Class) String() string {
	return c.Info().Name
}

// MarshalText names the class in JSON.
func (c Class) MarshalText() ([]byte, error) {
	return []byte(c.String()), nil
}
