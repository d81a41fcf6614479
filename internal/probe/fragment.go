package probe

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment/contract"
)

// DefaultInter is HAProxy's check interval when a server line sets none,
// which also bounds a whole check when the backend has no timeout check.
const DefaultInter = 2 * time.Second

// Fragment is the health check of a fragment, read back from its text:
// how HAProxy connects to a server of its backend, and the tcp-check
// rules it runs there.
type Fragment struct {
	// Backend is the backend's name.
	Backend string
	// Connect is how the check opens its connection: the options of the
	// tcp-check connect rule and the TLS options of the server line.
	Connect Connect
	// Rules are the tcp-check rules after the connect rule, in order.
	Rules []Rule
	// Timing is the server line's check timing.
	Timing Timing
	// TimeoutCheck is the backend's timeout check, or zero when unset.
	TimeoutCheck time.Duration
	// Contract is the fragment's contract line, which names the messages
	// its rules judge; nil in a fragment without one.
	Contract *contract.Line
}

// Timing is a server's check timing, as its server line sets it.
type Timing struct {
	// Inter is the check interval (DefaultInter when unset); Fastinter
	// and Downinter are zero when unset.
	Inter, Fastinter, Downinter time.Duration
	// Rise and Fall are zero when unset.
	Rise, Fall int
}

// Connect is how a check connects to a server.
type Connect struct {
	// TLS reports whether the check speaks TLS (connect ssl).
	TLS bool
	// SNI is the server name sent (connect sni), or empty.
	SNI string
	// ALPN are the protocols offered (connect alpn).
	ALPN []string
	// Linger reports whether the check closes its connection normally
	// (connect linger) rather than with a TCP reset, HAProxy's default.
	Linger bool
	// SendProxyV2 reports whether the check starts with a PROXY protocol
	// version 2 header (connect send-proxy, with the server line's
	// send-proxy-v2): for a check, HAProxy sends the LOCAL command, which
	// carries no addresses.
	SendProxyV2 bool
	// VerifyNone reports whether any server certificate is accepted
	// (server verify none); otherwise it is verified, as HAProxy does by
	// default.
	VerifyNone bool
	// CAFile is the server line's ca-file: a path, or "@system-ca".
	CAFile string
}

// RuleKind is what a tcp-check rule does.
type RuleKind int

// The tcp-check rules a fragment may hold after its connect rule.
const (
	// Send sends bytes (send-binary).
	Send RuleKind = iota + 1
	// ExpectBinary passes when the received bytes contain Data (expect
	// binary).
	ExpectBinary
	// ExpectRBinary passes when the received bytes, dumped as upper-case
	// hex, match Pattern (expect rbinary).
	ExpectRBinary
	// ExpectRString passes when the received bytes match Pattern (expect
	// rstring).
	ExpectRString
)

// matcher is a compiled regular expression.
type matcher interface {
	Match(b []byte) bool
}

// errNoPCRE is the error of compiling a pattern where PCRE2 is not
// available.
var errNoPCRE = errors.New("this build of haproxycheck-probe cannot run PCRE2 patterns")

// Rule is one tcp-check rule.
type Rule struct {
	// Kind is what the rule does.
	Kind RuleKind
	// Data is what a Send rule sends, or what an ExpectBinary rule looks
	// for.
	Data []byte
	// Pattern is the regular expression of an ExpectRBinary or
	// ExpectRString rule, and Matcher the pattern compiled with PCRE2, as
	// HAProxy compiles it; nil where this build cannot run PCRE2.
	Pattern string
	Matcher matcher
	// Inverse reports whether the rule passes when its pattern does not
	// match (expect !).
	Inverse bool
	// MinRecv is an expect rule's min-recv, or -1 when unset: with it,
	// a mismatch fails the check at once instead of waiting for more.
	MinRecv int
	// ErrorStatus is the status the rule ends the check with when it
	// fails: its error-status, or L7RSP.
	ErrorStatus Status
	// Comment is the rule's comment, and OnError its on-error text.
	Comment, OnError string
	// Line is the rule's line in the fragment.
	Line int
}

// String names the rule as the fragment writes it, without its data.
func (r Rule) String() string {
	var s string
	switch r.Kind {
	case Send:
		s = fmt.Sprintf("send-binary (%d bytes)", len(r.Data))
	case ExpectBinary:
		s = fmt.Sprintf("expect binary %x", r.Data)
	case ExpectRBinary:
		s = "expect rbinary " + shorten(r.Pattern)
	case ExpectRString:
		s = "expect rstring " + shorten(r.Pattern)
	}
	if r.Inverse {
		s = strings.Replace(s, "expect ", "expect ! ", 1)
	}
	if r.MinRecv >= 0 && r.Kind != Send {
		s = strings.Replace(s, "expect", fmt.Sprintf("expect min-recv %d", r.MinRecv), 1)
	}
	if r.Comment != "" {
		s += fmt.Sprintf(" (%s)", r.Comment)
	}
	return fmt.Sprintf("line %d: %s", r.Line, s)
}

// shorten returns a pattern, or its start when it is long, for a rule's
// name.
func shorten(pattern string) string {
	const max = 40
	if len(pattern) <= max {
		return pattern
	}
	return fmt.Sprintf("%s... (%d characters)", pattern[:max], len(pattern))
}

// ParseFragment reads the health check of the one backend in text, the
// text of a fragment. It reads what decides a check's outcome (the
// tcp-check rules, timeout check, and the server line's inter and TLS
// options) and rejects tcp-check rules it cannot run as HAProxy does.
func ParseFragment(text []byte) (*Fragment, error) {
	f := &Fragment{Timing: Timing{Inter: DefaultInter}}
	var connected, inBackend, server, sendProxy bool
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, contract.Prefix) {
			if f.Contract != nil {
				return nil, fmt.Errorf("line %d: a second contract line", n)
			}
			l, err := contract.Parse(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			f.Contract = &l
			continue
		}
		words, err := splitLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if len(words) == 0 {
			continue
		}
		if sectionKeywords[words[0]] {
			if inBackend || f.Backend != "" {
				return nil, fmt.Errorf("line %d: a fragment has one backend section and nothing after it", n)
			}
			if words[0] != "backend" || len(words) != 2 {
				return nil, fmt.Errorf("line %d: want \"backend NAME\", the section of a fragment; got %q", n, line)
			}
			f.Backend, inBackend = words[1], true
			continue
		}
		if !inBackend {
			return nil, fmt.Errorf("line %d: %q is outside a backend section", n, line)
		}
		switch {
		case words[0] == "tcp-check" && len(words) == 1:
			return nil, fmt.Errorf("line %d: tcp-check without a rule", n)
		case words[0] == "tcp-check" && words[1] == "connect":
			if connected || len(f.Rules) > 0 {
				return nil, fmt.Errorf("line %d: the connect rule must be the first tcp-check rule, and the only one", n)
			}
			connected = true
			if sendProxy, err = f.Connect.parseConnect(words[2:]); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
		case words[0] == "tcp-check":
			r, err := parseRule(words[1:])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
			r.Line = n
			f.Rules = append(f.Rules, r)
		case words[0] == "timeout" && len(words) == 3 && words[1] == "check":
			if f.TimeoutCheck, err = parseTime(words[2]); err != nil {
				return nil, fmt.Errorf("line %d: timeout check: %v", n, err)
			}
		case words[0] == "server" || words[0] == "server-template":
			if server {
				return nil, fmt.Errorf("line %d: a fragment has one server line", n)
			}
			server = true
			if err := f.parseServer(words); err != nil {
				return nil, fmt.Errorf("line %d: %v", n, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	switch {
	case f.Backend == "":
		return nil, errors.New("no backend section: is this a fragment generated by protoc-gen-haproxycheck?")
	case !connected:
		return nil, fmt.Errorf("backend %s has no tcp-check connect rule", f.Backend)
	case len(f.Rules) == 0 || f.Rules[0].Kind != Send:
		return nil, fmt.Errorf("backend %s sends nothing after its connect rule (no tcp-check send-binary)", f.Backend)
	case sendProxy && !f.Connect.SendProxyV2:
		return nil, fmt.Errorf("backend %s: tcp-check connect send-proxy goes with the server's send-proxy-v2 in a generated fragment; a probe cannot send the PROXY protocol version 1 line of HAProxy's own addresses", f.Backend)
	}
	// The server's send-proxy-v2 only sets the version: a connect rule
	// without send-proxy sends none.
	f.Connect.SendProxyV2 = sendProxy
	return f, nil
}

// sectionKeywords are the keywords that start a section of an HAProxy
// configuration.
var sectionKeywords = map[string]bool{
	"global": true, "defaults": true, "frontend": true, "backend": true, "listen": true,
	"resolvers": true, "peers": true, "userlist": true, "mailers": true, "program": true,
	"http-errors": true, "ring": true, "cache": true,
}

// parseConnect reads the options of a tcp-check connect rule, and
// reports whether it sends the PROXY protocol.
func (c *Connect) parseConnect(opts []string) (sendProxy bool, err error) {
	for i := 0; i < len(opts); i++ {
		switch opts[i] {
		case "ssl":
			c.TLS = true
		case "linger":
			c.Linger = true
		case "send-proxy":
			sendProxy = true
		case "sni", "alpn", "comment":
			if i+1 >= len(opts) {
				return false, fmt.Errorf("tcp-check connect %s takes a value", opts[i])
			}
			i++
			switch opts[i-1] {
			case "sni":
				c.SNI = opts[i]
			case "alpn":
				c.ALPN = strings.Split(opts[i], ",")
			}
		default:
			return false, fmt.Errorf("tcp-check connect option %q is not one a generated fragment uses (send-proxy, ssl, sni, alpn, linger, comment)", opts[i])
		}
	}
	return sendProxy, nil
}

// parseServer reads a server or server-template line's check timing,
// certificate verification and PROXY protocol version; its other options
// do not change the check.
func (f *Fragment) parseServer(words []string) error {
	for i := 1; i < len(words); i++ {
		if words[i] == "send-proxy-v2" {
			f.Connect.SendProxyV2 = true
			continue
		}
		if i+1 >= len(words) {
			break
		}
		var err error
		switch words[i] {
		case "inter":
			f.Timing.Inter, err = parseTime(words[i+1])
		case "fastinter":
			f.Timing.Fastinter, err = parseTime(words[i+1])
		case "downinter":
			f.Timing.Downinter, err = parseTime(words[i+1])
		case "rise":
			f.Timing.Rise, err = parseCount(words[i+1])
		case "fall":
			f.Timing.Fall, err = parseCount(words[i+1])
		case "verify":
			switch words[i+1] {
			case "none":
				f.Connect.VerifyNone = true
			case "required":
				f.Connect.VerifyNone = false
			default:
				err = fmt.Errorf("verify %q is neither none nor required", words[i+1])
			}
		case "ca-file":
			f.Connect.CAFile = words[i+1]
		default:
			continue
		}
		if err != nil {
			return err
		}
		i++
	}
	return nil
}

// parseCount reads a positive count, as rise and fall take.
func parseCount(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a positive count", s)
	}
	return int(n), nil
}

// parseRule reads a tcp-check rule other than connect; words start after
// "tcp-check".
func parseRule(words []string) (Rule, error) {
	r := Rule{MinRecv: -1, ErrorStatus: L7RSP}
	switch words[0] {
	case "send-binary":
		if len(words) < 2 {
			return r, errors.New("tcp-check send-binary takes hex")
		}
		data, err := hex.DecodeString(words[1])
		if err != nil {
			return r, fmt.Errorf("tcp-check send-binary: %v", err)
		}
		r.Kind, r.Data = Send, data
		return r, r.options(words[2:])
	case "expect":
		return r, r.parseExpect(words[1:])
	}
	return r, fmt.Errorf("tcp-check %s is not a rule a generated fragment uses (connect, send-binary, expect)", words[0])
}

// parseExpect reads the options and the pattern of an expect rule, in any
// order, as HAProxy does.
func (r *Rule) parseExpect(words []string) error {
	var rest []string
	for i := 0; i < len(words); i++ {
		if words[i] == "!" {
			r.Inverse = true
			continue
		}
		if i+1 >= len(words) {
			return fmt.Errorf("tcp-check expect %s takes a value", words[i])
		}
		switch words[i] {
		case "binary":
			data, err := hex.DecodeString(words[i+1])
			if err != nil {
				return fmt.Errorf("tcp-check expect binary: %v", err)
			}
			r.Kind, r.Data = ExpectBinary, data
		case "rbinary", "rstring":
			r.Kind, r.Pattern = ExpectRBinary, words[i+1]
			if words[i] == "rstring" {
				r.Kind = ExpectRString
			}
			m, err := compilePCRE(r.Pattern)
			switch {
			case errors.Is(err, errNoPCRE):
			case err != nil:
				return fmt.Errorf("tcp-check expect %s: %v", words[i], err)
			default:
				r.Matcher = m
			}
		case "error-status":
			status, err := parseStatus(words[i+1])
			if err != nil {
				return fmt.Errorf("tcp-check expect error-status: %v", err)
			}
			r.ErrorStatus = status
		case "min-recv":
			n, err := strconv.Atoi(words[i+1])
			if err != nil || n < 0 {
				return fmt.Errorf("tcp-check expect min-recv %q is not a byte count", words[i+1])
			}
			r.MinRecv = n
		default:
			rest = append(rest, words[i], words[i+1])
		}
		i++
	}
	if r.Kind == 0 {
		return errors.New("tcp-check expect has none of binary, rbinary and rstring, the patterns a generated fragment uses")
	}
	return r.options(rest)
}

// options reads the options of a rule that only describe it.
func (r *Rule) options(words []string) error {
	for i := 0; i < len(words); i += 2 {
		if i+1 >= len(words) {
			return fmt.Errorf("tcp-check option %s takes a value", words[i])
		}
		switch words[i] {
		case "comment":
			r.Comment = words[i+1]
		case "on-error":
			r.OnError = words[i+1]
		case "on-success", "tout-status", "ok-status", "status-code":
		default:
			return fmt.Errorf("tcp-check option %q is not one a generated fragment uses", words[i])
		}
	}
	return nil
}

// parseTime reads an HAProxy time: a number with an optional unit, by
// default milliseconds.
func parseTime(s string) (time.Duration, error) {
	digits := strings.TrimRight(s, "abcdefghijklmnopqrstuvwxyz")
	n, err := strconv.ParseUint(digits, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%q is not an HAProxy time", s)
	}
	unit, ok := map[string]time.Duration{
		"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
	}[s[len(digits):]]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown time unit", s)
	}
	return time.Duration(n) * unit, nil
}

// splitLine splits a configuration line into words as HAProxy does:
// white space separates words, double quotes group them (with backslash
// escapes), single quotes group them literally, and '#' outside quotes
// starts a comment.
func splitLine(line string) ([]string, error) {
	var (
		words   []string
		word    strings.Builder
		inWord  bool
		quote   byte
		escaped bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case escaped:
			word.WriteByte(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			word.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == '#':
			i = len(line)
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
