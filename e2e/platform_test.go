package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/servicestatus"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// exampleWithoutGo returns the example's protos without their go_package,
// as a repository of services written in other languages has them.
func exampleWithoutGo(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	goPackage := regexp.MustCompile(`(?m)^option go_package = .*\n`)
	for _, name := range exampleProtos {
		b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "example", "proto", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = goPackage.ReplaceAllString(string(b), "")
	}
	return files
}

// TestNonGoRepository generates checks for protos without go_package, as a
// Java, Python or Node repository has them, with protoc and with buf and no
// Go setting at all: both write the same fragments and nothing else, and
// real HAProxy finds a grpc-js server UP while it serves, and while it does
// not, drains it (NOLB, L7OKC) with the grpc.health.v1 check and fails it
// (DOWN, L7RSP) with the health RPC check.
func TestNonGoRepository(t *testing.T) {
	t.Parallel()
	plugin := testenv.BuildPlugin(t)
	files := exampleWithoutGo(t)
	out := generateProtos(t, plugin, "", files)
	var generated []string
	for name := range readTree(t, out) {
		generated = append(generated, name)
	}
	slices.Sort(generated)
	if want := []string{"haproxy/helloworld.Greeter.cfg", "haproxy/servicestatus.HealthCheck.cfg"}; !slices.Equal(generated, want) {
		t.Errorf("protoc generated %q, want %q", generated, want)
	}

	root := testenv.RepoRoot(t)
	buf := testenv.BuildTool(t, bufModfile, bufCommand)
	repo := t.TempDir()
	for name, source := range files {
		path := filepath.Join(repo, "proto", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(source), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := map[string]string{
		"buf.yaml":     "version: v2\nmodules:\n  - path: proto\n  - path: third_party/haproxycheck\n",
		"buf.gen.yaml": "version: v2\nplugins:\n  - local: " + plugin + "\n    out: gen\ninputs:\n  - directory: proto\n",
	}
	for name, content := range config {
		if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Run(t, root, time.Minute, buf, "export", "options", "--output", filepath.Join(repo, "third_party", "haproxycheck"))
	testenv.Run(t, repo, 5*time.Minute, buf, "generate")
	assertSameTree(t, filepath.Join(repo, "gen"), out, nil)

	healthy, sick := "127.0.61.1", "127.0.61.2"
	port := testenv.FreePort(t, []string{healthy, sick})
	addr := func(ip string) string { return net.JoinHostPort(ip, port) }
	stacktest.Start(t, stacktest.NodeStack, stacktest.Options{Addr: addr(healthy)})
	stacktest.Start(t, stacktest.NodeStack, stacktest.Options{Addr: addr(sick), NotServing: true})
	hap := startHAProxy(t, []string{filepath.Join(out, "haproxy")}, "", "nongo.test", []string{healthy, sick}, port,
		"SERVICESTATUS_SERVERS", "GREETER_SERVERS")
	for _, b := range []struct{ backend, status, check string }{{"servicestatus", "DOWN", "L7RSP"}, {"greeter", "NOLB", "L7OKC"}} {
		hap.WaitStatus(t, b.backend, addr(healthy), "UP", 30*time.Second)
		if s := hap.WaitStatus(t, b.backend, addr(sick), b.status, 30*time.Second); s.CheckStatus != b.check {
			t.Errorf("%s: not-serving grpc-js server: %s with last check %s, want %s", b.backend, b.status, s.CheckStatus, b.check)
		}
	}
}

// statusProto is servicestatus.HealthCheck with, in this order, file
// options and check settings.
const statusProto = `syntax = "proto3";
package servicestatus;
import "haproxycheck/v1/haproxycheck.proto";
option go_package = "example.com/e2e/servicestatus";
%s
service HealthCheck {
  rpc Check(HealthCheckRequest) returns (HealthCheckResponse) {
    option (haproxycheck.v1.health_rpc) = {
      expected_response: 'Status: "MagicResponseCodeOK"'
      check: {backend: "servicestatus" %s}
    };
  }
}
message HealthCheckRequest {}
message HealthCheckResponse { string Status = 1; }
`

// seenCall is what an in-process server saw of one call.
type seenCall struct {
	userAgent string
	deadline  time.Duration // from the start of the call; zero without one
}

// callRecorder records every call an in-process grpc-go server gets.
type callRecorder struct {
	mu    sync.Mutex
	calls []seenCall
}

func (r *callRecorder) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	var call seenCall
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		call.userAgent = strings.Join(md.Get("user-agent"), ",")
	}
	if d, ok := ctx.Deadline(); ok {
		call.deadline = time.Until(d)
	}
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
	return handler(ctx, req)
}

func (r *callRecorder) seen() []seenCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// TestProxyProtocol checks a grpc-go server that takes only connections
// that start with a PROXY protocol v2 header (go-proxyproto): the fragment
// of a check with servers.send_proxy_v2 is UP while it serves and DOWN
// while not. The server sees every check's grpc-timeout, as a deadline,
// and the user-agent naming the generator.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	out := generateProtos(t, testenv.BuildPlugin(t), "", map[string]string{
		"servicestatus/servicestatus.proto": fmt.Sprintf(statusProto, "", "servers: {send_proxy_v2: true} timing: {inter_ms: 500 rise: 2 fall: 2}"),
	})

	lis, err := net.Listen("tcp", "127.0.62.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var headers atomic.Int64
	proxied := &proxyproto.Listener{Listener: lis, ValidateHeader: func(*proxyproto.Header) error {
		headers.Add(1)
		return nil
	}}
	var rec callRecorder
	srv := grpc.NewServer(grpc.UnaryInterceptor(rec.intercept))
	responder := &servicestatus.HealthCheckHealthResponder{}
	servicestatus.RegisterHealthCheckServer(srv, responder)
	hap, addr := serveChecked(t, srv, proxied, out, "proxied.test", "SERVICESTATUS_SERVERS", "servicestatus")
	if headers.Load() == 0 {
		t.Error("the server got no PROXY protocol header")
	}
	calls := rec.seen()
	if len(calls) == 0 {
		t.Fatal("the server saw no call")
	}
	for _, c := range calls {
		if !strings.HasPrefix(c.userAgent, "protoc-gen-haproxycheck/v") {
			t.Errorf("user-agent %q, want protoc-gen-haproxycheck/<version>", c.userAgent)
		}
		if c.deadline <= 0 || c.deadline > 500*time.Millisecond {
			t.Errorf("deadline %v after the call started, want the check's timeout, 500ms", c.deadline)
		}
	}
	responder.SetServing(false)
	if s := hap.WaitStatus(t, "servicestatus", addr, "DOWN", 30*time.Second); s.CheckStatus != "L7RSP" {
		t.Errorf("not serving: last check %s, want L7RSP", s.CheckStatus)
	}
}

// serveChecked serves srv on lis until the test ends, and runs HAProxy on
// the fragments in out/haproxy with lis's address as the one server of
// each backend, found through the DNS name name and the variable envVar;
// it waits until backend has the server UP, and returns HAProxy and the
// server's address.
func serveChecked(t *testing.T, srv *grpc.Server, lis net.Listener, out, name, envVar, backend string) (*haproxytest.HAProxy, string) {
	t.Helper()
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	addr := lis.Addr().String()
	ip, port, _ := net.SplitHostPort(addr)
	hap := startHAProxy(t, []string{filepath.Join(out, "haproxy")}, "", name, []string{ip}, port, envVar)
	hap.WaitStatus(t, backend, addr, "UP", 30*time.Second)
	return hap, addr
}

// slowHealthCheck is a servicestatus.HealthCheck whose Check sleeps for a
// minute, or until its call is cancelled.
type slowHealthCheck struct {
	servicestatus.UnimplementedHealthCheckServer
	cancelled chan error
}

func (s slowHealthCheck) Check(ctx context.Context, _ *servicestatus.HealthCheckRequest) (*servicestatus.HealthCheckResponse, error) {
	select {
	case <-ctx.Done():
		s.cancelled <- ctx.Err()
		return nil, ctx.Err()
	case <-time.After(time.Minute):
		s.cancelled <- nil
		return &servicestatus.HealthCheckResponse{Status: "MagicResponseCodeOK"}, nil
	}
}

// TestDeadlineCancelsSlowHandler sends a fragment's exact request bytes to
// a grpc-go server whose handler would sleep for a minute, and keeps the
// connection open, as a stuck check does: the grpc-timeout in the bytes
// makes the server cancel the handler after the check's timeout.
func TestDeadlineCancelsSlowHandler(t *testing.T) {
	t.Parallel()
	out := generateProtos(t, testenv.BuildPlugin(t), "", map[string]string{
		"servicestatus/servicestatus.proto": fmt.Sprintf(statusProto, "", "timing: {inter_ms: 2000 timeout_ms: 300}"),
	})
	request := requestOf(readFragment(t, filepath.Join(out, "haproxy", "servicestatus.HealthCheck.cfg")))

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slow := slowHealthCheck{cancelled: make(chan error, 1)}
	srv := grpc.NewServer()
	servicestatus.RegisterHealthCheckServer(srv, slow)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	conn, err := net.DialTimeout("tcp", lis.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write(request); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-slow.cancelled:
		// grpc-go cancels the call when its deadline passes; the connection
		// is still open, so nothing else ended it.
		took := time.Since(start)
		if err == nil || took < 250*time.Millisecond || took > 5*time.Second {
			t.Errorf("handler ended with %v after %v, want cancelled after about the check's timeout, 300ms", err, took)
		}
		t.Logf("handler cancelled (%v) after %v", err, took)
	case <-time.After(30 * time.Second):
		t.Fatal("the handler was not cancelled within 30s")
	}
}

// TestDrainWithOneCall runs a grpc-go server that registers the example's
// Greeter and the whole server with grpc-go's health server through the
// generated helper, and drains it with one call, hs.Shutdown: real HAProxy
// drains it (NOLB, L7OKC) at the first check after the call, within the
// fragment's drain time (one inter and the check's timeout), and has it UP
// again at the first check after hs.Resume, within two inters: rise does
// not apply to leaving NOLB.
func TestDrainWithOneCall(t *testing.T) {
	t.Parallel()
	const inter, slack = 500 * time.Millisecond, 500 * time.Millisecond // slack: the stats polls
	greeter := strings.Replace(exampleWithoutGo(t)["helloworld/greeter.proto"],
		`check: {backend: "greeter"}`, `check: {backend: "greeter" timing: {inter_ms: 500 rise: 2 fall: 2}}`, 1)
	out := generateProtos(t, testenv.BuildPlugin(t), "", map[string]string{"helloworld/greeter.proto": greeter})
	drainTime := readFragment(t, filepath.Join(out, "haproxy", "helloworld.Greeter.cfg")).Contract.DrainTime

	lis, err := net.Listen("tcp", "127.0.63.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, hs)
	helloworld.SetGreeterServing(hs, true)
	hap, addr := serveChecked(t, srv, lis, out, "drain.test", "GREETER_SERVERS", "greeter")
	start := time.Now()
	hs.Shutdown()
	s := hap.WaitStatus(t, "greeter", addr, "NOLB", 30*time.Second)
	took := time.Since(start)
	t.Logf("NOLB %v after hs.Shutdown (drain time %v), last check %s", took, drainTime, s.CheckStatus)
	if s.CheckStatus != "L7OKC" {
		t.Errorf("drained with last check %s, want L7OKC", s.CheckStatus)
	}
	if took > drainTime+slack {
		t.Errorf("NOLB after %v, want within the drain time, %v (with %v for the stats poll)", took, drainTime, slack)
	}
	start = time.Now()
	hs.Resume()
	s = hap.WaitStatus(t, "greeter", addr, "UP", 30*time.Second)
	took = time.Since(start)
	t.Logf("UP %v after hs.Resume (inter %v), last check %s", took, inter, s.CheckStatus)
	if took > 2*inter+slack {
		t.Errorf("UP after %v, want within two inters, %v (with %v for the stats poll)", took, 2*inter, slack)
	}
}

// TestOutputIsDeterministic generates the example with real protoc with
// its files in both orders, and once per directory: every output byte is
// the same.
func TestOutputIsDeterministic(t *testing.T) {
	t.Parallel()
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	plugin := testenv.BuildPlugin(t)
	run := func(out string, files ...string) {
		args := []string{"-I", filepath.Join(root, "options"), "-I", filepath.Join(root, "example", "proto"),
			"--plugin=protoc-gen-haproxycheck=" + plugin, "--haproxycheck_out=" + out, "--haproxycheck_opt=paths=source_relative"}
		testenv.Run(t, filepath.Join(root, "example", "proto"), time.Minute, protoc, append(args, files...)...)
	}
	inOrder, reversed, perDirectory := t.TempDir(), t.TempDir(), t.TempDir()
	run(inOrder, exampleProtos...)
	backwards := slices.Clone(exampleProtos)
	slices.Reverse(backwards)
	run(reversed, backwards...)
	for _, f := range exampleProtos {
		run(perDirectory, f)
	}
	assertSameTree(t, reversed, inOrder, nil)
	assertSameTree(t, perDirectory, inOrder, nil)
}
