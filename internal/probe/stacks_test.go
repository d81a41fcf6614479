package probe_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/reflect/protodesc"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// stackTimeout bounds the probes of real servers; a timeout case takes
// this long.
const stackTimeout = time.Second

// TestStacks probes real grpc-go, grpc-js and C-core servers with the
// example's fragments of both kinds, for every class of verdict: healthy;
// not serving, and a server of another service (wrong answer); a call
// whose request never ends (timeout); TLS with the right and the wrong
// authority (TLS failure), and a plaintext check of a TLS server, which
// every stack closes without an answer (wrong answer); a stopped server
// (connection failed).
func TestStacks(t *testing.T) {
	set := protogentest.ExampleSet(t, nil)
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatal(err)
	}
	opts := probe.Options{Timeout: stackTimeout, Files: files}
	kinds := map[string]*probe.Fragment{greeter: parse(t, protogentest.Fragment(t, set, greeter)), healthCheck: parse(t, protogentest.Fragment(t, set, healthCheck))}
	certFile, keyFile, caFile := stacktest.TLSFiles(t)
	_, _, otherCA := stacktest.TLSFiles(t)
	for _, stack := range stacktest.Stacks {
		t.Run(string(stack), func(t *testing.T) {
			t.Parallel()
			srv := stacktest.Start(t, stack, stacktest.Options{})
			other := stacktest.Start(t, stack, stacktest.Options{Services: []string{"greeter"}})
			tlsSrv := stacktest.Start(t, stack, stacktest.Options{TLSCert: certFile, TLSKey: keyFile})

			wantVerdict(t, run(t, kinds[greeter], srv.Addr, opts), probe.Healthy, probe.L7OK, "grpc.health.v1.HealthCheckResponse {status: SERVING}")
			wantVerdict(t, run(t, kinds[healthCheck], srv.Addr, opts), probe.Healthy, probe.L7OK, `servicestatus.HealthCheckResponse {Status: "MagicResponseCodeOK"}`)
			wantVerdict(t, run(t, withoutRequestMessage(t, kinds[greeter]), srv.Addr, opts), probe.Timeout, probe.L7TOUT,
				"did not end the call within 1s", "sent no response headers on stream 1")

			srv.SetServing(t, false)
			wantVerdict(t, run(t, kinds[greeter], srv.Addr, opts), probe.Draining, probe.L7OKC,
				"says it is not serving (grpc.health.v1.HealthCheckResponse {status: NOT_SERVING})")
			wantVerdict(t, run(t, kinds[healthCheck], srv.Addr, opts), probe.WrongAnswer, probe.L7RSP,
				"grpc-status 14 Unavailable", "the server is not serving")

			for _, f := range kinds {
				wantVerdict(t, run(t, f, other.Addr, opts), probe.WrongAnswer, probe.L7RSP, "grpc-status 12 Unimplemented", "does not implement")
			}

			verified := tlsFragment(t, "localhost", &haproxycheckv1.TLS{CaFile: caFile})
			wantVerdict(t, run(t, verified, tlsSrv.Addr, opts), probe.Healthy, probe.L7OK)
			wrongCA := tlsFragment(t, "localhost", &haproxycheckv1.TLS{CaFile: otherCA})
			wantVerdict(t, run(t, wrongCA, tlsSrv.Addr, opts), probe.TLSFailure, probe.L6RSP, "certificate signed by unknown authority")
			wantVerdict(t, run(t, kinds[greeter], tlsSrv.Addr, opts), probe.WrongAnswer, probe.L7RSP,
				"closed the connection without answering", "does the server expect TLS?")

			other.Stop(t)
			wantVerdict(t, run(t, kinds[greeter], other.Addr, opts), probe.ConnectionFailed, probe.L4CON, "connection refused")
		})
	}
}

// withoutRequestMessage returns f with its request cut after the HEADERS
// frame, so that a server waits for the request's message and never
// answers.
func withoutRequestMessage(t *testing.T, f *probe.Fragment) *probe.Fragment {
	t.Helper()
	cut := *f
	cut.Rules = append([]probe.Rule(nil), f.Rules...)
	req := cut.Rules[0].Data
	const headersAt = 24 + 9 // after the client preface and the empty SETTINGS
	length := int(req[headersAt])<<16 | int(req[headersAt+1])<<8 | int(req[headersAt+2])
	cut.Rules[0].Data = req[:headersAt+9+length]
	return &cut
}
