package paymentsv1

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestHealthResponder calls the generated responder through grpc-go: it
// answers STATE_READY while serving and the annotation's not-serving
// response, STATE_DEGRADED, while not.
func TestHealthResponder(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	responder := &PaymentServiceHealthResponder{}
	RegisterPaymentServiceServer(srv, responder)
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := NewPaymentServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		serving bool
		want    State
	}{{true, State_STATE_READY}, {false, State_STATE_DEGRADED}, {true, State_STATE_READY}} {
		responder.SetServing(tc.serving)
		resp, err := client.Ping(ctx, &PingRequest{})
		if err != nil {
			t.Fatalf("serving %v: %v", tc.serving, err)
		}
		if resp.GetState() != tc.want {
			t.Errorf("serving %v: state %v, want %v", tc.serving, resp.GetState(), tc.want)
		}
	}
}
