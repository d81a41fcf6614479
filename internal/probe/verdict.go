package probe

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// Class is the kind of a check's outcome; each has its own exit code in
// haproxycheck-probe.
type Class int

// The classes of outcomes, with the HAProxy check statuses of each.
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
	// healthy response (L7RSP).
	WrongAnswer
	// TLSFailure: the TLS handshake failed (L6RSP, L6TOUT), or the check
	// and the server disagree on TLS or ALPN h2, whatever status the rules
	// then give.
	TLSFailure
)

var classNames = []string{"healthy", "connection-failed", "timeout", "wrong-answer", "tls-failure"}

// String names the class: "healthy", "wrong-answer"...
func (c Class) String() string {
	return classNames[c]
}

// MarshalText names the class in JSON.
func (c Class) MarshalText() ([]byte, error) {
	return []byte(c.String()), nil
}

// Verdict is a check's outcome.
type Verdict struct {
	// Class is the kind of outcome.
	Class Class `json:"class"`
	// HAProxy is the check status HAProxy reports for the same answer:
	// L7OK, L7RSP, L7TOUT, L4CON, L4TOUT, L6RSP, L6TOUT or SOCKERR.
	HAProxy string `json:"haproxy_status"`
	// Reason explains the outcome.
	Reason string `json:"reason"`
}

// Call is the server's answer to the check's call, on its stream.
type Call struct {
	// Status is the :status of the response headers, empty when there
	// were none.
	Status string `json:"status,omitempty"`
	// ContentType and Encoding are the content-type and grpc-encoding of
	// the response headers.
	ContentType string `json:"content_type,omitempty"`
	Encoding    string `json:"grpc_encoding,omitempty"`
	// GRPCStatus is the grpc-status of the trailers, with its code's
	// name ("14 Unavailable"), and GRPCMessage its grpc-message,
	// percent-decoded.
	GRPCStatus  string `json:"grpc_status,omitempty"`
	GRPCMessage string `json:"grpc_message,omitempty"`
	// End is how the server ended the call: "trailers", "trailers-only"
	// (headers that end the stream), "RST_STREAM <code>" or "DATA" (a
	// DATA frame with END_STREAM, which no gRPC server sends), followed by
	// incompleteEnd when only the frame's header had arrived when the
	// rules judged; empty when it did not end the call.
	End string `json:"end,omitempty"`
	// GoAway is the server's GOAWAY, "<code> last stream <n>" with its
	// debug data, when it sent one.
	GoAway string `json:"goaway,omitempty"`
}

// incompleteEnd ends Call.End when the frame that ended the call had not
// arrived whole.
const incompleteEnd = " (only its frame header had arrived)"

// callOf reads the call from the server's frames.
func callOf(received Exchange) Call {
	var call Call
	for _, f := range received.Frames {
		switch {
		case f.Type == "GOAWAY":
			call.GoAway = fmt.Sprintf("%s last stream %d", f.ErrorCode, *f.LastStreamID)
			if f.DebugData != "" {
				call.GoAway += fmt.Sprintf(" %q", f.DebugData)
			}
		case f.Stream != wire.StreamID || call.End != "":
		case f.Type == "RST_STREAM":
			call.End = endBy(f, strings.TrimSpace("RST_STREAM "+f.ErrorCode))
		case f.Type == "DATA" && hasFlag(f, "END_STREAM"):
			call.End = endBy(f, "DATA")
		case f.Type == "HEADERS" && call.Status == "" && !f.Incomplete:
			call.Status, call.ContentType, call.Encoding = field(f, ":status"), field(f, "content-type"), field(f, "grpc-encoding")
			if hasFlag(f, "END_STREAM") {
				call.End = "trailers-only"
				call.trailers(f)
			}
		case f.Type == "HEADERS" && hasFlag(f, "END_STREAM") && call.Status == "":
			call.End = endBy(f, "trailers-only")
		case f.Type == "HEADERS" && hasFlag(f, "END_STREAM"):
			call.End = endBy(f, "trailers")
			call.trailers(f)
		}
	}
	return call
}

// endBy returns what Call.End says of f, a frame that ends the call, by
// name.
func endBy(f Frame, name string) string {
	if f.Incomplete {
		return name + incompleteEnd
	}
	return name
}

// trailers reads grpc-status and grpc-message from the trailers f.
func (call *Call) trailers(f Frame) {
	if s := field(f, "grpc-status"); s != "" {
		call.GRPCStatus = s
		if n, err := strconv.ParseUint(s, 10, 32); err == nil {
			call.GRPCStatus += " " + codes.Code(n).String()
		}
	}
	call.GRPCMessage = field(f, "grpc-message")
	if m, err := url.PathUnescape(call.GRPCMessage); err == nil {
		call.GRPCMessage = m
	}
}

// hasFlag reports whether f has the flag named name.
func hasFlag(f Frame, name string) bool {
	for _, fl := range f.Flags {
		if fl == name {
			return true
		}
	}
	return false
}

// field returns the value of the header field name of f.
func field(f Frame, name string) string {
	for _, hf := range f.Fields {
		if hf.Name == name {
			return hf.Value
		}
	}
	return ""
}

// verdict explains the check status that the rules gave.
func (c *check) verdict(status string, failed *Rule) Verdict {
	v := Verdict{HAProxy: status}
	limit := c.f.Inter
	switch {
	case c.opts.Timeout > 0:
		limit = c.opts.Timeout
	case c.f.TimeoutCheck > 0 && status != "L4TOUT":
		limit = c.f.TimeoutCheck
	}
	switch status {
	case "L7OK":
		v.Class = Healthy
		v.Reason = fmt.Sprintf("healthy: the server ended the call with %s, and its answer holds the healthy response %s", c.res.Call.End, c.healthyText())
	case "L4CON":
		v.Class = ConnectionFailed
		v.Reason = fmt.Sprintf("cannot connect to %s: %v", c.res.Address, c.connErr)
		if errors.Is(c.connErr, syscall.ECONNREFUSED) {
			v.Reason = fmt.Sprintf("connection refused: nothing listens on %s", c.res.Address)
		}
	case "L4TOUT":
		v.Class = ConnectionFailed
		v.Reason = fmt.Sprintf("no TCP connection to %s within %v", c.res.Address, limit)
	case "SOCKERR":
		v.Class = ConnectionFailed
		v.Reason = fmt.Sprintf("the connection failed before the server answered anything: %v", c.connErr)
	case "L6TOUT":
		v.Class = TLSFailure
		v.Reason = fmt.Sprintf("no TLS handshake with %s within %v", c.res.Address, limit)
	case "L6RSP":
		v.Class = TLSFailure
		v.Reason = "the TLS handshake failed: " + c.connErr.Error()
		switch msg := c.connErr.Error(); {
		case strings.Contains(msg, "does not look like a TLS handshake"):
			v.Reason += " (the server does not speak TLS; the fragment does)"
		case strings.Contains(msg, "no application protocol"):
			v.Reason += " (the server does not offer ALPN h2, as every gRPC server over TLS does)"
		}
	case "L7TOUT":
		v.Class = Timeout
		v.Reason = fmt.Sprintf("the server did not end the call within %v (%s waits for trailers or RST_STREAM on stream %d): %s",
			limit, c.ruleName(failed), wire.StreamID, c.answerProblem())
	case "L7RSP":
		v.Class = WrongAnswer
		v.Reason = fmt.Sprintf("%s failed: %s", c.ruleName(failed), c.answerProblem())
		if failed != nil && failed.OnError != "" {
			v.Reason += fmt.Sprintf(" (HAProxy logs %q)", failed.OnError)
		}
	}
	switch {
	case status == "L7OK":
	case c.alpnOff:
		v.Class = TLSFailure
		v.Reason = fmt.Sprintf("the server chose ALPN %q, not h2, so it does not speak HTTP/2 on this connection; %s", c.res.TLS.ALPN, v.Reason)
	case !c.f.Connect.TLS && isTLSRecord(c.received):
		v.Class = TLSFailure
		v.Reason += " (the server speaks TLS; the fragment does not)"
	}
	return v
}

// ruleName names a rule for a reason.
func (c *check) ruleName(r *Rule) string {
	if r == nil {
		return "the check"
	}
	name := fmt.Sprintf("the rule on line %d", r.Line)
	if r.Comment != "" {
		name += fmt.Sprintf(" (%q)", r.Comment)
	}
	return name
}

// answerProblem says, as precisely as the answer allows, why it is not the
// healthy one.
func (c *check) answerProblem() string {
	rec, call := c.res.Received, c.res.Call
	closed := ""
	if c.lastRead && c.connErr != nil {
		closed = "; then the server closed the connection"
	}
	switch {
	case len(c.received) == 0 && c.connErr != nil && !isTimeout(c.connErr) && c.f.Connect.TLS:
		return "the server closed the connection without answering"
	case len(c.received) == 0 && c.connErr != nil && !isTimeout(c.connErr):
		return "the server closed the connection without answering (as servers that expect TLS do with a plaintext check: does the server expect TLS?)"
	case len(c.received) == 0:
		return "the server sent nothing"
	case len(rec.Frames) == 0:
		return rec.Problem + closed
	case call.GoAway != "" && !strings.HasPrefix(call.GoAway, "NO_ERROR"):
		return "the server refused the connection with GOAWAY " + call.GoAway
	case strings.HasPrefix(call.End, "RST_STREAM"):
		return "the server reset the call with " + call.End
	case call.Status == "" && strings.HasSuffix(call.End, incompleteEnd):
		return fmt.Sprintf("the server ended the call with %s, without the healthy response", call.End)
	case call.Status == "" && call.GoAway != "":
		return "the server sent GOAWAY " + call.GoAway + " without answering the call"
	case call.Status == "":
		return fmt.Sprintf("the server sent no response headers on stream %d%s", wire.StreamID, closed)
	case call.Status != "200":
		return fmt.Sprintf("HTTP status %s (content-type %q): not a gRPC answer", call.Status, call.ContentType)
	case !strings.HasPrefix(call.ContentType, "application/grpc"):
		s := fmt.Sprintf("content-type %q: an HTTP/2 answer, but not a gRPC one", call.ContentType)
		if call.End == "DATA" {
			s += "; it ended the stream with DATA instead of trailers"
		}
		return s
	case call.GRPCStatus != "" && call.GRPCStatus != "0 OK":
		return fmt.Sprintf("grpc-status %s, grpc-message %q%s", call.GRPCStatus, call.GRPCMessage, c.statusHint())
	}
	for _, m := range rec.Messages {
		switch {
		case m.Compressed:
			return fmt.Sprintf("the response message is compressed (grpc-encoding %q), though the check offers no grpc-accept-encoding; a check matches only uncompressed messages", call.Encoding)
		case !m.Complete():
			return fmt.Sprintf("the response message is incomplete (%d of %d bytes)%s", len(m.raw), m.Length, closed)
		case !bytes.Equal(m.raw, c.healthy().raw):
			return fmt.Sprintf("the server answered %s, not the healthy %s", m.String(), c.healthyText())
		}
	}
	switch {
	case call.End == "" && len(rec.Messages) > 0:
		return "the server sent the healthy response but did not end the call" + closed
	case call.End == "":
		return "the server did not answer the call" + closed
	case len(rec.Messages) == 0:
		return "the call ended with grpc-status 0 but without a response message"
	}
	return "the answer does not hold the healthy response as one complete gRPC message"
}

// statusHint explains the usual cause of a gRPC status code in a check.
func (c *check) statusHint() string {
	code := strings.Fields(c.res.Call.GRPCStatus)[0]
	hint := map[string]string{
		"4":  "the server gave up at the check's grpc-timeout: it answers more slowly than the check waits",
		"5":  "the server does not know the service the check asks about",
		"7":  "the server refuses the check's credentials; set check.metadata",
		"12": fmt.Sprintf("the server does not implement %s: a server of another service, or one without this health service", c.path()),
		"14": "the server is not serving",
		"16": "the server wants credentials; set check.metadata",
	}[code]
	if hint == "" {
		return ""
	}
	return ": " + hint
}

// path is the :path the check sent.
func (c *check) path() string {
	for _, f := range c.res.Sent.Frames {
		if p := field(f, ":path"); p != "" {
			return p
		}
	}
	return "the check's method"
}

// healthy returns the healthy response, the message that the fragment's
// last binary rule looks for.
func (c *check) healthy() Message {
	var m Message
	for _, r := range c.f.Rules {
		if r.Kind == ExpectBinary {
			var problem string
			if msgs := splitMessages(r.Data, &problem); len(msgs) == 1 && problem == "" {
				m = msgs[0]
			}
		}
	}
	m.decode(c.f.ResponseType, c.opts.Files)
	return m
}

// healthyText describes the healthy response.
func (c *check) healthyText() string {
	return c.healthy().String()
}

// isTLSRecord reports whether b starts like a TLS record: an alert or a
// handshake of TLS 1.x.
func isTLSRecord(b []byte) bool {
	return len(b) >= 3 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03
}
