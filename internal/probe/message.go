package probe

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	// grpc.health.v1's messages are always known, so that the answers of
	// every check through the gRPC Health Checking Protocol decode.
	_ "google.golang.org/grpc/health/grpc_health_v1"
)

// Message is one gRPC Length-Prefixed-Message (gRPC PROTOCOL-HTTP2.md).
type Message struct {
	// Compressed is the Compressed-Flag: the message is compressed with
	// the call's grpc-encoding, which no check matches.
	Compressed bool `json:"compressed"`
	// Length is the Message-Length of the prefix.
	Length uint32 `json:"length"`
	// Hex is the message's bytes, without the prefix; fewer than Length
	// when the message is incomplete.
	Hex string `json:"hex"`
	// Type is the full name of the message type it was decoded as, or
	// empty when it was decoded without one.
	Type string `json:"type,omitempty"`
	// Text is the message in protobuf text format, or its raw fields
	// ("1: 2") when its type is unknown or it does not parse as its type.
	Text string `json:"text"`

	raw []byte
}

// String describes the message by its type and text:
// "grpc.health.v1.HealthCheckResponse {status: SERVING}".
func (m Message) String() string {
	if m.Type == "" {
		return "{" + m.Text + "}"
	}
	return m.Type + " {" + m.Text + "}"
}

// Complete reports whether the message has all its bytes.
func (m Message) Complete() bool {
	return uint64(len(m.raw)) == uint64(m.Length)
}

// decode fills in the message's hex and text, decoding it as the message
// type named typeName, looked up in files and then among the types linked
// into this program.
func (m *Message) decode(typeName string, files *protoregistry.Files) {
	m.Hex = hex.EncodeToString(m.raw)
	switch {
	case m.Compressed:
		m.Text = "(compressed)"
		return
	case !m.Complete():
		m.Text = "(incomplete)"
		return
	}
	if mt := messageType(typeName, files); mt != nil {
		msg := mt.New().Interface()
		if err := proto.Unmarshal(m.raw, msg); err == nil {
			m.Type = typeName
			m.Text = prototext.MarshalOptions{}.Format(msg)
			if m.Text == "" {
				m.Text = "(empty message)"
			}
			return
		}
	}
	m.Text = rawFields(m.raw)
}

// messageType returns the message type named name, or nil.
func messageType(name string, files *protoregistry.Files) protoreflect.MessageType {
	if name == "" {
		return nil
	}
	if files != nil {
		if d, err := files.FindDescriptorByName(protoreflect.FullName(name)); err == nil {
			if md, ok := d.(protoreflect.MessageDescriptor); ok {
				return dynamicpb.NewMessageType(md)
			}
		}
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return nil
	}
	return mt
}

// rawFields describes the fields of b, a serialized message of unknown
// type, as "number: value" in wire order: varints as integers, fixed
// values in hex, length-delimited values as quoted strings when they are
// printable UTF-8 and in hex otherwise.
func rawFields(b []byte) string {
	var fields []string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return strings.Join(append(fields, "(not a protobuf message: "+hex.EncodeToString(b)+")"), " ")
		}
		b = b[n:]
		var value string
		switch typ {
		case protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			value = strconv.FormatUint(v, 10)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			value = fmt.Sprintf("0x%08x", v)
		case protowire.Fixed64Type:
			var v uint64
			v, n = protowire.ConsumeFixed64(b)
			value = fmt.Sprintf("0x%016x", v)
		case protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			value = bytesValue(v)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			value = "(group)"
		}
		if n < 0 {
			return strings.Join(append(fields, fmt.Sprintf("(field %d is cut short)", num)), " ")
		}
		b = b[n:]
		fields = append(fields, fmt.Sprintf("%d: %s", num, value))
	}
	if len(fields) == 0 {
		return "(empty message)"
	}
	return strings.Join(fields, " ")
}

// bytesValue shows a length-delimited value.
func bytesValue(v []byte) string {
	if utf8.Valid(v) && strings.IndexFunc(string(v), func(r rune) bool { return r < ' ' || r == 0x7f }) < 0 {
		return strconv.Quote(string(v))
	}
	return "0x" + hex.EncodeToString(v)
}
