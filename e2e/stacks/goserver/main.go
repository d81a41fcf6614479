// Command goserver is the grpc-go test server of the end-to-end tests. It
// has the command-line interface shared with the grpc-js server
// (e2e/stacks/node/server.js) and the C-core server
// (e2e/stacks/python/server.py):
//
//	goserver --addr HOST:PORT [--services servicestatus,greeter,health]
//	         [--id ID] [--not-serving] [--tls-cert FILE --tls-key FILE]
//
// It serves servicestatus.HealthCheck through the generated
// HealthCheckHealthResponder, grpc.health.v1.Health through grpc-go's health
// server (SERVING for "", "helloworld.Greeter" and
// "servicestatus.HealthCheck") and helloworld.Greeter, whose reply names
// --id. SIGUSR1 makes it not serving, SIGUSR2 serving again; SIGTERM and
// SIGINT stop it. On standard output it prints "listening HOST:PORT" once it
// accepts connections, "serving true" or "serving false" after each change
// of state, and one JSON line per call with the method, the :authority, the
// user agent and the metadata it received.
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
	flag.Parse()
	if err := run(*addr, strings.Split(*services, ","), *id, !*notServing, *tlsCert, *tlsKey); err != nil {
		fmt.Fprintln(os.Stderr, "goserver:", err)
		os.Exit(1)
	}
}

// run serves until SIGTERM or SIGINT.
func run(addr string, services []string, id string, serving bool, tlsCert, tlsKey string) error {
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
	for {
		select {
		case err := <-served:
			return err
		case sig := <-signals:
			switch sig {
			case syscall.SIGUSR1, syscall.SIGUSR2:
				serving := sig == syscall.SIGUSR2
				setServing(serving)
				o.println(fmt.Sprintf("serving %t", serving))
			default:
				srv.Stop()
				return nil
			}
		}
	}
}
