package nginxtest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestGRPCProxy passes real grpc-go calls through nginx to a grpc-go
// health server, then stops the server: nginx answers the next call at
// once with HTTP status 502, which the client sees as a gRPC error.
func TestGRPCProxy(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("nginxtest.Draining", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	stopUpstream := sync.OnceFunc(func() {
		srv.Stop()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("the upstream gRPC server did not stop within 5s")
		}
	})
	t.Cleanup(stopUpstream)

	listen := freeAddr(t)
	n := Start(t, t.TempDir(), GRPCProxyConfig(listen, lis.Addr().String()))

	conn, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthpb.NewHealthClient(conn)
	check := func(service string) (*healthpb.HealthCheckResponse, time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		return resp, time.Since(start), err
	}

	// The server's answers pass through whole: messages, and the status
	// in the trailers.
	for service, want := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"":                   healthpb.HealthCheckResponse_SERVING,
		"nginxtest.Draining": healthpb.HealthCheckResponse_NOT_SERVING,
	} {
		resp, _, err := check(service)
		if err != nil || resp.GetStatus() != want {
			t.Fatalf("Check(%q) through nginx: %v, %v; want %v\nnginx log:\n%s", service, resp.GetStatus(), err, want, n.Log())
		}
	}
	if _, _, err := check("nginxtest.Unknown"); status.Code(err) != codes.NotFound {
		t.Errorf("Check of an unknown service through nginx: %v, want the server's NotFound", err)
	}

	stopUpstream()
	_, took, err := check("")
	if c := status.Code(err); c != codes.Unavailable && c != codes.Unknown {
		t.Fatalf("Check with the upstream stopped: %v (%v), want Unavailable or Unknown from nginx's 502", err, c)
	}
	if !strings.Contains(err.Error(), "502") {
		t.Errorf("Check with the upstream stopped: %v; want HTTP status 502 in it", err)
	}
	if took >= time.Second {
		t.Errorf("nginx took %v to answer with the upstream stopped; want well under 2s", took)
	}
	t.Logf("with the upstream stopped, the call failed in %v: %v", took, err)

	// nginx's own logs agree: the upstream refused, and nginx said 502.
	// nginx writes them as it ends the request, after the answer, and its
	// stderr passes through a pipe: wait for them, a bounded time.
	if !eventually(func() bool { return strings.Contains(n.Log(), "Connection refused") }) {
		t.Errorf("nginx's error log does not report the refused upstream connection:\n%s", n.Log())
	}
	if !eventually(func() bool {
		return strings.Contains(n.AccessLog(), `"POST /grpc.health.v1.Health/Check HTTP/2.0" 502 `)
	}) {
		t.Errorf("nginx's access log has no 502 for the last call:\n%s", n.AccessLog())
	}
}

// eventually reports whether cond holds within 2s.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// TestGRPCProxyConfig checks the configuration's two directives, and that
// Start finds its listen address to wait on.
func TestGRPCProxyConfig(t *testing.T) {
	got := GRPCProxyConfig("127.0.0.1:8443", "127.0.0.1:50051")
	for _, want := range []string{"listen 127.0.0.1:8443 http2;", "grpc_pass grpc://127.0.0.1:50051;"} {
		if !strings.Contains(got, want) {
			t.Errorf("GRPCProxyConfig: no %q in\n%s", want, got)
		}
	}
	if m := listenArg.FindAllStringSubmatch(got, -1); len(m) != 1 || m[0][1] != "127.0.0.1:8443" {
		t.Errorf("listen addresses of GRPCProxyConfig: %q, want 127.0.0.1:8443", m)
	}
}

// TestGRPCProxiesConfig checks that each proxy gets its server, and that
// Start finds every listen address to wait on.
func TestGRPCProxiesConfig(t *testing.T) {
	got := GRPCProxiesConfig(GRPCProxy{"127.0.0.1:8443", "127.0.0.1:50051"}, GRPCProxy{"127.0.0.2:8443", "127.0.0.2:50051"})
	for _, want := range []string{
		"listen 127.0.0.1:8443 http2;", "grpc_pass grpc://127.0.0.1:50051;",
		"listen 127.0.0.2:8443 http2;", "grpc_pass grpc://127.0.0.2:50051;",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("GRPCProxiesConfig: no %q in\n%s", want, got)
		}
	}
	if n := strings.Count(got, "server {"); n != 2 {
		t.Errorf("GRPCProxiesConfig: %d servers, want 2:\n%s", n, got)
	}
	if m := listenArg.FindAllStringSubmatch(got, -1); len(m) != 2 || m[0][1] != "127.0.0.1:8443" || m[1][1] != "127.0.0.2:8443" {
		t.Errorf("listen addresses of GRPCProxiesConfig: %q, want 127.0.0.1:8443 and 127.0.0.2:8443", m)
	}
}
