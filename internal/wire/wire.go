// Package wire encodes a health check as the bytes a gRPC client sends on a
// new HTTP/2 connection, and the gRPC message a healthy server answers.
//
// The encoding follows RFC 9113 (HTTP/2), RFC 7541 (HPACK) and gRPC's
// PROTOCOL-HTTP2.md, and is done by golang.org/x/net/http2's Framer and
// hpack Encoder. A request is exactly: the client connection preface, an
// empty SETTINGS frame, one HEADERS frame (END_HEADERS) and one DATA frame
// (END_STREAM) on stream 1. It never advertises compression
// (grpc-accept-encoding), so that a server cannot compress the answer the
// check matches.
package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// StreamID is the HTTP/2 stream that carries the check's call: the first
// client-initiated stream of the connection (RFC 9113, section 5.1.1).
const StreamID = 1

// FrameHeaderLen is the length of an HTTP/2 frame header (RFC 9113,
// section 4.1).
const FrameHeaderLen = 9

// MaxFramePayload is the largest frame payload a client may send before it
// has seen the server's SETTINGS: the initial SETTINGS_MAX_FRAME_SIZE
// (RFC 9113, section 6.5.2). The check sends its bytes blind, so the
// HEADERS block and the DATA payload must each fit.
const MaxFramePayload = 16384

// MessagePrefixLen is the length of the gRPC Length-Prefixed-Message header:
// a Compressed-Flag byte and a 4-byte big-endian Message-Length.
const MessagePrefixLen = 5

// MaxRequestMessage is the largest serialized request message that fits in
// the single DATA frame of a check.
const MaxRequestMessage = MaxFramePayload - MessagePrefixLen

// Request is one unary gRPC call.
type Request struct {
	// Scheme is the :scheme pseudo-header, "http" or "https".
	Scheme string
	// Authority is the :authority pseudo-header.
	Authority string
	// Path is the :path pseudo-header, "/<package>.<Service>/<Method>".
	Path string
	// Message is the serialized request message.
	Message []byte
	// Timeout, when not zero, is sent as grpc-timeout: the deadline after
	// which the server cancels the call.
	Timeout time.Duration
	// UserAgent, when not empty, is sent as user-agent.
	UserAgent string
	// Metadata is custom request metadata, sent after the headers gRPC
	// requires.
	Metadata []Metadata
}

// Metadata is one custom request header.
type Metadata struct {
	// Key is the header's name, in lower case.
	Key string
	// Value is the header's value.
	Value string
}

// HeaderFields returns the request's header fields in the order they are
// sent: pseudo-header fields first (RFC 9113, section 8.3), then the fields
// gRPC requires. te: trailers is required by C-core servers; grpc-go answers
// HTTP 400 without :authority.
func (r Request) HeaderFields() []hpack.HeaderField {
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: r.Scheme},
		{Name: ":path", Value: r.Path},
		{Name: ":authority", Value: r.Authority},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}
	if r.Timeout > 0 {
		fields = append(fields, hpack.HeaderField{Name: "grpc-timeout", Value: TimeoutValue(r.Timeout)})
	}
	if r.UserAgent != "" {
		fields = append(fields, hpack.HeaderField{Name: "user-agent", Value: r.UserAgent})
	}
	for _, m := range r.Metadata {
		fields = append(fields, hpack.HeaderField{Name: m.Key, Value: m.Value})
	}
	return fields
}

// TimeoutValue returns d as a grpc-timeout value (gRPC's PROTOCOL-HTTP2.md:
// at most 8 digits and a unit), in milliseconds, or in whole seconds,
// rounded up, when the milliseconds take more than 8 digits.
func TimeoutValue(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms <= 99999999 {
		return strconv.FormatInt(int64(ms), 10) + "m"
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) + "S"
}

// Encoded is a request encoded for the wire, kept in its parts so that each
// can be explained where it is used.
type Encoded struct {
	// Preface is the client connection preface followed by an empty
	// SETTINGS frame (RFC 9113, section 3.4).
	Preface []byte
	// Headers is the HEADERS frame with the HPACK-encoded header block.
	Headers []byte
	// Data is the DATA frame with the length-prefixed request message.
	Data []byte
}

// Bytes returns the whole request as sent on the connection.
func (e Encoded) Bytes() []byte {
	return bytes.Join([][]byte{e.Preface, e.Headers, e.Data}, nil)
}

// Encode encodes r as the first and only call on a new HTTP/2 connection.
// It fails when a header field is not one a server accepts, or when the
// header block or the message does not fit in one frame.
func Encode(r Request) (Encoded, error) {
	if r.Scheme != "http" && r.Scheme != "https" {
		return Encoded{}, fmt.Errorf(":scheme %q is neither http nor https", r.Scheme)
	}
	if !strings.HasPrefix(r.Path, "/") {
		return Encoded{}, fmt.Errorf(":path %q does not start with '/'", r.Path)
	}
	if r.Authority == "" {
		return Encoded{}, errors.New(":authority is empty")
	}
	for _, m := range r.Metadata {
		if m.Key != strings.ToLower(m.Key) || !httpguts.ValidHeaderFieldName(m.Key) {
			return Encoded{}, fmt.Errorf("metadata key %q is not a lower-case HTTP/2 header name", m.Key)
		}
	}
	fields := r.HeaderFields()
	for _, f := range fields {
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			return Encoded{}, fmt.Errorf("%s %q is not a valid HTTP/2 header value (it holds control characters)", f.Name, f.Value)
		}
	}
	if len(r.Message) > MaxRequestMessage {
		return Encoded{}, fmt.Errorf("request message is %d bytes; a check sends at most %d (one HTTP/2 DATA frame of %d bytes before the server's SETTINGS are known)",
			len(r.Message), MaxRequestMessage, MaxFramePayload)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		if err := enc.WriteField(f); err != nil {
			return Encoded{}, fmt.Errorf("encoding header %s: %w", f.Name, err)
		}
	}
	if block.Len() > MaxFramePayload {
		return Encoded{}, fmt.Errorf("request headers encode to %d bytes; at most %d fit in one HTTP/2 HEADERS frame", block.Len(), MaxFramePayload)
	}

	var e Encoded
	var err error
	e.Preface, err = frame(func(fr *http2.Framer) error { return fr.WriteSettings() })
	if err != nil {
		return Encoded{}, err
	}
	e.Preface = append([]byte(http2.ClientPreface), e.Preface...)
	e.Headers, err = frame(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID:      StreamID,
			BlockFragment: block.Bytes(),
			EndHeaders:    true,
		})
	})
	if err != nil {
		return Encoded{}, err
	}
	e.Data, err = frame(func(fr *http2.Framer) error {
		return fr.WriteData(StreamID, true, Message(r.Message))
	})
	if err != nil {
		return Encoded{}, err
	}
	return e, nil
}

// frame returns the bytes that write puts through a Framer.
func frame(write func(*http2.Framer) error) ([]byte, error) {
	var buf bytes.Buffer
	if err := write(http2.NewFramer(&buf, nil)); err != nil {
		return nil, fmt.Errorf("encoding HTTP/2 frame: %w", err)
	}
	return buf.Bytes(), nil
}

// Message returns msg as a gRPC Length-Prefixed-Message, uncompressed
// (gRPC PROTOCOL-HTTP2.md, "Length-Prefixed-Message"). This is the exact
// byte string a server sends for a response message, and what a check
// matches.
func Message(msg []byte) []byte {
	out := make([]byte, MessagePrefixLen, MessagePrefixLen+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}
