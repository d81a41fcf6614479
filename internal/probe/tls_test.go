package probe_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// tlsServer answers every TLS connection with a healthy grpc.health.v1
// answer, or with an HTTP/1 error when the client did not get ALPN h2;
// the server offers alpn.
func tlsServer(t *testing.T, certFile, keyFile string, alpn ...string) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: alpn}
	return cannedServer(t, func(conn net.Conn) {
		tc := tls.Server(conn, cfg)
		if tc.Handshake() != nil {
			return
		}
		if tc.ConnectionState().NegotiatedProtocol != "h2" {
			_, _ = tc.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			return
		}
		if readRequest(tc, 24) == nil {
			_, _ = tc.Write(newAnswer(t).grpcOK(t, serving).buf.Bytes())
			_, _ = io.Copy(io.Discard, tc)
		}
	})
}

// tlsFragment renders the example's grpc.health.v1 fragment with TLS.
func tlsFragment(t *testing.T, authority string, settings *haproxycheckv1.TLS) *probe.Fragment {
	t.Helper()
	return parse(t, protogentest.Fragment(t, protogentest.ExampleSet(t, func(_ string, c *haproxycheckv1.Check) {
		c.Authority = authority
		c.Tls = settings
	}), greeter))
}

// TestTLS probes TLS servers with fragments that verify their certificate
// or not, with and without SNI, and servers that do not agree on ALPN h2.
func TestTLS(t *testing.T) {
	certFile, keyFile, caFile := stacktest.TLSFiles(t)
	_, _, otherCA := stacktest.TLSFiles(t)
	h2 := tlsServer(t, certFile, keyFile, "h2")
	tests := []struct {
		name      string
		addr      string
		authority string
		tls       *haproxycheckv1.TLS
		class     probe.Class
		status    probe.Status
		reasons   []string
		session   *probe.TLSState
	}{{
		name: "verified", addr: h2, authority: "localhost", tls: &haproxycheckv1.TLS{CaFile: caFile},
		class: probe.Healthy, status: probe.L7OK,
		session: &probe.TLSState{Version: "TLS 1.3", ALPN: "h2", ServerName: "localhost", Verified: true},
	}, {
		name: "verified without SNI", addr: h2, authority: "127.0.0.1:8443", tls: &haproxycheckv1.TLS{CaFile: caFile},
		class: probe.Healthy, status: probe.L7OK,
		session: &probe.TLSState{Version: "TLS 1.3", ALPN: "h2", Verified: true},
	}, {
		name: "not verified", addr: h2, authority: "localhost", tls: &haproxycheckv1.TLS{InsecureSkipVerify: true},
		class: probe.Healthy, status: probe.L7OK,
		session: &probe.TLSState{Version: "TLS 1.3", ALPN: "h2", ServerName: "localhost"},
	}, {
		name: "another authority", addr: h2, authority: "localhost", tls: &haproxycheckv1.TLS{CaFile: otherCA},
		class: probe.TLSFailure, status: probe.L6RSP, reasons: []string{"the TLS handshake failed", "certificate signed by unknown authority"},
	}, {
		name: "another name", addr: h2, authority: "greeter.example.com", tls: &haproxycheckv1.TLS{CaFile: caFile},
		class: probe.TLSFailure, status: probe.L6RSP, reasons: []string{"not greeter.example.com"},
	}, {
		name: "no ALPN", addr: tlsServer(t, certFile, keyFile), authority: "localhost", tls: &haproxycheckv1.TLS{CaFile: caFile},
		class: probe.TLSFailure, status: probe.L7RSP, reasons: []string{`the server chose ALPN "", not h2`, "an HTTP/1 answer"},
	}, {
		name: "HTTP/1.1 only", addr: tlsServer(t, certFile, keyFile, "http/1.1"), authority: "localhost", tls: &haproxycheckv1.TLS{CaFile: caFile},
		class: probe.TLSFailure, status: probe.L6RSP, reasons: []string{"no application protocol"},
	}, {
		name: "plaintext HTTP/2 server", authority: "localhost", tls: &haproxycheckv1.TLS{CaFile: caFile},
		addr: cannedServer(t, func(conn net.Conn) {
			_, _ = conn.Write(newAnswer(t).buf.Bytes())
			_, _ = io.Copy(io.Discard, conn)
		}),
		class: probe.TLSFailure, status: probe.L6RSP, reasons: []string{"the server does not speak TLS; the fragment does"},
	}, {
		name: "silent server", addr: cannedServer(t, func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) }), authority: "localhost", tls: &haproxycheckv1.TLS{CaFile: caFile},
		class: probe.TLSFailure, status: probe.L6TOUT, reasons: []string{"no TLS handshake with", "within 1s"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, tlsFragment(t, tt.authority, tt.tls), tt.addr, probe.Options{Timeout: time.Second})
			wantVerdict(t, res, tt.class, tt.status, tt.reasons...)
			if tt.session != nil && (res.TLS == nil || *res.TLS != *tt.session) {
				t.Errorf("TLS session %+v, want %+v", res.TLS, tt.session)
			}
		})
	}
}

// TestTLSCAFileOption checks that Options.CAFile replaces a fragment's
// ca-file that is not on the probing machine, and that without it the
// probe cannot run.
func TestTLSCAFileOption(t *testing.T) {
	certFile, keyFile, caFile := stacktest.TLSFiles(t)
	f := tlsFragment(t, "localhost", &haproxycheckv1.TLS{CaFile: "/etc/haproxy/nowhere/ca.pem"})
	addr := tlsServer(t, certFile, keyFile, "h2")
	if _, err := probe.Run(context.Background(), f, addr, probe.Options{Timeout: time.Second}); err == nil || !strings.Contains(err.Error(), "-ca-file") {
		t.Errorf("probe with a missing ca-file: %v, want an error that suggests -ca-file", err)
	}
	wantVerdict(t, run(t, f, addr, probe.Options{Timeout: time.Second, CAFile: caFile}), probe.Healthy, probe.L7OK)
}
