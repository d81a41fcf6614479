package e2e

import (
	"context"
	"net"
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

// heldGreeter answers SayHello at once, or, for the name "hold", once
// release is closed; it tells held when it has such a call.
type heldGreeter struct {
	helloworld.UnimplementedGreeterServer
	held    chan struct{}
	release chan struct{}
}

func (g heldGreeter) SayHello(ctx context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	if req.GetName() == "hold" {
		select {
		case g.held <- struct{}{}:
		default:
		}
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &helloworld.HelloReply{Message: "Hello " + req.GetName()}, nil
}

// gracefulGreeter is a grpc-go server of the Greeter (a heldGreeter) and
// grpc.health.v1 on loopback.
type gracefulGreeter struct {
	srv     *grpc.Server
	hs      *health.Server
	addr    string
	held    chan struct{}
	release chan struct{} // closed to answer held calls
}

// gracefulServer starts a gracefulGreeter, stopped when the test ends.
func gracefulServer(t *testing.T) *gracefulGreeter {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gracefulGreeter{
		srv: grpc.NewServer(), hs: health.NewServer(), addr: l.Addr().String(),
		held: make(chan struct{}, 1), release: make(chan struct{}),
	}
	helloworld.RegisterGreeterServer(g.srv, heldGreeter{held: g.held, release: g.release})
	grpc_health_v1.RegisterHealthServer(g.srv, g.hs)
	helloworld.SetGreeterServing(g.hs, true)
	go func() { _ = g.srv.Serve(l) }()
	t.Cleanup(g.srv.Stop)
	return g
}

// hold starts a call that the server holds until release is closed, waits
// (at most 10 s) until the server has it, and returns the channel that
// gets the call's result.
func (g *gracefulGreeter) hold(t *testing.T, ctx context.Context) <-chan error {
	t.Helper()
	result := make(chan error, 1)
	go func() { result <- greet(ctx, g.addr, "hold") }()
	select {
	case <-g.held:
	case err := <-result:
		t.Fatalf("the held call ended before the server held it: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the held call did not reach the server within 10s")
	}
	return result
}

// greet calls SayHello on a connection of its own.
func greet(ctx context.Context, addr, name string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = helloworld.NewGreeterClient(conn).SayHello(ctx, &helloworld.HelloRequest{Name: name})
	return err
}

// TestStopGreeterGracefully runs the generated graceful stop on a grpc-go
// server with a call in flight: the server reports NOT_SERVING at once,
// still takes new calls while HAProxy's checks see it (GreeterDrainTime),
// then takes no new connection, lets the call in flight finish, and
// stops; a call in flight longer than the grace is cut when it ends.
func TestStopGreeterGracefully(t *testing.T) {
	t.Parallel()
	t.Run("calls in flight finish", func(t *testing.T) {
		t.Parallel()
		g := gracefulServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		held := g.hold(t, ctx)

		start := time.Now()
		stopped := make(chan struct{})
		go func() {
			helloworld.StopGreeterGracefully(ctx, g.srv, g.hs, 10*time.Second)
			close(stopped)
		}()
		waitNotServing(t, ctx, g.hs)
		if err := greet(ctx, g.addr, "during the drain"); err != nil {
			t.Errorf("a new call while HAProxy's checks see the drain: %v", err)
		}
		time.Sleep(time.Until(start.Add(helloworld.GreeterDrainTime + 500*time.Millisecond)))
		dialCtx, cancelDial := context.WithTimeout(ctx, time.Second)
		defer cancelDial()
		if err := greet(dialCtx, g.addr, "after the drain"); err == nil {
			t.Error("a new connection after the drain time was served; the server should be stopping")
		}
		select {
		case <-stopped:
			t.Fatal("the stop returned with a call in flight")
		default:
		}
		close(g.release)
		if err := <-held; err != nil {
			t.Errorf("the call in flight: %v", err)
		}
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatal("the stop did not return once the call in flight finished")
		}
		if took := time.Since(start); took < helloworld.GreeterDrainTime {
			t.Errorf("stopped after %v, sooner than GreeterDrainTime (%v)", took, helloworld.GreeterDrainTime)
		}
	})
	t.Run("grace bounds a call in flight", func(t *testing.T) {
		t.Parallel()
		g := gracefulServer(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		held := g.hold(t, ctx)
		start := time.Now()
		helloworld.StopGreeterGracefully(ctx, g.srv, g.hs, 300*time.Millisecond)
		if took := time.Since(start); took > helloworld.GreeterDrainTime+3*time.Second {
			t.Errorf("stopped after %v, want about GreeterDrainTime (%v) and the grace (300ms)", took, helloworld.GreeterDrainTime)
		}
		if err := <-held; status.Code(err) != codes.Unavailable {
			t.Errorf("the call in flight past the grace: %v, want Unavailable", err)
		}
	})
}

// TestStopGracefullyWhenDone runs the health responder's graceful stop with
// a context that ends during the drain: it reports not serving, then stops
// the server at once.
func TestStopGracefullyWhenDone(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, responder := grpc.NewServer(), &servicestatus.HealthCheckHealthResponder{}
	servicestatus.RegisterHealthCheckServer(srv, responder)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		responder.StopGracefully(ctx, srv, time.Minute)
		close(stopped)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for responder.Serving() {
		if time.Now().After(deadline) {
			t.Fatal("the responder still serves 5s after the stop began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatalf("the stop did not return at once when its context ended (HealthCheckDrainTime is %v)", servicestatus.HealthCheckDrainTime)
	}
	if conn, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Error("the server still accepts connections after the stop")
	}
}

// waitNotServing waits, at most 5 s, until hs reports the Greeter not
// serving.
func waitNotServing(t *testing.T, ctx context.Context, hs *health.Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := hs.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: helloworld.GreeterHealthServiceName})
		if err == nil && resp.GetStatus() == grpc_health_v1.HealthCheckResponse_NOT_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Greeter still %v 5s after the stop began (%v)", resp.GetStatus(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
