package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/servicestatus"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// exampleProtos are the example's proto files, relative to example/proto.
var exampleProtos = []string{"servicestatus/servicestatus.proto", "helloworld/greeter.proto"}

// generateExample runs real protoc with the built plugin on the example's
// protos and returns the output directory.
func generateExample(t *testing.T) string {
	t.Helper()
	return protocExample(t, "paths=source_relative", map[string]string{"haproxycheck": testenv.BuildPlugin(t)})
}

// protocExample runs real protoc on the example's protos with plugins, a
// map from a plugin's name ("go" for protoc-gen-go) to its binary, each
// given param, and returns the output directory.
func protocExample(t *testing.T, param string, plugins map[string]string) string {
	t.Helper()
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	out := t.TempDir()
	args := []string{"-I", filepath.Join(root, "options"), "-I", filepath.Join(root, "example", "proto")}
	for name, bin := range plugins {
		args = append(args, "--plugin=protoc-gen-"+name+"="+bin, "--"+name+"_out="+out, "--"+name+"_opt="+param)
	}
	testenv.Run(t, filepath.Join(root, "example", "proto"), time.Minute, protoc, append(args, exampleProtos...)...)
	return out
}

// exampleServerBin is the example server, built once by TestMain.
var exampleServerBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests builds the example server for the tests, runs them, and removes
// the build.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "haproxycheck-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, _ := testenv.Root()
	exampleServerBin = filepath.Join(dir, "server")
	if out, err := testenv.RunErr(root, 5*time.Minute, "go", "build", "-o", exampleServerBin, "./example/server"); err != nil {
		fmt.Fprintf(os.Stderr, "building the example server: %v\n%s", err, out)
		return 1
	}
	return stacktest.Main(m)
}

// serverProcess is a running example server.
type serverProcess struct {
	*testenv.Process
	log testenv.Output
}

// startExampleServer runs the example server on addr, serving services, and
// stops it when the test ends.
func startExampleServer(t *testing.T, addr, services string) *serverProcess {
	t.Helper()
	p := &serverProcess{}
	cmd := exec.Command(exampleServerBin, "-addr", addr, "-services", services)
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("example server on %s:\n%s", addr, p.log.String())
		}
	})
	p.Process = testenv.StartProcess(t, "the example server", cmd, os.Kill, 5*time.Second)
	testenv.WaitAccepting(t, "the example server", addr, 10*time.Second)
	return p
}

// terminate sends the server SIGTERM, on which it stops gracefully: it
// says it is not serving, waits the drain time, then stops.
func (p *serverProcess) terminate() { _ = p.Signal(syscall.SIGTERM) }

// waitExit waits, at most timeout, until the server has exited, and fails
// the test unless it exited with status 0.
func (p *serverProcess) waitExit(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(timeout):
		t.Fatalf("the example server did not exit within %v of SIGTERM", timeout)
	}
	if _, err := p.Exited(); err != nil {
		t.Errorf("the example server exited after SIGTERM with %v, want status 0", err)
	}
}

// kill stops the server at once and waits (at most 5 s) for it to exit.
func (p *serverProcess) kill() { p.Stop(os.Kill, 5*time.Second) }

// checkKind is one of the example's checked services.
type checkKind struct {
	service, backend, envVar, serves, other string
	subnet                                  string // the 127.0.N. addresses its servers use
	// drainTime is how long the example server says it is not serving
	// before it stops, after SIGTERM: the generated drain time.
	drainTime time.Duration
	// drains reports whether the check drains a server that says it is
	// not serving (NOLB, L7OKC) rather than failing it (DOWN, L7RSP).
	drains bool
}

var exampleKinds = []checkKind{
	{service: "servicestatus.HealthCheck", backend: "servicestatus", envVar: "SERVICESTATUS_SERVERS", serves: "servicestatus", other: "greeter", subnet: "127.0.31.",
		drainTime: servicestatus.HealthCheckDrainTime},
	{service: "helloworld.Greeter", backend: "greeter", envVar: "GREETER_SERVERS", serves: "greeter", other: "servicestatus", subnet: "127.0.32.",
		drainTime: helloworld.GreeterDrainTime, drains: true},
}

// exampleSlack is what the example test's timed waits allow beyond
// HAProxy's own timing: the stats polls and a loaded machine.
const exampleSlack = 2 * time.Second

// TestExampleChecksOnHAProxy loads the fragments that real protoc generates
// for the example into real HAProxy, which checks real example servers: a
// healthy one is UP; a server of the other service is never passed by a
// check, failed by the response rule (L7RSP) rather than by a timeout; a
// stopped one is DOWN. A server told to stop with SIGTERM stops gracefully
// with the generated code: it says it is not serving, and the Greeter
// check drains it (NOLB, L7OKC) at its first check, while the
// servicestatus check, which has no not-serving response, fails it (DOWN,
// L7RSP) after fall checks, both before the drain time is over; then it
// stops, and is DOWN with L4CON. The healthy and the stopping server are
// also checked through a relay that splits their answers at every byte.
func TestExampleChecksOnHAProxy(t *testing.T) {
	t.Parallel()
	gen := generateExample(t)
	for _, kind := range exampleKinds {
		t.Run(kind.backend, func(t *testing.T) {
			t.Parallel()
			testExampleKind(t, gen, kind)
		})
	}
}

func testExampleKind(t *testing.T, gen string, kind checkKind) {
	healthyIP, stoppingIP, killedIP, otherIP := kind.subnet+"1", kind.subnet+"2", kind.subnet+"3", kind.subnet+"4"
	healthySplitIP, stoppingSplitIP := kind.subnet+"5", kind.subnet+"6"
	ips := []string{healthyIP, stoppingIP, killedIP, otherIP, healthySplitIP, stoppingSplitIP}
	port := testenv.FreePort(t, ips)
	addr := func(ip string) string { return net.JoinHostPort(ip, port) }

	startExampleServer(t, addr(healthyIP), kind.serves)
	stopping := startExampleServer(t, addr(stoppingIP), kind.serves)
	killed := startExampleServer(t, addr(killedIP), kind.serves)
	startExampleServer(t, addr(otherIP), kind.other)
	startByteRelay(t, addr(healthySplitIP), addr(healthyIP))
	startByteRelay(t, addr(stoppingSplitIP), addr(stoppingIP))

	hap := startHAProxy(t, []string{filepath.Join(gen, "haproxy", kind.service+".cfg")}, "", kind.backend+".test", ips, port, kind.envVar)
	watch := watchBackends(t, hap, kind.backend)

	const upWithin = 30 * time.Second // rise 2 × inter 2s, plus DNS resolution
	for _, ip := range []string{healthyIP, stoppingIP, killedIP, healthySplitIP, stoppingSplitIP} {
		s := hap.WaitStatus(t, kind.backend, addr(ip), "UP", upWithin)
		if s.CheckStatus != "L7OK" {
			t.Errorf("healthy server %s is UP with last check %s, want L7OK", addr(ip), s.CheckStatus)
		}
	}
	o := hap.WaitStatus(t, kind.backend, addr(otherIP), "DOWN", upWithin)
	if o.CheckStatus != "L7RSP" {
		t.Errorf("server of another service: last check %s, want L7RSP (failed by the response rule, not by a timeout)", o.CheckStatus)
	}

	start := time.Now()
	stopping.terminate()
	// Not serving, and still running until the drain time is over.
	want, check := "DOWN", "L7RSP"
	if kind.drains {
		want, check = "NOLB", "L7OKC"
	}
	for _, ip := range []string{stoppingIP, stoppingSplitIP} {
		s := hap.WaitStatus(t, kind.backend, addr(ip), want, kind.drainTime+exampleSlack)
		if s.CheckStatus != check {
			t.Errorf("stopping server %s: %s with last check %s, want %s (ended by a rule at once, not by a timeout)", addr(ip), want, s.CheckStatus, check)
		}
		t.Logf("stopping server %s: %s %s %v after SIGTERM (drain time %v)", addr(ip), s.Status, s.CheckStatus, time.Since(start).Round(time.Millisecond), kind.drainTime)
	}
	stopping.waitExit(t, kind.drainTime+10*time.Second) // the example server's -grace
	t.Logf("the stopping server exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	const downWithin = 20 * time.Second // fall 3 × inter 2s, plus slack
	waitState(t, hap, kind.backend, addr(stoppingIP), "DOWN", "L4CON", downWithin)
	// The relay still accepts connections, and closes them.
	s := hap.WaitStatus(t, kind.backend, addr(stoppingSplitIP), "DOWN", downWithin)
	t.Logf("relay of the stopped server: DOWN, last check %s", s.CheckStatus)

	killed.kill()
	if s := hap.WaitStatus(t, kind.backend, addr(killedIP), "DOWN", downWithin); !strings.HasPrefix(s.CheckStatus, "L4") {
		t.Errorf("killed server: last check %s, want a layer 4 failure", s.CheckStatus)
	}

	if h, _, _ := hap.ServerAt(kind.backend, addr(healthyIP)); h.Status != "UP" {
		t.Errorf("healthy server ended %s (%s), want UP", h.Status, h.CheckStatus)
	}
	if h, _, _ := hap.ServerAt(kind.backend, addr(healthySplitIP)); h.Status != "UP" {
		t.Errorf("healthy server behind the byte relay ended %s (%s), want UP", h.Status, h.CheckStatus)
	}
	watch.assertNeverPassed(t, kind.backend, addr(otherIP), "DOWN")
}
