package wire

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzEncode checks that every request Encode accepts decodes back with
// x/net/http2's Framer and HPACK decoder to the same call, and that every
// other request is refused with an error, never a panic.
func FuzzEncode(f *testing.F) {
	f.Add("http", "localhost", "/grpc.health.v1.Health/Check", []byte("\x0a\x12helloworld.Greeter"), "", "")
	f.Add("https", "greeter.example:50051", "/servicestatus.HealthCheck/Check", []byte{}, "x-api-key", "secret")
	f.Add("http", "[::1]:8443", "/a.B/C", bytes.Repeat([]byte{0}, 300), "x-empty", "")
	f.Add("http", "a\nb", "/a.B/C", []byte{1}, "X-Upper", "v\r")
	f.Fuzz(func(t *testing.T, scheme, authority, path string, message []byte, key, value string) {
		req := Request{Scheme: scheme, Authority: authority, Path: path, Message: message}
		if key != "" {
			req.Metadata = []Metadata{{Key: key, Value: value}}
		}
		enc, err := Encode(req)
		if err != nil {
			return
		}
		call := decode(t, enc.Bytes())
		if !reflect.DeepEqual(call.headers, req.HeaderFields()) {
			t.Errorf("headers:\n got %v\nwant %v", call.headers, req.HeaderFields())
		}
		if !bytes.Equal(call.message, message) {
			t.Errorf("message %x, want %x", call.message, message)
		}
		if call.settings != 1 || !call.endStream {
			t.Errorf("settings frames %d, end of stream %v", call.settings, call.endStream)
		}
	})
}
