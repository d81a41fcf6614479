package probe

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// frameHeaderLen is the length of an HTTP/2 frame header (RFC 9113,
// section 4.1).
const frameHeaderLen = wire.FrameHeaderLen

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
	// Truncated reports that the bytes end inside a frame, before the
	// whole of it arrived.
	Truncated bool `json:"truncated,omitempty"`
	// ConnectionError reports that a client fails the connection on these
	// bytes (RFC 9113, section 5.4.1): they hold a frame that it cannot
	// parse, or bytes that cannot be one. Problem says which.
	ConnectionError bool `json:"connection_error,omitempty"`
}

// Frame is one HTTP/2 frame (RFC 9113, section 4), decoded.
type Frame struct {
	// Type is the frame's type, Flags its flags, Stream its stream and
	// Length its payload length.
	Type   http2.FrameType
	Flags  http2.Flags
	Stream uint32
	Length uint32
	// Fields are the header fields of HEADERS (with its CONTINUATION
	// frames), decoded with HPACK.
	Fields []Field
	// Settings are the parameters of SETTINGS.
	Settings []Setting
	// ErrorCode is the error code of RST_STREAM and GOAWAY.
	ErrorCode *http2.ErrCode
	// LastStreamID is GOAWAY's last stream identifier.
	LastStreamID *uint32
	// DebugData is GOAWAY's additional debug data.
	DebugData string
	// Increment is WINDOW_UPDATE's window size increment.
	Increment uint32
	// Data is the payload of DATA, PING and unknown frames.
	Data []byte
	// Incomplete reports that only the frame's header was received in
	// full, so that its payload is not decoded.
	Incomplete bool
}

// Field is one header field.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Setting is one SETTINGS parameter.
type Setting struct {
	ID    http2.SettingID
	Value uint32
}

// MarshalJSON names the setting.
func (s Setting) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name  string `json:"name"`
		Value uint32 `json:"value"`
	}{s.ID.String(), s.Value})
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

// FlagNames names the frame's flags that its type defines, and shows the
// others in hex.
func (f Frame) FlagNames() []string {
	var names []string
	rest := f.Flags
	for _, fl := range flagNames[f.Type] {
		if f.Flags.Has(fl.flag) {
			names = append(names, fl.name)
			rest &^= fl.flag
		}
	}
	if rest != 0 {
		names = append(names, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return names
}

// MarshalJSON writes the frame with its type, flags and error code named.
func (f Frame) MarshalJSON() ([]byte, error) {
	var code string
	if f.ErrorCode != nil {
		code = f.ErrorCode.String()
	}
	return json.Marshal(struct {
		Type         string    `json:"type"`
		Stream       uint32    `json:"stream"`
		Flags        []string  `json:"flags,omitempty"`
		Length       uint32    `json:"length"`
		Fields       []Field   `json:"fields,omitempty"`
		Settings     []Setting `json:"settings,omitempty"`
		ErrorCode    string    `json:"error_code,omitempty"`
		LastStreamID *uint32   `json:"last_stream_id,omitempty"`
		DebugData    string    `json:"debug_data,omitempty"`
		Increment    uint32    `json:"increment,omitempty"`
		Data         string    `json:"data,omitempty"`
		Incomplete   bool      `json:"incomplete,omitempty"`
	}{f.Type.String(), f.Stream, f.FlagNames(), f.Length, f.Fields, f.Settings, code,
		f.LastStreamID, f.DebugData, f.Increment, hex.EncodeToString(f.Data), f.Incomplete})
}

// field returns the value of the header field name of f, and whether it
// is there.
func (f Frame) field(name string) (string, bool) {
	for _, hf := range f.Fields {
		if hf.Name == name {
			return hf.Value, true
		}
	}
	return "", false
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
	fr.MaxHeaderListSize = 1 << 24
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
			switch h, herr := http2.ReadFrameHeader(bytes.NewReader(rest)); {
			case herr != nil:
				e.Truncated = true
				e.Problem = fmt.Sprintf("the bytes end inside a frame header (%d of its %d bytes)", len(rest), frameHeaderLen)
			case len(rest) >= frameHeaderLen+int(h.Length):
				// The whole frame is there, too short for its fields.
				e.Problem, e.ConnectionError = malformedFrame(h), true
			default:
				// The rules judged as soon as this frame's header arrived.
				e.Truncated = true
				e.Frames = append(e.Frames, Frame{Type: h.Type, Flags: h.Flags, Stream: h.StreamID, Length: h.Length, Incomplete: true})
				e.Problem = fmt.Sprintf("the bytes end inside the last frame, with %d of its %d payload bytes", len(rest)-frameHeaderLen, h.Length)
			}
		case err != nil:
			e.Problem, e.ConnectionError = fmt.Sprintf("not a valid HTTP/2 frame: %v", err), true
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

// malformedFrame says why a client cannot parse the whole frame whose
// header is h, where its payload ends early for the fields it must hold.
func malformedFrame(h http2.FrameHeader) string {
	f := Frame{Type: h.Type, Flags: h.Flags}
	if n := headersFieldsLen(h.Flags); h.Type == http2.FrameHeaders && int(h.Length) < n {
		return fmt.Sprintf("a HEADERS frame on stream %d holds %d bytes, fewer than the %d bytes of fields its flags (%s) announce: a connection error (RFC 9113, section 6.2)",
			h.StreamID, h.Length, n, strings.Join(f.FlagNames(), "|"))
	}
	return fmt.Sprintf("a %s frame on stream %d (flags %s) holds %d bytes, too few for its fields: a connection error (RFC 9113, section 6)",
		h.Type, h.StreamID, strings.Join(f.FlagNames(), "|"), h.Length)
}

// notHTTP2 says what b is when a server's answer is plainly not HTTP/2,
// or returns "" when it may be.
func notHTTP2(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("HTTP/")):
		line, _, _ := bytes.Cut(b, []byte("\n"))
		return fmt.Sprintf("an HTTP/1 answer, not HTTP/2: %q", bytes.TrimSpace(line))
	case isTLSRecord(b):
		return "a TLS record, not HTTP/2: the server expects TLS"
	case len(b) >= frameHeaderLen && http2.FrameType(b[3]) != http2.FrameSettings:
		return fmt.Sprintf("not an HTTP/2 server: its first frame is not SETTINGS (RFC 9113, section 3.4); it starts %q", b[:min(len(b), 40)])
	}
	return ""
}

// decodeFrame describes f.
func decodeFrame(f http2.Frame) Frame {
	h := f.Header()
	out := Frame{Type: h.Type, Flags: h.Flags, Stream: h.StreamID, Length: h.Length}
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		for _, hf := range f.Fields {
			out.Fields = append(out.Fields, Field{Name: hf.Name, Value: hf.Value})
		}
	case *http2.SettingsFrame:
		_ = f.ForeachSetting(func(s http2.Setting) error {
			out.Settings = append(out.Settings, Setting{ID: s.ID, Value: s.Val})
			return nil
		})
	case *http2.RSTStreamFrame:
		code := f.ErrCode
		out.ErrorCode = &code
	case *http2.GoAwayFrame:
		code, last := f.ErrCode, f.LastStreamID
		out.ErrorCode, out.LastStreamID, out.DebugData = &code, &last, string(f.DebugData())
	case *http2.WindowUpdateFrame:
		out.Increment = f.Increment
	case *http2.DataFrame:
		out.Data = bytes.Clone(f.Data())
	case *http2.PingFrame:
		out.Data = bytes.Clone(f.Data[:])
	case *http2.UnknownFrame:
		out.Data = bytes.Clone(f.Payload())
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
