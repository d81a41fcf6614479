package probe_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protodesc"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// The grpc.health.v1 answers, as gRPC messages.
var (
	serving    = wire.Message([]byte{0x08, 0x01})
	notServing = wire.Message([]byte{0x08, 0x02})
)

// cannedTimeout bounds the probes of canned answers.
const cannedTimeout = 300 * time.Millisecond

// TestCannedAnswers probes servers that give canned answers with the
// example's grpc.health.v1 fragment, and checks the verdict and its
// explanation for every kind of answer.
func TestCannedAnswers(t *testing.T) {
	f := parse(t, protogentest.ExampleFragment(t, greeter))
	n := requestLen(f)
	// hold keeps the connection open until the probe closes it.
	hold := func(conn net.Conn) { _, _ = io.Copy(io.Discard, conn) }
	// answerWith reads the request, writes b and holds the connection.
	answerWith := func(b func(t *testing.T) []byte) func(*testing.T, net.Conn) {
		return func(t *testing.T, conn net.Conn) {
			if readRequest(conn, n) == nil {
				_, _ = conn.Write(b(t))
				hold(conn)
			}
		}
	}
	// bytewise writes b one byte per TCP segment.
	bytewise := func(conn net.Conn, b []byte) {
		_ = conn.(*net.TCPConn).SetNoDelay(true)
		for _, c := range b {
			if _, err := conn.Write([]byte{c}); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	tests := []struct {
		name    string
		serve   func(*testing.T, net.Conn)
		class   probe.Class
		status  probe.Status
		reasons []string
	}{{
		name:    "healthy",
		serve:   answerWith(func(t *testing.T) []byte { return newAnswer(t).grpcOK(t, serving).buf.Bytes() }),
		class:   probe.Healthy,
		status:  probe.L7OK,
		reasons: []string{"ended the call with trailers, a successful call with the healthy response", "grpc.health.v1.HealthCheckResponse {status: SERVING}"},
	}, {
		name: "healthy, one byte per segment",
		serve: func(t *testing.T, conn net.Conn) {
			if readRequest(conn, n) == nil {
				bytewise(conn, newAnswer(t).grpcOK(t, serving).buf.Bytes())
				hold(conn)
			}
		},
		class:   probe.Healthy,
		status:  probe.L7OK,
		reasons: []string{"ended the call with trailers, a successful call"},
	}, {
		name: "unavailable, one byte per segment",
		serve: func(t *testing.T, conn net.Conn) {
			if readRequest(conn, n) == nil {
				bytewise(conn, newAnswer(t).headers(t, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "14").buf.Bytes())
				hold(conn)
			}
		},
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{"grpc-status 14 Unavailable", "the server is not serving"},
	}, {
		name:    "not serving",
		serve:   answerWith(func(t *testing.T) []byte { return newAnswer(t).grpcOK(t, notServing).buf.Bytes() }),
		class:   probe.Draining,
		status:  probe.L7OKC,
		reasons: []string{"says it is not serving (grpc.health.v1.HealthCheckResponse {status: NOT_SERVING})", "NOLB"},
	}, {
		name: "unavailable, trailers only",
		serve: answerWith(func(t *testing.T) []byte {
			return newAnswer(t).headers(t, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "14", "grpc-message", "draining%20now").buf.Bytes()
		}),
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{`grpc-status 14 Unavailable, grpc-message "draining now": the server is not serving`},
	}, {
		name: "unimplemented",
		serve: answerWith(func(t *testing.T) []byte {
			return newAnswer(t).headers(t, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "12").buf.Bytes()
		}),
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{"does not implement /grpc.health.v1.Health/Check"},
	}, {
		name: "compressed",
		serve: answerWith(func(t *testing.T) []byte {
			compressed := append([]byte{1}, serving[1:]...)
			return newAnswer(t).headers(t, false, ":status", "200", "content-type", "application/grpc", "grpc-encoding", "gzip").
				data(t, false, compressed).headers(t, true, "grpc-status", "0").buf.Bytes()
		}),
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{`compressed (grpc-encoding "gzip")`},
	}, {
		name: "HTTP 404",
		serve: answerWith(func(t *testing.T) []byte {
			return newAnswer(t).headers(t, true, ":status", "404", "content-type", "text/plain").buf.Bytes()
		}),
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{`HTTP status 404 (content-type "text/plain")`},
	}, {
		name: "RST_STREAM",
		serve: answerWith(func(t *testing.T) []byte {
			a := newAnswer(t)
			if err := a.fr.WriteRSTStream(1, http2.ErrCodeRefusedStream); err != nil {
				t.Fatal(err)
			}
			return a.buf.Bytes()
		}),
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{"reset the call with RST_STREAM REFUSED_STREAM"},
	}, {
		name: "GOAWAY and close",
		serve: func(t *testing.T, conn net.Conn) {
			a := newAnswer(t)
			if err := a.fr.WriteGoAway(0, http2.ErrCodeProtocol, []byte("bad preface")); err != nil {
				t.Fatal(err)
			}
			if readRequest(conn, n) == nil {
				_, _ = conn.Write(a.buf.Bytes())
			}
		},
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{`GOAWAY PROTOCOL_ERROR last stream 0 "bad preface"`},
	}, {
		name: "HTTP/2 but not gRPC",
		serve: answerWith(func(t *testing.T) []byte {
			return newAnswer(t).headers(t, false, ":status", "200", "content-type", "text/plain").data(t, true, []byte("hello")).buf.Bytes()
		}),
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{`content-type "text/plain"`, "ended the stream with DATA instead of trailers"},
	}, {
		name: "HEADERS too short for its priority fields",
		serve: answerWith(func(t *testing.T) []byte {
			a := newAnswer(t)
			if err := a.fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPriority|http2.FlagHeadersEndHeaders, 1, []byte{0, 0, 0, 0}); err != nil {
				t.Fatal(err)
			}
			return a.data(t, false, serving).buf.Bytes()
		}),
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{"a HEADERS frame on stream 1 holds 4 bytes, fewer than the 5 bytes of fields its flags (END_HEADERS|PRIORITY) announce: a connection error"},
	}, {
		name:    "silent",
		serve:   func(t *testing.T, conn net.Conn) { hold(conn) },
		class:   probe.Timeout,
		status:  probe.L7TOUT,
		reasons: []string{"the server sent nothing"},
	}, {
		name: "healthy message, call not ended",
		serve: answerWith(func(t *testing.T) []byte {
			return newAnswer(t).headers(t, false, ":status", "200", "content-type", "application/grpc").data(t, false, serving).buf.Bytes()
		}),
		class:   probe.Timeout,
		status:  probe.L7TOUT,
		reasons: []string{"sent the healthy response but did not end the call"},
	}, {
		name:    "closed without answering",
		serve:   func(t *testing.T, conn net.Conn) { _ = readRequest(conn, n) },
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{"closed the connection without answering"},
	}, {
		name: "reset without answering",
		serve: func(t *testing.T, conn net.Conn) {
			if readRequest(conn, n) == nil {
				_ = conn.(*net.TCPConn).SetLinger(0)
			}
		},
		class:   probe.ConnectionFailed,
		status:  probe.SOCKERR,
		reasons: []string{"connection reset by peer"},
	}, {
		name: "HTTP/1",
		serve: func(t *testing.T, conn net.Conn) {
			_, _ = conn.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		},
		class:   probe.WrongAnswer,
		status:  probe.L7RSP,
		reasons: []string{`an HTTP/1 answer, not HTTP/2: "HTTP/1.1 400 Bad Request"`},
	}, {
		name: "TLS alert",
		serve: func(t *testing.T, conn net.Conn) {
			_, _ = conn.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46})
		},
		class:   probe.TLSFailure,
		status:  probe.L7RSP,
		reasons: []string{"a TLS record", "the server speaks TLS; the fragment does not"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := cannedServer(t, func(conn net.Conn) { tt.serve(t, conn) })
			res := run(t, f, addr, probe.Options{Timeout: cannedTimeout})
			wantVerdict(t, res, tt.class, tt.status, tt.reasons...)
		})
	}
}

// TestRefused probes an address where nothing listens.
func TestRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res := run(t, parse(t, protogentest.ExampleFragment(t, greeter)), addr, probe.Options{Timeout: cannedTimeout})
	wantVerdict(t, res, probe.ConnectionFailed, probe.L4CON, "connection refused: nothing listens on "+addr)
}

// TestDecodedAnswer checks what a probe shows of a healthy answer: every
// frame, the header fields, the call and the messages decoded against
// the types of a descriptor set.
func TestDecodedAnswer(t *testing.T) {
	set := protogentest.ExampleSet(t, nil)
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatal(err)
	}
	f := parse(t, protogentest.Fragment(t, set, healthCheck))
	healthy := f.Contract.Healthy
	addr := cannedServer(t, func(conn net.Conn) {
		if readRequest(conn, requestLen(f)) == nil {
			_, _ = conn.Write(newAnswer(t).grpcOK(t, healthy).buf.Bytes())
			_, _ = io.Copy(io.Discard, conn)
		}
	})
	res := run(t, f, addr, probe.Options{Timeout: time.Second, Files: files})
	wantVerdict(t, res, probe.Healthy, probe.L7OK, `servicestatus.HealthCheckResponse {Status: "MagicResponseCodeOK"}`)

	var types []string
	for _, fr := range res.Received.Frames {
		types = append(types, fr.Type.String()+"/"+strings.Join(fr.FlagNames(), "|"))
	}
	if got, want := strings.Join(types, " "), "SETTINGS/ HEADERS/END_HEADERS DATA/ HEADERS/END_STREAM|END_HEADERS"; got != want {
		t.Errorf("received frames %s, want %s", got, want)
	}
	if s := res.Received.Frames[0].Settings; len(s) != 1 || s[0] != (probe.Setting{ID: http2.SettingMaxFrameSize, Value: 16384}) {
		t.Errorf("SETTINGS %+v, want MAX_FRAME_SIZE=16384", s)
	}
	if got := res.Received.Frames[1].Fields; len(got) != 2 || got[0] != (probe.Field{Name: ":status", Value: "200"}) {
		t.Errorf("response headers %+v", got)
	}
	if c := res.Call; c.HTTPStatus != 200 || c.ContentType != "application/grpc" || c.GRPCStatus != (probe.GRPCStatus{Present: true, Code: codes.OK, Value: "0"}) || c.End != probe.EndTrailers {
		t.Errorf("call %+v", c)
	}
	if m := res.Received.Messages; len(m) != 1 || m[0].Type != "servicestatus.HealthCheckResponse" || m[0].Compressed {
		t.Errorf("received messages %+v", m)
	}
	if m := res.Sent.Messages; len(m) != 1 || m[0].Type != "servicestatus.HealthCheckRequest" || m[0].Text != "(empty message)" {
		t.Errorf("sent messages %+v", m)
	}
	var path string
	for _, fr := range res.Sent.Frames {
		for _, hf := range fr.Fields {
			if hf.Name == ":path" {
				path = hf.Value
			}
		}
	}
	if path != "/servicestatus.HealthCheck/Check" {
		t.Errorf("sent :path %q", path)
	}
	for i, r := range res.Rules {
		if want := []string{"sent", "passed", "passed", "passed"}[i]; r.Outcome != want {
			t.Errorf("rule %s: %s, want %s", r.Rule, r.Outcome, want)
		}
	}
}

// haproxyProxyHeader is the PROXY protocol header that HAProxy 2.6 sends
// at the start of a check with send-proxy and send-proxy-v2, captured from
// it: version 2, LOCAL, no addresses.
const haproxyProxyHeader = "0d0a0d0a000d0a515549540a20000000"

// TestProxyProtocol checks that a fragment whose servers take the PROXY
// protocol makes the probe send HAProxy's header first.
func TestProxyProtocol(t *testing.T) {
	f := parse(t, protogentest.Fragment(t, protogentest.ExampleSet(t, func(_ string, c *haproxycheckv1.Check) {
		c.Servers = &haproxycheckv1.Servers{SendProxyV2: true}
	}), greeter))
	if !f.Connect.SendProxyV2 {
		t.Fatal("the fragment's PROXY protocol is not read")
	}
	headers := make(chan *proxyproto.Header, 1)
	addr := cannedServer(t, func(conn net.Conn) {
		r := bufio.NewReader(conn)
		h, err := proxyproto.Read(r)
		headers <- h
		if err == nil && readRequest(r, requestLen(f)) == nil {
			_, _ = conn.Write(newAnswer(t).grpcOK(t, serving).buf.Bytes())
			_, _ = io.Copy(io.Discard, r)
		}
	})
	res := run(t, f, addr, probe.Options{Timeout: time.Second})
	wantVerdict(t, res, probe.Healthy, probe.L7OK)
	if h := <-headers; h == nil || h.Version != 2 || h.Command != proxyproto.LOCAL {
		t.Errorf("PROXY header %+v, want version 2, LOCAL", h)
	}
	if res.ProxyHeader != haproxyProxyHeader {
		t.Errorf("PROXY header %s, want HAProxy's %s", res.ProxyHeader, haproxyProxyHeader)
	}
}

// TestClose checks that a probe closes its connection as HAProxy does:
// with a TCP reset, unless the connect rule has linger.
func TestClose(t *testing.T) {
	for _, linger := range []bool{false, true} {
		var want error = syscall.ECONNRESET
		if linger {
			want = io.EOF
		}
		text := protogentest.ExampleFragment(t, greeter)
		if !linger {
			text = bytes.Replace(text, []byte("tcp-check connect linger "), []byte("tcp-check connect "), 1)
		}
		f := parse(t, text)
		if f.Connect.Linger != linger {
			t.Fatalf("linger %t, want %t", f.Connect.Linger, linger)
		}
		closed := make(chan error, 1)
		addr := cannedServer(t, func(conn net.Conn) {
			if err := readRequest(conn, requestLen(f)); err != nil {
				closed <- err
				return
			}
			_, _ = conn.Write(newAnswer(t).grpcOK(t, serving).buf.Bytes())
			_, err := conn.Read(make([]byte, 1))
			closed <- err
		})
		wantVerdict(t, run(t, f, addr, probe.Options{Timeout: time.Second}), probe.Healthy, probe.L7OK)
		err := <-closed
		if !errors.Is(err, want) {
			t.Errorf("linger %t: the server read %v after the check, want %v", linger, err, want)
		}
	}
}
