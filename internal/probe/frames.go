package probe

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// Exchange is one direction of a check's connection, decoded: what the
// check sent, or what the server answered.
type Exchange struct {
	// Bytes is how many bytes went this way, and Hex those bytes.
	Bytes int    `json:"bytes"`
	Hex   string `json:"hex"`
	// Frames are the HTTP/2 frames in the bytes, in order.
	Frames []Frame `json:"frames"`
	// Messages are the gRPC messages carried by the DATA frames of the
	// check's stream.
	Messages []Message `json:"messages,omitempty"`
	// Problem says why the bytes, or their end, are not HTTP/2 frames;
	// empty when they are.
	Problem string `json:"problem,omitempty"`
}

// Frame is one HTTP/2 frame (RFC 9113, section 4), decoded.
type Frame struct {
	// Type is the frame type's name: DATA, HEADERS, SETTINGS...
	Type string `json:"type"`
	// Stream is the stream identifier.
	Stream uint32 `json:"stream"`
	// Flags are the names of the flags set.
	Flags []string `json:"flags,omitempty"`
	// Length is the payload length.
	Length uint32 `json:"length"`
	// Fields are the header fields of HEADERS (with its CONTINUATION
	// frames), decoded with HPACK.
	Fields []Field `json:"fields,omitempty"`
	// Settings are the parameters of SETTINGS.
	Settings []Setting `json:"settings,omitempty"`
	// ErrorCode is the error code of RST_STREAM and GOAWAY.
	ErrorCode string `json:"error_code,omitempty"`
	// LastStreamID is GOAWAY's last stream identifier.
	LastStreamID *uint32 `json:"last_stream_id,omitempty"`
	// DebugData is GOAWAY's additional debug data.
	DebugData string `json:"debug_data,omitempty"`
	// Increment is WINDOW_UPDATE's window size increment.
	Increment uint32 `json:"increment,omitempty"`
	// Data is the payload of DATA, PING and unknown frames, in hex.
	Data string `json:"data,omitempty"`
	// Incomplete reports that only the frame's header was received in
	// full, so that its payload is not decoded.
	Incomplete bool `json:"incomplete,omitempty"`
}

// Field is one header field.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Setting is one SETTINGS parameter.
type Setting struct {
	Name  string `json:"name"`
	Value uint32 `json:"value"`
}

// flagNames names the flags of each frame type (RFC 9113, section 6).
var flagNames = map[http2.FrameType][]struct {
	flag http2.Flags
	name string
}{
	http2.FrameData:         {{http2.FlagDataEndStream, "END_STREAM"}, {http2.FlagDataPadded, "PADDED"}},
	http2.FrameHeaders:      {{http2.FlagHeadersEndStream, "END_STREAM"}, {http2.FlagHeadersEndHeaders, "END_HEADERS"}, {http2.FlagHeadersPadded, "PADDED"}, {http2.FlagHeadersPriority, "PRIORITY"}},
	http2.FrameSettings:     {{http2.FlagSettingsAck, "ACK"}},
	http2.FramePing:         {{http2.FlagPingAck, "ACK"}},
	http2.FrameContinuation: {{http2.FlagContinuationEndHeaders, "END_HEADERS"}},
	http2.FramePushPromise:  {{http2.FlagPushPromiseEndHeaders, "END_HEADERS"}, {http2.FlagPushPromisePadded, "PADDED"}},
}

// decodeExchange decodes b, the bytes of one direction of the connection;
// client says whether they are the client's, which start with the
// connection preface.
func decodeExchange(b []byte, client bool) Exchange {
	e := Exchange{Bytes: len(b), Hex: hex.EncodeToString(b)}
	if client {
		if !bytes.HasPrefix(b, []byte(http2.ClientPreface)) {
			e.Problem = "the bytes do not start with the HTTP/2 client connection preface"
			return e
		}
		b = b[len(http2.ClientPreface):]
	} else if p := notHTTP2(b); p != "" {
		e.Problem = p
		return e
	}
	r := bytes.NewReader(b)
	fr := http2.NewFramer(nil, r)
	fr.SetMaxReadFrameSize(1<<24 - 1)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var data []byte
	for {
		rest := b[len(b)-r.Len():]
		f, err := fr.ReadFrame()
		var streamErr http2.StreamError
		switch {
		case errors.As(err, &streamErr):
			e.Problem = fmt.Sprintf("invalid HEADERS on stream %d: %v", streamErr.StreamID, fr.ErrorDetail())
			continue
		case errors.Is(err, io.EOF) && len(rest) == 0:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			e.Problem = fmt.Sprintf("the bytes end inside a frame header (%d of its %d bytes)", len(rest), frameHeaderLen)
			if h, err := http2.ReadFrameHeader(bytes.NewReader(rest)); err == nil {
				// The rules judged as soon as this frame's header arrived.
				partial := frameOf(h)
				partial.Incomplete = true
				e.Frames = append(e.Frames, partial)
				e.Problem = fmt.Sprintf("the bytes end inside the last frame, with %d of its %d payload bytes", len(rest)-frameHeaderLen, h.Length)
			}
		case err != nil:
			e.Problem = fmt.Sprintf("not a valid HTTP/2 frame: %v", err)
		}
		if err != nil {
			e.Messages = splitMessages(data, &e.Problem)
			return e
		}
		e.Frames = append(e.Frames, decodeFrame(f))
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == wire.StreamID {
			data = append(data, d.Data()...)
		}
	}
}

// frameHeaderLen is the length of an HTTP/2 frame header (RFC 9113,
// section 4.1).
const frameHeaderLen = 9

// notHTTP2 says what b is when a server's answer is plainly not HTTP/2,
// or returns "" when it may be.
func notHTTP2(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("HTTP/")):
		line, _, _ := bytes.Cut(b, []byte("\n"))
		return fmt.Sprintf("an HTTP/1 answer, not HTTP/2: %q", strings.TrimSpace(string(line)))
	case isTLSRecord(b):
		return "a TLS record, not HTTP/2: the server expects TLS"
	case len(b) >= frameHeaderLen && http2.FrameType(b[3]) != http2.FrameSettings:
		return fmt.Sprintf("not an HTTP/2 server: its first frame is not SETTINGS (RFC 9113, section 3.4); it starts %q", printablePrefix(b))
	}
	return ""
}

// printablePrefix returns up to 40 bytes of b, for a message.
func printablePrefix(b []byte) string {
	return string(b[:min(len(b), 40)])
}

// frameOf describes the frame header h.
func frameOf(h http2.FrameHeader) Frame {
	out := Frame{Type: h.Type.String(), Stream: h.StreamID, Length: h.Length}
	for _, fl := range flagNames[h.Type] {
		if h.Flags.Has(fl.flag) {
			out.Flags = append(out.Flags, fl.name)
		}
	}
	return out
}

// decodeFrame describes f.
func decodeFrame(f http2.Frame) Frame {
	out := frameOf(f.Header())
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		for _, hf := range f.Fields {
			out.Fields = append(out.Fields, Field{Name: hf.Name, Value: hf.Value})
		}
	case *http2.SettingsFrame:
		_ = f.ForeachSetting(func(s http2.Setting) error {
			out.Settings = append(out.Settings, Setting{Name: s.ID.String(), Value: s.Val})
			return nil
		})
	case *http2.RSTStreamFrame:
		out.ErrorCode = f.ErrCode.String()
	case *http2.GoAwayFrame:
		last := f.LastStreamID
		out.ErrorCode, out.LastStreamID, out.DebugData = f.ErrCode.String(), &last, string(f.DebugData())
	case *http2.WindowUpdateFrame:
		out.Increment = f.Increment
	case *http2.DataFrame:
		out.Data = hex.EncodeToString(f.Data())
	case *http2.PingFrame:
		out.Data = hex.EncodeToString(f.Data[:])
	case *http2.UnknownFrame:
		out.Data = hex.EncodeToString(f.Payload())
	}
	return out
}

// splitMessages splits data, the payload of a stream's DATA frames, into
// gRPC Length-Prefixed-Messages, and says in *problem when it ends inside
// one.
func splitMessages(data []byte, problem *string) []Message {
	var msgs []Message
	for len(data) > 0 {
		if len(data) < wire.MessagePrefixLen {
			*problem = fmt.Sprintf("the DATA of stream %d ends with %d bytes, less than a gRPC message prefix", wire.StreamID, len(data))
			break
		}
		n := binary.BigEndian.Uint32(data[1:wire.MessagePrefixLen])
		m := Message{Compressed: data[0] != 0, Length: n}
		body := data[wire.MessagePrefixLen:]
		if uint64(len(body)) < uint64(n) {
			*problem = fmt.Sprintf("the DATA of stream %d ends inside a gRPC message of %d bytes (%d received)", wire.StreamID, n, len(body))
			m.raw = body
			msgs = append(msgs, m)
			break
		}
		m.raw = body[:n]
		msgs = append(msgs, m)
		data = body[n:]
	}
	return msgs
}
