// Command goserver is the grpc-go test server of the end-to-end tests. It
// has the command-line interface shared with the grpc-js server
// (e2e/stacks/node/server.js) and the C-core server
// (e2e/stacks/python/server.py):
//
//	goserver --addr HOST:PORT [--services servicestatus,greeter,health]
//	         [--id ID] [--not-serving] [--tls-cert FILE --tls-key FILE]
//	         [--drain-time DURATION] [--grace DURATION]
//
// It serves servicestatus.HealthCheck through the generated
// HealthCheckHealthResponder, grpc.health.v1.Health through grpc-go's health
// server (SERVING for "", "helloworld.Greeter" and
// "servicestatus.HealthCheck") and helloworld.Greeter, whose reply names
// --id. SIGUSR1 makes it not serving, SIGUSR2 serving again. SIGTERM stops
// it gracefully, as grpc-go servers behind HAProxy's generated checks should
// stop: it reports not serving on every name (which drains it from HAProxy
// at the next check), waits --drain-time (the drain-time of the fragment's
// contract line), lets the calls in flight finish for at most --grace
// (GracefulStop, which also sends clients a GOAWAY), then stops (Stop) and
// exits 0; SIGUSR1 and SIGUSR2 no longer change its state then. SIGINT, or
// a second SIGTERM, stops it at once. On standard output
// it prints "listening HOST:PORT" once it accepts connections, "serving
// true" or "serving false" after each change of state (SIGTERM's
// included), and one JSON line per call with the method, the :authority,
// the user agent and the metadata it received.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/servicestatus"
)

// healthNames are the names grpc.health.v1.Health reports on.
var healthNames = []string{"", "helloworld.Greeter", "servicestatus.HealthCheck"}

// out prints whole lines on standard output, one writer at a time.
type out struct{ mu sync.Mutex }

// println prints one line.
func (o *out) println(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintln(os.Stdout, line)
}

// call is the JSON line printed for every call.
type call struct {
	Method    string            `json:"method"`
	Authority string            `json:"authority"`
	Metadata  map[string]string `json:"metadata"`
	UserAgent string            `json:"user_agent"`
}

// record is the unary interceptor that prints every call before handling it.
func (o *out) record(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c := call{Method: info.FullMethod, Metadata: map[string]string{}}
	for key, values := range md {
		if strings.HasSuffix(key, "-bin") {
			encoded := make([]string, len(values))
			for i, v := range values {
				encoded[i] = base64.StdEncoding.EncodeToString([]byte(v))
			}
			values = encoded
		}
		joined := strings.Join(values, ",")
		switch {
		case key == ":authority":
			c.Authority = joined
		case key == "user-agent":
			c.UserAgent = joined
		case !strings.HasPrefix(key, ":"):
			c.Metadata[key] = joined
		}
	}
	line, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	o.println(string(line))
	return handler(ctx, req)
}

// greeter implements helloworld.Greeter, naming the server in its reply.
type greeter struct {
	helloworld.UnimplementedGreeterServer
	id string
}

// SayHello greets req's name from the server's id.
func (g greeter) SayHello(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Message: "Hello " + req.GetName() + " from " + g.id}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "`HOST:PORT` to listen on")
	services := flag.String("services", "servicestatus,greeter,health", "comma-separated `LIST` of services to serve: servicestatus, greeter, health")
	id := flag.String("id", "", "`ID` that the Greeter's replies name (default: the listen address)")
	notServing := flag.Bool("not-serving", false, "start not serving")
	tlsCert := flag.String("tls-cert", "", "serve TLS with this certificate `FILE` (PEM)")
	tlsKey := flag.String("tls-key", "", "serve TLS with this private key `FILE` (PEM)")
	drainTime := flag.Duration("drain-time", 0, "on SIGTERM, how long to report not serving before stopping: the drain-time of the fragment's contract line")
	grace := flag.Duration("grace", 10*time.Second, "on SIGTERM, how long calls in flight may take to finish after the drain time")
	flag.Parse()
	stop := stopping{drainTime: *drainTime, grace: *grace}
	if err := run(*addr, strings.Split(*services, ","), *id, !*notServing, *tlsCert, *tlsKey, stop); err != nil {
		fmt.Fprintln(os.Stderr, "goserver:", err)
		os.Exit(1)
	}
}

// stopping is how the server stops on SIGTERM.
type stopping struct {
	// drainTime is how long it reports not serving before it stops.
	drainTime time.Duration
	// grace bounds how long the calls in flight may take once it stops.
	grace time.Duration
}

// run serves until it has stopped on SIGTERM or SIGINT.
func run(addr string, services []string, id string, serving bool, tlsCert, tlsKey string, stop stopping) error {
	for _, s := range services {
		if !slices.Contains([]string{"servicestatus", "greeter", "health"}, s) {
			return fmt.Errorf("unknown service %q in --services", s)
		}
	}
	o := &out{}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(o.record)}
	if tlsCert != "" || tlsKey != "" {
		creds, err := credentials.NewServerTLSFromFile(tlsCert, tlsKey)
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(creds))
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if id == "" {
		id = lis.Addr().String()
	}
	srv := grpc.NewServer(opts...)
	responder := &servicestatus.HealthCheckHealthResponder{}
	hs := health.NewServer()
	setServing := func(serving bool) {
		responder.SetServing(serving)
		status := grpc_health_v1.HealthCheckResponse_NOT_SERVING
		if serving {
			status = grpc_health_v1.HealthCheckResponse_SERVING
		}
		for _, name := range healthNames {
			hs.SetServingStatus(name, status)
		}
	}
	setServing(serving)
	if slices.Contains(services, "servicestatus") {
		servicestatus.RegisterHealthCheckServer(srv, responder)
	}
	if slices.Contains(services, "greeter") {
		helloworld.RegisterGreeterServer(srv, greeter{id: id})
	}
	if slices.Contains(services, "health") {
		grpc_health_v1.RegisterHealthServer(srv, hs)
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	o.println("listening " + lis.Addr().String())
	var (
		stopped chan struct{} // closed once a graceful stop has ended; nil before SIGTERM
		now     = make(chan struct{})
	)
	for {
		select {
		case err := <-served:
			if stopped == nil {
				return err
			}
			// Serve returns as soon as GracefulStop closes the listener,
			// while the calls in flight go on.
			served = nil
		case <-stopped:
			return nil
		case sig := <-signals:
			switch {
			case (sig == syscall.SIGUSR1 || sig == syscall.SIGUSR2) && stopped == nil:
				serving := sig == syscall.SIGUSR2
				setServing(serving)
				o.println(fmt.Sprintf("serving %t", serving))
			case sig == syscall.SIGTERM && stopped == nil:
				setServing(false)
				o.println("serving false")
				stopped = make(chan struct{})
				go func() {
					stopGracefully(srv, stop, now)
					close(stopped)
				}()
			case sig == syscall.SIGTERM || sig == syscall.SIGINT:
				if stopped == nil {
					srv.Stop()
					return nil
				}
				select {
				case <-now:
				default:
					close(now)
				}
			}
		}
	}
}

// stopGracefully waits the drain time, so that HAProxy's checks see the
// server not serving and send it no new connections, then lets the calls
// in flight finish for at most the grace period, and stops srv; it stops
// srv at once when now is closed.
func stopGracefully(srv *grpc.Server, stop stopping, now <-chan struct{}) {
	drained := time.NewTimer(stop.drainTime)
	defer drained.Stop()
	select {
	case <-drained.C:
	case <-now:
		srv.Stop()
		return
	}
	finished := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(finished)
	}()
	graceOver := time.NewTimer(stop.grace)
	defer graceOver.Stop()
	select {
	case <-finished:
	case <-graceOver.C:
	case <-now:
	}
	srv.Stop()
}
