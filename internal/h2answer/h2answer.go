// Package h2answer plays a raw HTTP/2 server that gives one crafted answer
// to a check's gRPC call, so that tests can prove that HAProxy's checks and
// the probe judge every legal and illegal answer as a gRPC client would.
//
// A check sends, on a new connection, one complete call on stream 1 (see
// package wire). An Answer is the exact bytes a server sends back: the
// server's SETTINGS, the response HEADERS, the DATA carrying the
// length-prefixed response message and the trailers, framed and
// HPACK-encoded by golang.org/x/net/http2 in every way RFC 9113 and
// RFC 7541 allow (CONTINUATION, padding, priority, interleaved frames, each
// literal representation of grpc-status), and broken in the ways real
// servers and proxies break them (error statuses, resets, proxies' HTML
// pages, HTTP/1, no trailers). Each Answer says what a gRPC client makes
// of it (Want) and whether it ends the call, so that a correct check must
// decide without waiting for its timeout (EndsCall).
//
// Catalog lists the answers every check must judge right; Exotic lists
// legal answers that no measured server or proxy sends, which a check may
// or may not support. Serve answers every connection to a loopback listener
// with one Answer, whole or one byte at a time.
package h2answer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// Verdict is what a gRPC client makes of an answer to a unary call.
type Verdict int

const (
	// Healthy: the call succeeds (HTTP status 200, a gRPC content-type,
	// trailers with grpc-status 0) and its only response message is the
	// healthy one.
	Healthy Verdict = iota + 1
	// NotServing: the call succeeds and its only response message is the
	// not-serving one.
	NotServing
	// Failed: anything else: an error status or none, a message other
	// than exactly one of the two, a reset stream, an HTTP status other
	// than 200, an answer that is not HTTP/2, or no end at all.
	Failed
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Healthy:
		return "Healthy"
	case NotServing:
		return "NotServing"
	case Failed:
		return "Failed"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Messages are the response messages an answer carries, each a gRPC
// Length-Prefixed-Message (wire.Message): a Compressed-Flag byte of 0, the
// 4-byte big-endian length, the serialized message.
type Messages struct {
	// Healthy is the message a healthy server answers, the one a check
	// passes on.
	Healthy []byte
	// NotServing is the message a server that is not serving answers
	// instead (for grpc.health.v1, NOT_SERVING).
	NotServing []byte
}

// HealthMessages are the grpc.health.v1.Health/Check answers: SERVING
// (status = 1, 00 00000002 0801) and NOT_SERVING (status = 2,
// 00 00000002 0802).
var HealthMessages = Messages{
	Healthy:    wire.Message([]byte{0x08, 0x01}),
	NotServing: wire.Message([]byte{0x08, 0x02}),
}

// check reports why m cannot be used to build answers: both must be
// complete uncompressed Length-Prefixed-Messages, and they must differ.
func (m Messages) check() error {
	for _, msg := range []struct {
		name  string
		bytes []byte
	}{{"healthy", m.Healthy}, {"not-serving", m.NotServing}} {
		if len(msg.bytes) < wire.MessagePrefixLen {
			return fmt.Errorf("the %s message has %d bytes, less than a gRPC message prefix", msg.name, len(msg.bytes))
		}
		if msg.bytes[0] != 0 {
			return fmt.Errorf("the %s message is marked compressed", msg.name)
		}
		if n := binary.BigEndian.Uint32(msg.bytes[1:wire.MessagePrefixLen]); uint64(n) != uint64(len(msg.bytes)-wire.MessagePrefixLen) {
			return fmt.Errorf("the %s message's prefix says %d bytes, but %d follow it", msg.name, n, len(msg.bytes)-wire.MessagePrefixLen)
		}
	}
	if bytes.Equal(m.Healthy, m.NotServing) {
		return errors.New("the healthy and not-serving messages are the same bytes")
	}
	return nil
}

// Answer is one server's whole answer to a check's call.
type Answer struct {
	// Name identifies the answer, in lower case with hyphens, usable as a
	// subtest name.
	Name string
	// Want is what a gRPC client makes of the answer.
	Want Verdict
	// EndsCall says that a gRPC client knows the call's outcome once it
	// has read the answer: the server ended stream 1 (END_STREAM or
	// RST_STREAM), refused it (GOAWAY), broke the connection's protocol,
	// or closes the connection. A correct check then decides without
	// waiting for its timeout. When false, the answer leaves the call open
	// and the connection too, and a check may only time out.
	EndsCall bool
	// Close says that the server closes the connection once the answer is
	// written, because the close is part of the answer (an HTTP/1 server,
	// a GOAWAY with an error). Otherwise the connection stays open, as
	// gRPC servers keep it.
	Close bool
	// Note says what the answer is for, or where it is seen.
	Note string
	// Build returns the answer's bytes for the given messages. It panics
	// only on a mistake in the answer's own construction.
	Build func(msgs Messages) []byte
}

// Bytes returns the answer's bytes for msgs. It panics when msgs are not
// two different uncompressed gRPC Length-Prefixed-Messages.
func (a Answer) Bytes(msgs Messages) []byte {
	if err := msgs.check(); err != nil {
		panic("h2answer: " + err.Error())
	}
	return a.Build(msgs)
}
