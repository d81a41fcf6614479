package e2e

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/servicestatus"
)

// serve runs a grpc-go server on loopback with register's services and
// returns a client connection to it; both end with the test.
func serve(t *testing.T, register func(*grpc.Server)) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestHealthResponder calls the generated responder through a real grpc-go
// server: the magic status while serving, Unavailable while not, and
// consistent answers while another goroutine flips its state.
func TestHealthResponder(t *testing.T) {
	responder := &servicestatus.HealthCheckHealthResponder{}
	client := servicestatus.NewHealthCheckClient(serve(t, func(s *grpc.Server) {
		servicestatus.RegisterHealthCheckServer(s, responder)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := client.Check(ctx, &servicestatus.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != "MagicResponseCodeOK" || !responder.Serving() {
		t.Fatalf("serving: got %v, %v", resp, err)
	}
	responder.SetServing(false)
	if _, err := client.Check(ctx, &servicestatus.HealthCheckRequest{}); status.Code(err) != codes.Unavailable || responder.Serving() {
		t.Fatalf("not serving: got %v, want Unavailable", err)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			responder.SetServing(i%2 == 0)
		}
	}()
	for range 200 {
		resp, err := client.Check(ctx, &servicestatus.HealthCheckRequest{})
		if err == nil && resp.GetStatus() != "MagicResponseCodeOK" || err != nil && status.Code(err) != codes.Unavailable {
			t.Fatalf("while flipping: got %v, %v", resp, err)
		}
	}
	wg.Wait()
}

// TestSetGreeterServing checks that the generated helper reports the
// Greeter's status to grpc-go's health server under the name the check
// asks about.
func TestSetGreeterServing(t *testing.T) {
	hs := health.NewServer()
	client := grpc_health_v1.NewHealthClient(serve(t, func(s *grpc.Server) {
		grpc_health_v1.RegisterHealthServer(s, hs)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := &grpc_health_v1.HealthCheckRequest{Service: helloworld.GreeterHealthServiceName}
	if helloworld.GreeterHealthServiceName != "helloworld.Greeter" {
		t.Errorf("health service name %q, want helloworld.Greeter", helloworld.GreeterHealthServiceName)
	}
	for _, serving := range []bool{true, false, true} {
		helloworld.SetGreeterServing(hs, serving)
		want := grpc_health_v1.HealthCheckResponse_NOT_SERVING
		if serving {
			want = grpc_health_v1.HealthCheckResponse_SERVING
		}
		resp, err := client.Check(ctx, req)
		if err != nil || resp.GetStatus() != want {
			t.Errorf("serving %v: got %v, %v; want %v", serving, resp, err, want)
		}
	}
}
