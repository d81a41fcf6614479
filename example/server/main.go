// Command server is the example's gRPC server. It serves
// servicestatus.HealthCheck through the generated HealthCheckHealthResponder
// and helloworld.Greeter with grpc-go's health server, so that HAProxy's
// generated checks of both find it healthy.
//
// On SIGTERM or SIGINT it stops gracefully, with the generated code: it
// reports not serving, waits as long as the generated checks need to stop
// sending it new connections (HealthCheckDrainTime, the longer of the two:
// HAProxy drains a Greeter server at its first check, and marks a
// servicestatus server DOWN after fall checks), lets the calls in flight
// finish for at most -grace, then stops. A second signal stops it at once.
//
//	go run ./example/server -addr 127.0.0.1:50051
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/servicestatus"
)

// greeter implements helloworld.Greeter.
type greeter struct {
	helloworld.UnimplementedGreeterServer
}

// SayHello greets req's name.
func (greeter) SayHello(_ context.Context, req *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	return &helloworld.HelloReply{Message: "Hello " + req.GetName()}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "address to listen on")
	services := flag.String("services", "servicestatus,greeter", "comma-separated services to serve: servicestatus, greeter")
	grace := flag.Duration("grace", 10*time.Second, "how long calls in flight may take to finish once HAProxy sends no new connections, after SIGTERM or SIGINT")
	flag.Parse()
	serve := strings.Split(*services, ",")

	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	status := &servicestatus.HealthCheckHealthResponder{}
	hs := health.NewServer()
	if slices.Contains(serve, "servicestatus") {
		servicestatus.RegisterHealthCheckServer(srv, status)
	}
	if slices.Contains(serve, "greeter") {
		helloworld.RegisterGreeterServer(srv, greeter{})
		grpc_health_v1.RegisterHealthServer(srv, hs)
		helloworld.SetGreeterServing(hs, true)
	}
	go func() {
		if err := srv.Serve(lis); err != nil {
			log.Fatal(err)
		}
	}()
	log.Printf("serving %s on %s", *services, lis.Addr())

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	ctx, stopNow := context.WithCancel(context.Background())
	go func() {
		<-signals
		stopNow()
	}()
	hs.Shutdown() // every grpc.health.v1 name NOT_SERVING: the Greeter check drains the server
	if slices.Contains(serve, "servicestatus") {
		log.Printf("stopping gracefully: not serving for %v, then calls in flight for at most %v", servicestatus.HealthCheckDrainTime, *grace)
		status.StopGracefully(ctx, srv, *grace)
	} else {
		log.Printf("stopping gracefully: not serving for %v, then calls in flight for at most %v", helloworld.GreeterDrainTime, *grace)
		helloworld.StopGreeterGracefully(ctx, srv, hs, *grace)
	}
	log.Print("stopped")
}
