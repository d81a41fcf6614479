package probe

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// Verdict is a check's outcome.
type Verdict struct {
	// Class is the kind of outcome.
	Class Class `json:"class"`
	// HAProxy is the check status HAProxy reports for the same answer.
	HAProxy Status `json:"haproxy_status"`
	// Reason explains the outcome.
	Reason string `json:"reason"`
	// Client is what a gRPC client makes of the answer, as far as the
	// fragment's contract line names the messages: "healthy", "not
	// serving", "failed" or "not ended"; empty without a contract line or
	// an answer.
	Client string `json:"grpc_client,omitempty"`
	// Unseen, when a gRPC client reads the answer otherwise than the
	// check's rules, says what the rules cannot see.
	Unseen string `json:"unseen,omitempty"`
}

// The readings of an answer by a gRPC client.
const (
	clientHealthy    = "healthy"
	clientNotServing = "not serving"
	clientFailed     = "failed"
	clientNotEnded   = "not ended"
)

// verdict explains the check status that the rules gave.
func (c *check) verdict(status Status, failed *Rule) Verdict {
	v := Verdict{HAProxy: status}
	limit := c.f.Timing.Inter
	switch {
	case c.opts.Timeout > 0:
		limit = c.opts.Timeout
	case c.f.TimeoutCheck > 0 && status != L4TOUT:
		limit = c.f.TimeoutCheck
	}
	switch status {
	case L7OK:
		v.Class = Healthy
		v.Reason = fmt.Sprintf("healthy: the server ended the call with %s, a successful call with the healthy response %s",
			c.res.Call.endText(), c.healthy())
	case L7OKC:
		v.Class = Draining
		v.Reason = fmt.Sprintf("draining: the server says it is not serving (%s), so HAProxy stops sending it new connections (NOLB)",
			c.notServingText())
	case L4CON:
		v.Class = ConnectionFailed
		v.Reason = fmt.Sprintf("cannot connect to %s: %v", c.res.Address, c.connErr)
		if errors.Is(c.connErr, syscall.ECONNREFUSED) {
			v.Reason = fmt.Sprintf("connection refused: nothing listens on %s", c.res.Address)
		}
	case L4TOUT:
		v.Class = ConnectionFailed
		v.Reason = fmt.Sprintf("no TCP connection to %s within %v", c.res.Address, limit)
	case SOCKERR:
		v.Class = ConnectionFailed
		v.Reason = fmt.Sprintf("the connection failed before the server answered anything: %v", c.connErr)
	case L6TOUT:
		v.Class = TLSFailure
		v.Reason = fmt.Sprintf("no TLS handshake with %s within %v", c.res.Address, limit)
	case L6RSP:
		v.Class = TLSFailure
		v.Reason = "the TLS handshake failed: " + c.connErr.Error()
		switch msg := c.connErr.Error(); {
		case strings.Contains(msg, "does not look like a TLS handshake"):
			v.Reason += " (the server does not speak TLS; the fragment does)"
		case strings.Contains(msg, "no application protocol"):
			v.Reason += " (the server does not offer ALPN h2, as every gRPC server over TLS does)"
		}
	case L7TOUT:
		v.Class = Timeout
		v.Reason = fmt.Sprintf("the server did not end the call within %v (%s waits until the call on stream %d ends): %s",
			limit, c.ruleName(failed), wire.StreamID, c.answerProblem())
	default:
		v.Class = WrongAnswer
		v.Reason = fmt.Sprintf("%s failed: %s", c.ruleName(failed), c.answerProblem())
		if failed != nil && failed.OnError != "" {
			v.Reason += fmt.Sprintf(" (HAProxy logs %q)", failed.OnError)
		}
	}
	switch {
	case status == L7OK || status == L7OKC:
	case c.alpnOff:
		v.Class = TLSFailure
		v.Reason = fmt.Sprintf("the server chose ALPN %q, not h2, so it does not speak HTTP/2 on this connection; %s", c.res.TLS.ALPN, v.Reason)
	case !c.f.Connect.TLS && isTLSRecord(c.received):
		v.Class = TLSFailure
		v.Reason += " (the server speaks TLS; the fragment does not)"
	}
	if c.f.Contract != nil && len(c.received) > 0 {
		v.Client = c.clientReading()
		v.Unseen = c.unseen(status, v.Client)
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

// clientReading returns what a gRPC client makes of the answer.
func (c *check) clientReading() string {
	call, msgs := c.res.Call, c.res.Received.Messages
	switch {
	case notHTTP2(c.received) != "" || len(c.res.Received.Frames) > 0 && c.res.Received.Frames[0].Type != http2.FrameSettings:
		return clientFailed // a client fails the connection at once
	case c.res.Received.ConnectionError && call.End == NotEnded:
		return clientFailed // a client fails the connection, and the call with it
	case call.End == EndRefused, call.HTTPStatus != 0 && call.HTTPStatus != 200:
		return clientFailed // whatever follows, the call fails
	case call.End == NotEnded:
		return clientNotEnded
	case call.HTTPStatus != 200 || !call.grpcContentType() || call.End != EndTrailers ||
		!call.GRPCStatus.Valid() || call.GRPCStatus.Code != codes.OK || len(msgs) != 1 || !msgs[0].Complete() || msgs[0].Compressed:
		return clientFailed
	case bytes.Equal(wire.Message(msgs[0].raw), c.f.Contract.Healthy):
		return clientHealthy
	case c.f.Contract.NotServing != nil && bytes.Equal(wire.Message(msgs[0].raw), c.f.Contract.NotServing):
		return clientNotServing
	}
	return clientFailed
}

// unseen says what the rules cannot see, when the gRPC client's reading
// of the answer and the rules' status differ; "" when they agree.
func (c *check) unseen(status Status, client string) string {
	agree := map[string]bool{
		clientHealthy:    status == L7OK,
		clientNotServing: status == L7OKC || status == L7RSP && !c.f.Contract.NotServingDrains,
		clientFailed:     status == L7RSP || status == L7TOUT,
		// The rules fail an answer that has not ended once it can never
		// be a healthy call, which they may see before its last frame is
		// whole.
		clientNotEnded: status == L7TOUT || status == L7RSP && (c.lastRead || c.res.Received.Truncated),
	}[client]
	if agree {
		return ""
	}
	var why []string
	if len(c.received) >= bufSize-1 {
		why = append(why, fmt.Sprintf("the answer fills HAProxy's check buffer (tune.bufsize, %d bytes), which holds all that a check sees", bufSize))
	}
	for _, f := range c.res.Received.Frames {
		switch {
		case f.Type == http2.FrameData && f.Stream == wire.StreamID && f.Flags.Has(http2.FlagDataPadded):
			why = append(why, "the message is in a PADDED DATA frame, which the check does not read")
		case f.Type == http2.FrameHeaders && f.Flags&^headersFlagsMask != 0,
			f.Type == http2.FrameData && f.Flags&^(http2.FlagDataEndStream|http2.FlagDataPadded) != 0:
			why = append(why, fmt.Sprintf("a %s frame has flags that HTTP/2 does not define (%s), which the check does not read", f.Type, strings.Join(f.FlagNames(), "|")))
		case f.Type == http2.FrameHeaders && f.Stream == wire.StreamID:
			if status, ok := f.field(":status"); ok && strings.HasPrefix(status, "1") {
				why = append(why, fmt.Sprintf("the server sent an informational :status %s first, which the check does not read", status))
			}
		}
	}
	if client == clientHealthy && c.res.Call.GRPCStatus.Present && !hasGRPCStatusZero(c.received, 0) {
		why = append(why, "grpc-status 0 is sent as a reference to HPACK's dynamic table, which the check cannot read")
	}
	if len(why) == 0 {
		why = append(why, "the answer's frames read otherwise than a gRPC client reads them")
	}
	return fmt.Sprintf("a gRPC client finds this call %s, but HAProxy's check does not: %s", client, strings.Join(why, "; "))
}

// answerProblem says, as precisely as the answer allows, why it is not a
// successful call with the healthy response.
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
	case call.GoAway != nil && call.GoAway.ErrorCode != nil && *call.GoAway.ErrorCode != http2.ErrCodeNo:
		return "the server refused the connection with GOAWAY " + goAwayText(call.GoAway)
	case call.End == EndRefused:
		return "the server refused the call with GOAWAY " + goAwayText(call.GoAway)
	case call.End == EndReset:
		return "the server reset the call with " + call.endText()
	case rec.ConnectionError && call.End == NotEnded && (call.HTTPStatus == 0 || call.HTTPStatus == 200 && call.grpcContentType()):
		// Response headers that already failed the call are named below.
		return rec.Problem + closed
	case call.HTTPStatus == 0 && call.End != NotEnded:
		return fmt.Sprintf("the server ended the call with %s, without the healthy response", call.endText())
	case call.HTTPStatus == 0 && call.GoAway != nil:
		return "the server sent GOAWAY " + goAwayText(call.GoAway) + " without answering the call"
	case call.HTTPStatus == 0:
		return fmt.Sprintf("the server sent no response headers on stream %d%s", wire.StreamID, closed)
	case call.HTTPStatus != 200:
		return fmt.Sprintf("HTTP status %d (content-type %q): not a gRPC answer", call.HTTPStatus, call.ContentType)
	case !call.grpcContentType():
		s := fmt.Sprintf("content-type %q: an HTTP/2 answer, but not a gRPC one", call.ContentType)
		if call.End == EndData {
			s += "; it ended the stream with DATA instead of trailers"
		}
		return s
	}
	for _, m := range rec.Messages {
		switch {
		case m.Compressed:
			return fmt.Sprintf("the response message is compressed (grpc-encoding %q), though the check offers no grpc-accept-encoding; a check matches only uncompressed messages", call.Encoding)
		case !m.Complete():
			return fmt.Sprintf("the response message is incomplete (%d of %d bytes)%s", len(m.raw), m.Length, closed)
		}
	}
	healthy := c.healthy()
	switch n := len(rec.Messages); {
	case n > 1:
		return fmt.Sprintf("the server sent %d messages, where a unary call has one", n)
	case n == 1 && !bytes.Equal(rec.Messages[0].raw, healthy.raw):
		return fmt.Sprintf("the server answered %s, not the healthy %s%s", rec.Messages[0].String(), healthy, c.statusAfter())
	case call.End == NotEnded && n == 1:
		return "the server sent the healthy response but did not end the call" + closed
	case call.End == NotEnded:
		return "the server did not answer the call" + closed
	case call.End == EndData:
		return "the server ended the stream with DATA, without trailers or grpc-status"
	case call.GRPCStatus.Present && (!call.GRPCStatus.Valid() || call.GRPCStatus.Code != codes.OK):
		s := fmt.Sprintf("grpc-status %s, grpc-message %q%s", call.GRPCStatus, call.GRPCMessage, c.statusHint())
		if n == 1 {
			s = "the healthy response, then " + s
		}
		return s
	case !call.GRPCStatus.Present:
		return fmt.Sprintf("the call ended with %s that have no grpc-status", call.endText())
	case n == 0:
		return "the call ended with grpc-status 0 but without a response message"
	}
	return "the answer is not a successful call with the healthy response, as the check reads it"
}

// statusAfter describes the grpc-status after a message that is not the
// healthy one, when it is not OK.
func (c *check) statusAfter() string {
	if s := c.res.Call.GRPCStatus; s.Present && (!s.Valid() || s.Code != codes.OK) {
		return fmt.Sprintf(", and grpc-status %s", s)
	}
	return ""
}

// goAwayText describes a GOAWAY frame: its code, last stream and debug
// data.
func goAwayText(f *Frame) string {
	var code http2.ErrCode
	if f.ErrorCode != nil {
		code = *f.ErrorCode
	}
	var last uint32
	if f.LastStreamID != nil {
		last = *f.LastStreamID
	}
	s := fmt.Sprintf("%s last stream %d", code, last)
	if f.DebugData != "" {
		s += fmt.Sprintf(" %q", f.DebugData)
	}
	return s
}

// statusHints explain the usual cause of a gRPC status code in a check.
var statusHints = map[codes.Code]string{
	codes.DeadlineExceeded: "the server gave up at the check's grpc-timeout: it answers more slowly than the check waits",
	codes.NotFound:         "the server does not know the service the check asks about",
	codes.PermissionDenied: "the server refuses the check's credentials; set check.metadata",
	codes.Unavailable:      "the server is not serving",
	codes.Unauthenticated:  "the server wants credentials; set check.metadata",
}

// statusHint explains the usual cause of the call's gRPC status code.
func (c *check) statusHint() string {
	s := c.res.Call.GRPCStatus
	if !s.Valid() {
		return ": gRPC clients fail a call whose grpc-status is not a decimal number"
	}
	if s.Code == codes.Unimplemented {
		return fmt.Sprintf(": the server does not implement %s: a server of another service, or one without this health service", c.path())
	}
	if hint, ok := statusHints[s.Code]; ok {
		return ": " + hint
	}
	return ""
}

// path is the :path the check sent.
func (c *check) path() string {
	for _, f := range c.res.Sent.Frames {
		if p, ok := f.field(":path"); ok {
			return p
		}
	}
	return "the check's method"
}

// healthy returns the healthy response: the contract's, or in a fragment
// without one, the message that its last binary rule looks for.
func (c *check) healthy() Message {
	var m Message
	var problem string
	if c.f.Contract != nil {
		if msgs := splitMessages(c.f.Contract.Healthy, &problem); len(msgs) == 1 && problem == "" {
			m = msgs[0]
		}
		m.decode(c.f.Contract.ResponseType, c.opts.Files)
		return m
	}
	for _, r := range c.f.Rules {
		if r.Kind == ExpectBinary {
			if msgs := splitMessages(r.Data, &problem); len(msgs) == 1 && problem == "" {
				m = msgs[0]
			}
		}
	}
	m.decode("", c.opts.Files)
	return m
}

// notServingText describes the not-serving response of the contract.
func (c *check) notServingText() string {
	if c.f.Contract == nil || c.f.Contract.NotServing == nil {
		return "its not-serving response"
	}
	var problem string
	msgs := splitMessages(c.f.Contract.NotServing, &problem)
	if len(msgs) != 1 {
		return "its not-serving response"
	}
	msgs[0].decode(c.f.Contract.ResponseType, c.opts.Files)
	return msgs[0].String()
}

// isTLSRecord reports whether b starts like a TLS record: an alert or a
// handshake of TLS 1.x.
func isTLSRecord(b []byte) bool {
	return len(b) >= 3 && (b[0] == 0x15 || b[0] == 0x16) && b[1] == 0x03
}
