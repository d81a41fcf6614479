package stacktest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/servicestatus"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
)

func TestMain(m *testing.M) {
	os.Exit(stacktest.Main(m))
}

// forEachStack runs test on every stack, in parallel.
func forEachStack(t *testing.T, test func(t *testing.T, stack stacktest.Stack)) {
	for _, stack := range stacktest.Stacks {
		t.Run(string(stack), func(t *testing.T) {
			t.Parallel()
			test(t, stack)
		})
	}
}

// dial returns a client connection to addr, closed when the test ends.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rpcContext returns a context that bounds one call.
func rpcContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkServing checks both health services' answers on conn.
func checkServing(t *testing.T, conn *grpc.ClientConn, serving bool) {
	t.Helper()
	resp, err := servicestatus.NewHealthCheckClient(conn).Check(rpcContext(t), &servicestatus.HealthCheckRequest{})
	switch {
	case serving && (err != nil || resp.GetStatus() != "MagicResponseCodeOK"):
		t.Errorf("servicestatus Check while serving: %v, %v; want MagicResponseCodeOK", resp, err)
	case !serving && status.Code(err) != codes.Unavailable:
		t.Errorf("servicestatus Check while not serving: %v, %v; want Unavailable", resp, err)
	}
	want := grpc_health_v1.HealthCheckResponse_NOT_SERVING
	if serving {
		want = grpc_health_v1.HealthCheckResponse_SERVING
	}
	health := grpc_health_v1.NewHealthClient(conn)
	for _, name := range []string{"", "helloworld.Greeter", "servicestatus.HealthCheck"} {
		resp, err := health.Check(rpcContext(t), &grpc_health_v1.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != want {
			t.Errorf("Health/Check %q: %v, %v; want %v", name, resp, err, want)
		}
	}
	_, err = health.Check(rpcContext(t), &grpc_health_v1.HealthCheckRequest{Service: "no.Such"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Health/Check of an unknown service: %v; want NotFound", err)
	}
}

// sayHello calls SayHello with the metadata x-check-token: abc and
// returns the call that the server reports.
func sayHello(t *testing.T, s *stacktest.Server, conn *grpc.ClientConn, wantID string) stacktest.Call {
	t.Helper()
	ctx := metadata.AppendToOutgoingContext(rpcContext(t), "x-check-token", "abc")
	resp, err := helloworld.NewGreeterClient(conn).SayHello(ctx, &helloworld.HelloRequest{Name: "haproxy"})
	if want := "Hello haproxy from " + wantID; err != nil || resp.GetMessage() != want {
		t.Fatalf("SayHello: %v, %v; want %q", resp, err, want)
	}
	return s.WaitCall(t, func(c stacktest.Call) bool {
		return c.Method == "/helloworld.Greeter/SayHello" && c.Metadata["x-check-token"] == "abc"
	}, 10*time.Second)
}

// TestServe runs the servers in plaintext: both health services while
// serving and not, and what the server reports of a call.
func TestServe(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack stacktest.Stack) {
		s := stacktest.Start(t, stack, stacktest.Options{})
		plain := grpc.WithTransportCredentials(insecure.NewCredentials())
		conn := dial(t, s.Addr, plain)
		checkServing(t, conn, true)
		s.SetServing(t, false)
		checkServing(t, conn, false)
		s.SetServing(t, true)
		checkServing(t, conn, true)

		call := sayHello(t, s, dial(t, s.Addr, plain, grpc.WithAuthority("svc.example")), s.Addr)
		if call.Authority != "svc.example" || !strings.HasPrefix(call.UserAgent, "grpc-go/") {
			t.Errorf("SayHello reported as %+v; want authority svc.example and a grpc-go user agent", call)
		}
		check := s.WaitCall(t, func(c stacktest.Call) bool {
			return c.Method == "/servicestatus.HealthCheck/Check"
		}, 10*time.Second)
		if check.Authority != s.Addr {
			t.Errorf("Check reported as %+v; want authority %s", check, s.Addr)
		}
		t.Logf("%s reports a call as %+v", stack, call)
	})
}

// TestTLS runs the servers over TLS, with and without an authority
// override, and checks that they negotiate h2.
func TestTLS(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack stacktest.Stack) {
		cert, key, ca := stacktest.TLSFiles(t, "svc.example")
		s := stacktest.Start(t, stack, stacktest.Options{TLSCert: cert, TLSKey: key, ID: "tls-" + string(stack)})
		creds, err := credentials.NewClientTLSFromFile(ca, "")
		if err != nil {
			t.Fatal(err)
		}
		checkServing(t, dial(t, s.Addr, grpc.WithTransportCredentials(creds)), true)
		call := sayHello(t, s, dial(t, s.Addr, grpc.WithTransportCredentials(creds), grpc.WithAuthority("svc.example")), "tls-"+string(stack))
		if call.Authority != "svc.example" {
			t.Errorf("SayHello over TLS reported as %+v; want authority svc.example", call)
		}

		pem, err := os.ReadFile(ca)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}}}
		c, err := d.DialContext(rpcContext(t), "tcp", s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != "h2" {
			t.Errorf("ALPN: negotiated %q, want h2", got)
		}
	})
}

// TestOptions checks --services, --not-serving and Stop.
func TestOptions(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack stacktest.Stack) {
		plain := grpc.WithTransportCredentials(insecure.NewCredentials())
		greeter := stacktest.Start(t, stack, stacktest.Options{Services: []string{"greeter"}, ID: "only-greeter"})
		conn := dial(t, greeter.Addr, plain)
		sayHello(t, greeter, conn, "only-greeter")
		_, err := grpc_health_v1.NewHealthClient(conn).Check(rpcContext(t), &grpc_health_v1.HealthCheckRequest{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("Health/Check on a server of another service: %v; want Unimplemented", err)
		}

		sick := stacktest.Start(t, stack, stacktest.Options{NotServing: true})
		checkServing(t, dial(t, sick.Addr, plain), false)
		sick.Stop(t)
		if c, err := net.DialTimeout("tcp", sick.Addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("a stopped server still accepts connections at %s", sick.Addr)
		}
	})
}

// TestGracefulStop stops the servers as SIGTERM does: every name reports
// NOT_SERVING at once, calls are still served while the server drains, it
// exits 0 once the drain time is over and not before, and SIGINT during the
// drain stops it at once.
func TestGracefulStop(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack stacktest.Stack) {
		const drain = 1500 * time.Millisecond
		s := stacktest.Start(t, stack, stacktest.Options{ID: "draining", DrainTime: drain, Grace: 5 * time.Second})
		conn := dial(t, s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		checkServing(t, conn, true)
		start := time.Now()
		s.Terminate(t)
		checkServing(t, conn, false)
		sayHello(t, s, conn, "draining")
		s.WaitExit(t, drain+10*time.Second)
		if took := time.Since(start); took < drain {
			t.Errorf("exited %v after SIGTERM, before the drain time %v", took, drain)
		}
		if c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("a stopped server still accepts connections at %s", s.Addr)
		}

		s = stacktest.Start(t, stack, stacktest.Options{DrainTime: time.Minute})
		s.Terminate(t)
		start = time.Now()
		s.Stop(t)
		select {
		case <-s.Exited():
		default:
			t.Fatal("Stop returned before the server exited")
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("SIGINT while draining for a minute: exited after %v, want at once", took)
		}
	})
}

// TestKill kills the servers: they are gone when Kill returns, and the end
// of the test does not take their exit for a failure.
func TestKill(t *testing.T) {
	forEachStack(t, func(t *testing.T, stack stacktest.Stack) {
		s := stacktest.Start(t, stack, stacktest.Options{})
		s.Kill(t)
		if c, err := net.DialTimeout("tcp", s.Addr, 5*time.Second); err == nil {
			c.Close()
			t.Errorf("a killed server still accepts connections at %s", s.Addr)
		}
	})
}
