package wire

import (
	"bytes"
	"encoding/binary"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// decodedCall is a request read back from the wire with x/net/http2.
type decodedCall struct {
	headers   []hpack.HeaderField
	message   []byte
	settings  int
	endStream bool
}

// decode reads b as a server would: preface, then frames until the end of
// stream 1, failing the test on anything a well-formed check must not send.
func decode(t *testing.T, b []byte) decodedCall {
	t.Helper()
	if !bytes.HasPrefix(b, []byte(http2.ClientPreface)) {
		t.Fatalf("request does not start with the client preface: %x", b[:min(len(b), 24)])
	}
	r := bytes.NewReader(b[len(http2.ClientPreface):])
	fr := http2.NewFramer(io.Discard, r)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var call decodedCall
	for i := 0; ; i++ {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if i != 0 || f.IsAck() || f.NumSettings() != 0 {
				t.Fatalf("frame %d: want an empty SETTINGS first, got %v", i, f)
			}
			call.settings++
		case *http2.MetaHeadersFrame:
			if i != 1 || f.StreamID != StreamID || f.StreamEnded() || !f.HeadersEnded() {
				t.Fatalf("frame %d: want HEADERS on stream 1 with END_HEADERS only, got %v", i, f)
			}
			call.headers = f.Fields
		case *http2.DataFrame:
			if i != 2 || f.StreamID != StreamID || !f.StreamEnded() {
				t.Fatalf("frame %d: want DATA on stream 1 with END_STREAM, got %v", i, f)
			}
			payload := f.Data()
			if len(payload) < MessagePrefixLen || payload[0] != 0 {
				t.Fatalf("DATA payload is not an uncompressed gRPC message: %x", payload)
			}
			if n := binary.BigEndian.Uint32(payload[1:]); int(n) != len(payload)-MessagePrefixLen {
				t.Fatalf("gRPC message length %d, payload carries %d", n, len(payload)-MessagePrefixLen)
			}
			call.message = payload[MessagePrefixLen:]
			call.endStream = true
		default:
			t.Fatalf("frame %d: unexpected %T", i, f)
		}
	}
	return call
}

func TestEncodeDecodesBackToTheCall(t *testing.T) {
	req := Request{
		Scheme:    "http",
		Authority: "greeter.example:50051",
		Path:      "/grpc.health.v1.Health/Check",
		Message:   []byte("\x0a\x12helloworld.Greeter"),
		Timeout:   2 * time.Second,
		UserAgent: "protoc-gen-haproxycheck/v1.2.3",
		Metadata:  []Metadata{{Key: "x-api-key", Value: "s3cret"}, {Key: "x-trace", Value: ""}},
	}
	enc, err := Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	call := decode(t, enc.Bytes())
	want := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/grpc.health.v1.Health/Check"},
		{Name: ":authority", Value: "greeter.example:50051"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
		{Name: "grpc-timeout", Value: "2000m"},
		{Name: "user-agent", Value: "protoc-gen-haproxycheck/v1.2.3"},
		{Name: "x-api-key", Value: "s3cret"},
		{Name: "x-trace", Value: ""},
	}
	if !reflect.DeepEqual(call.headers, want) {
		t.Errorf("headers:\n got %v\nwant %v", call.headers, want)
	}
	if !bytes.Equal(call.message, req.Message) {
		t.Errorf("message %x, want %x", call.message, req.Message)
	}
	if call.settings != 1 || !call.endStream {
		t.Errorf("settings frames %d, end of stream %v", call.settings, call.endStream)
	}
	for _, f := range call.headers {
		if strings.Contains(f.Name, "encoding") {
			t.Errorf("request advertises compression: %s: %s", f.Name, f.Value)
		}
	}
}

func TestEncodeEmptyMessage(t *testing.T) {
	enc, err := Encode(Request{Scheme: "http", Authority: "localhost", Path: "/a.B/C"})
	if err != nil {
		t.Fatal(err)
	}
	if got := decode(t, enc.Bytes()).message; len(got) != 0 {
		t.Errorf("message %x, want empty", got)
	}
	if want := []byte("\x00\x00\x05\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00"); !bytes.Equal(enc.Data, want) {
		t.Errorf("DATA frame %x, want %x", enc.Data, want)
	}
}

func TestEncodeLimits(t *testing.T) {
	if _, err := Encode(Request{Scheme: "http", Authority: "a", Path: "/a.B/C", Message: make([]byte, MaxRequestMessage)}); err != nil {
		t.Errorf("largest message: %v", err)
	}
	_, err := Encode(Request{Scheme: "http", Authority: "a", Path: "/a.B/C", Message: make([]byte, MaxRequestMessage+1)})
	if err == nil || !strings.Contains(err.Error(), "at most 16379") {
		t.Errorf("oversized message: got error %v", err)
	}
	_, err = Encode(Request{Scheme: "http", Authority: strings.Repeat("a", 3*MaxFramePayload), Path: "/a.B/C"})
	if err == nil || !strings.Contains(err.Error(), "HEADERS frame") {
		t.Errorf("oversized headers: got error %v", err)
	}
}

func TestMessage(t *testing.T) {
	got := Message([]byte{0x08, 0x01})
	if want := []byte{0, 0, 0, 0, 2, 0x08, 0x01}; !bytes.Equal(got, want) {
		t.Errorf("Message = %x, want %x", got, want)
	}
}

func TestEncodeRefusesInvalidHeaders(t *testing.T) {
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Scheme: "ftp", Authority: "a", Path: "/a.B/C"}, `:scheme "ftp" is neither http nor https`},
		{Request{Scheme: "http", Authority: "a", Path: "a.B/C"}, `:path "a.B/C" does not start with '/'`},
		{Request{Scheme: "http", Authority: "a\nb", Path: "/a.B/C"}, `:authority "a\nb" is not a valid HTTP/2 header value`},
		{Request{Scheme: "http", Authority: "", Path: "/a.B/C"}, `:authority is empty`},
		{Request{Scheme: "http", Authority: "a", Path: "/a.B/C", Metadata: []Metadata{{Key: "X-Token", Value: "v"}}}, `metadata key "X-Token" is not a lower-case HTTP/2 header name`},
		{Request{Scheme: "http", Authority: "a", Path: "/a.B/C", Metadata: []Metadata{{Key: "x-token", Value: "a\x00"}}}, `x-token "a\x00" is not a valid HTTP/2 header value`},
	} {
		if _, err := Encode(tc.req); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Encode(%+v) error %v, want %q", tc.req, err, tc.want)
		}
	}
}

func TestTimeoutValue(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Millisecond:               "1m",
		1500 * time.Microsecond:        "2m",
		2 * time.Second:                "2000m",
		99999999 * time.Millisecond:    "99999999m",
		100000000 * time.Millisecond:   "100000S",
		(1<<31 - 1) * time.Millisecond: "2147484S",
	} {
		if got := TimeoutValue(d); got != want {
			t.Errorf("TimeoutValue(%v) = %q, want %q", d, got, want)
		}
	}
}
