package probe

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// End is how the server ended the check's call, as a gRPC client reads it.
type End int

// The ways a call ends.
const (
	// NotEnded: the server has not ended the call.
	NotEnded End = iota
	// EndTrailers: trailers, HEADERS with END_STREAM after the response
	// headers.
	EndTrailers
	// EndTrailersOnly: a Trailers-Only answer, response headers with
	// END_STREAM.
	EndTrailersOnly
	// EndData: DATA with END_STREAM, which no gRPC server sends; proxies
	// end their error pages so.
	EndData
	// EndReset: RST_STREAM on the call's stream.
	EndReset
	// EndRefused: a GOAWAY whose last stream is below the call's.
	EndRefused
)

var endNames = [...]string{
	NotEnded: "not ended", EndTrailers: "trailers", EndTrailersOnly: "trailers-only",
	EndData: "DATA with END_STREAM", EndReset: "RST_STREAM", EndRefused: "GOAWAY",
}

// String names the way a call ended: "trailers", "RST_STREAM"...
func (e End) String() string {
	if e < 0 || int(e) >= len(endNames) {
		return fmt.Sprintf("End(%d)", int(e))
	}
	return endNames[e]
}

// MarshalText names the way a call ended in JSON.
func (e End) MarshalText() ([]byte, error) {
	return []byte(e.String()), nil
}

// GRPCStatus is the grpc-status of a call.
type GRPCStatus struct {
	// Present reports whether the answer has a grpc-status header.
	Present bool
	// Code is the status code; codes.Internal, as gRPC clients take it,
	// when the value is not a decimal number.
	Code codes.Code
	// Value is the header's value as sent.
	Value string
}

// Valid reports whether the value is a status code, as gRPC requires.
func (s GRPCStatus) Valid() bool {
	_, err := strconv.ParseUint(s.Value, 10, 32)
	return s.Present && err == nil
}

// String describes the status: "14 Unavailable", `"OK" (not a number)`.
func (s GRPCStatus) String() string {
	switch {
	case !s.Present:
		return "none"
	case !s.Valid():
		return fmt.Sprintf("%q (not a number)", s.Value)
	}
	return fmt.Sprintf("%d %s", s.Code, s.Code)
}

// MarshalJSON writes the status as its code and value, or null when there
// is none.
func (s GRPCStatus) MarshalJSON() ([]byte, error) {
	if !s.Present {
		return []byte("null"), nil
	}
	return json.Marshal(struct {
		Code  uint32 `json:"code"`
		Name  string `json:"name"`
		Value string `json:"value"`
	}{uint32(s.Code), s.Code.String(), s.Value})
}

// Call is the server's answer to the check's call, on its stream, as a
// gRPC client reads it.
type Call struct {
	// HTTPStatus is the :status of the response headers, 0 when there
	// were none.
	HTTPStatus int `json:"http_status,omitempty"`
	// ContentType and Encoding are the content-type and grpc-encoding of
	// the response headers.
	ContentType string `json:"content_type,omitempty"`
	Encoding    string `json:"grpc_encoding,omitempty"`
	// GRPCStatus is the call's grpc-status, from the trailers or a
	// Trailers-Only answer, and GRPCMessage its grpc-message,
	// percent-decoded.
	GRPCStatus  GRPCStatus `json:"grpc_status"`
	GRPCMessage string     `json:"grpc_message,omitempty"`
	// End is how the server ended the call, and EndIncomplete reports that
	// only the header of the frame that ended it had arrived.
	End           End  `json:"end"`
	EndIncomplete bool `json:"end_incomplete,omitempty"`
	// ResetCode is the error code of the RST_STREAM that ended the call.
	ResetCode http2.ErrCode `json:"-"`
	// GoAway is the server's GOAWAY, when it sent one.
	GoAway *Frame `json:"goaway,omitempty"`
}

// callOf reads the call from the server's frames.
func callOf(received Exchange) Call {
	var call Call
	headers := false
	for i := range received.Frames {
		f := &received.Frames[i]
		switch {
		case f.Type == http2.FrameGoAway && !f.Incomplete:
			call.GoAway = f
			if call.End == NotEnded && f.LastStreamID != nil && *f.LastStreamID < wire.StreamID {
				call.End = EndRefused
			}
		case f.Stream != wire.StreamID || call.End != NotEnded:
		case f.Type == http2.FrameRSTStream:
			call.End, call.EndIncomplete = EndReset, f.Incomplete
			if f.ErrorCode != nil {
				call.ResetCode = *f.ErrorCode
			}
		case f.Type == http2.FrameData && f.Flags.Has(http2.FlagDataEndStream):
			call.End, call.EndIncomplete = EndData, f.Incomplete
		case f.Type == http2.FrameHeaders && !headers:
			headers = true
			if status, err := strconv.Atoi(valueOf(f, ":status")); err == nil {
				call.HTTPStatus = status
			}
			call.ContentType, call.Encoding = valueOf(f, "content-type"), valueOf(f, "grpc-encoding")
			if f.Flags.Has(http2.FlagHeadersEndStream) {
				call.End, call.EndIncomplete = EndTrailersOnly, f.Incomplete
				call.trailers(f)
			}
		case f.Type == http2.FrameHeaders && f.Flags.Has(http2.FlagHeadersEndStream):
			call.End, call.EndIncomplete = EndTrailers, f.Incomplete
			call.trailers(f)
		}
	}
	return call
}

// valueOf returns the value of the header field name of f.
func valueOf(f *Frame, name string) string {
	v, _ := f.field(name)
	return v
}

// trailers reads grpc-status and grpc-message from the trailers f.
func (call *Call) trailers(f *Frame) {
	value, present := f.field("grpc-status")
	call.GRPCStatus = GRPCStatus{Present: present, Value: value, Code: codes.Internal}
	if n, err := strconv.ParseUint(value, 10, 32); err == nil {
		call.GRPCStatus.Code = codes.Code(n)
	}
	call.GRPCMessage = valueOf(f, "grpc-message")
	if m, err := url.PathUnescape(call.GRPCMessage); err == nil {
		call.GRPCMessage = m
	}
}

// endText describes how the call ended, for a reason.
func (call Call) endText() string {
	s := call.End.String()
	if call.End == EndReset {
		s += " " + call.ResetCode.String()
	}
	if call.EndIncomplete {
		s += " (only its frame header had arrived)"
	}
	return s
}

// grpcContentType reports whether the answer's content-type is gRPC's.
func (call Call) grpcContentType() bool {
	return call.ContentType == "application/grpc" || strings.HasPrefix(call.ContentType, "application/grpc+") ||
		strings.HasPrefix(call.ContentType, "application/grpc;")
}
