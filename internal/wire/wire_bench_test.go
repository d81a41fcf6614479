package wire_test

import (
	"bytes"
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// BenchmarkEncode measures encoding a check's request: a grpc.health.v1
// request naming a service, the empty message of a health RPC, and the
// largest message a check sends.
func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct {
		name string
		req  wire.Request
	}{
		{"grpc_health", wire.Request{Scheme: "http", Authority: "localhost", Path: "/grpc.health.v1.Health/Check", Message: []byte("\x0a\x12helloworld.Greeter")}},
		{"empty", wire.Request{Scheme: "http", Authority: "localhost", Path: "/servicestatus.HealthCheck/Check"}},
		{"largest", wire.Request{Scheme: "http", Authority: "status.acme.internal:8443", Path: "/acme.status.Status/Check", Message: bytes.Repeat([]byte{'x'}, wire.MaxRequestMessage)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wire.Encode(bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
