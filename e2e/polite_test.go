package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// stackLogging turns on what each stack logs about its connections:
// grpc-go's transport at info level, C-core's HTTP/2 transport trace, and
// every grpc-js trace.
var stackLogging = map[stacktest.Stack][]string{
	stacktest.GoStack:   {"GRPC_GO_LOG_SEVERITY_LEVEL=info", "GRPC_GO_LOG_VERBOSITY_LEVEL=2"},
	stacktest.CoreStack: {"GRPC_VERBOSITY=debug", "GRPC_TRACE=http"},
	stacktest.NodeStack: {"GRPC_NODE_VERBOSITY=DEBUG", "GRPC_NODE_TRACE=all"},
}

// serverError matches a server log line that reports a broken connection
// or stream, or anything logged as a warning or an error: grpc-go's
// "Closing: connection reset by peer", C-core's "recvmsg:Connection reset
// by peer", a GOAWAY or RST_STREAM with an error.
var serverError = regexp.MustCompile(`(?i)connection reset|broken pipe|econnreset|stream error|protocol error|rst_stream|goaway` +
	`|^\S+ \S+ (WARNING|ERROR): ` + // grpc-go
	`|^[EW]\d{4} ` + // C-core
	`|^[EW] \d{4}-`) // grpc-js

// politeChecks is how many checks of each kind HAProxy runs against each
// server, one every politeInter.
const (
	politeChecks = 30
	politeInter  = 100
)

// TestPoliteChecks measures the errors that checks leave in the logs of
// grpc-go, grpc-js and C-core servers. Real HAProxy checks a server of
// each stack every 100 ms with the rendered fragments of both kinds, one
// check passing and one failing (the server lacks servicestatus), and a
// second server with the same fragments but linger toggled on the connect
// rule, for comparison; the probe checks a third server with the rendered
// grpc.health.v1 fragment. The rendered fragments and the probe must
// leave no error: HAProxy, and the probe like it, closes a check's
// connection with a TCP reset unless the connect rule has linger, and
// grpc-go and C-core log every reset.
func TestPoliteChecks(t *testing.T) {
	for i, stack := range stacktest.Stacks {
		t.Run(string(stack), func(t *testing.T) {
			t.Parallel()
			rendered, toggled, probed := politeServer(t, stack, i, 1), politeServer(t, stack, i, 2), politeServer(t, stack, i, 3)
			dns := dnstest.Start(t)
			var fragments []string
			for _, s := range []*politeTarget{rendered, toggled} {
				dns.Set(s.name, net.ParseIP(s.host))
				fragments = append(fragments, s.writeFragments(t, stack, s == toggled)...)
			}
			probed.render(t, stack, false)
			probed.what = strings.Replace(probed.what, "HAProxy", "the probe", 1)
			dir := t.TempDir()
			socket := filepath.Join(dir, "stats.sock")
			haproxytest.Start(t, dir, socket, haproxytest.MainConfig(socket, dns.Addr), fragments, nil)
			f := parseFragment(t, probed.greeter)
			for range politeChecks {
				if res := runProbe(t, f, probed.srv.Addr, probe.Options{Timeout: time.Second}); res.Verdict.Class != probe.Healthy {
					t.Fatalf("probe: %s", res.Verdict.Reason)
				}
			}
			for _, s := range []*politeTarget{rendered, toggled} {
				s.waitChecks(t)
			}
			time.Sleep(3 * politeInter * time.Millisecond) // the last checks' connections close
			for _, s := range []*politeTarget{rendered, toggled, probed} {
				errs := s.errors()
				checks := fmt.Sprintf("%d passing and about as many failing checks", len(s.srv.Calls()))
				if s == probed {
					checks = fmt.Sprintf("%d probes", politeChecks)
				}
				t.Logf("%s, %s: %d error lines after %s\n%s", stack, s.what, len(errs), checks, strings.Join(errs[:min(len(errs), 2)], "\n"))
				if len(errs) > 0 && s != toggled {
					t.Errorf("%s logged %d errors for checks by %s, want none:\n%s",
						stack, len(errs), s.what, strings.Join(errs[:min(len(errs), 5)], "\n"))
				}
			}
		})
	}
}

// politeTarget is a server that HAProxy checks, and its fragments.
type politeTarget struct {
	srv              *stacktest.Server
	host, name, port string
	greeter          []byte // the grpc.health.v1 fragment that checks it
	what             string // what checks it, for messages
}

// politeServer starts a server of stack with its logging on, at
// 127.0.41.(10×stackIndex+n), serving the Greeter and grpc.health.v1 but
// not servicestatus, so that one kind of check passes and the other fails.
func politeServer(t *testing.T, stack stacktest.Stack, stackIndex, n int) *politeTarget {
	host := fmt.Sprintf("127.0.41.%d", 10*stackIndex+n)
	srv := stacktest.Start(t, stack, stacktest.Options{Addr: host + ":0", Services: []string{"greeter", "health"}, Env: stackLogging[stack]})
	_, port, _ := net.SplitHostPort(srv.Addr)
	return &politeTarget{srv: srv, host: host, port: port, name: fmt.Sprintf("s%d.%s.polite.test", n, stack)}
}

// render renders the fragments of both kinds that check the server every
// politeInter, with linger toggled when toggle is set, and returns them by
// service.
func (p *politeTarget) render(t *testing.T, stack stacktest.Stack, toggle bool) map[string]string {
	set := protogentest.ExampleSet(t, func(service string, c *haproxycheckv1.Check) {
		c.Backend = strings.NewReplacer(".", "_", "-", "_").Replace(fmt.Sprintf("%s_%s_%s", stack, p.name, service))
		c.Servers = &haproxycheckv1.Servers{Address: p.name + ":" + p.port, Count: 1}
		c.Timing = &haproxycheckv1.Timing{InterMs: politeInter}
	})
	texts := map[string]string{}
	for _, service := range []string{greeterService, healthCheckService} {
		text := protogentest.Fragment(t, set, service)
		linger := parseFragment(t, text).Connect.Linger
		p.what = fmt.Sprintf("HAProxy with the rendered fragments (linger %t)", linger)
		if toggle {
			text = withLinger(text, !linger)
			p.what = fmt.Sprintf("HAProxy with linger toggled (linger %t)", !linger)
		}
		texts[service] = string(text)
	}
	p.greeter = []byte(texts[greeterService])
	return texts
}

// writeFragments writes the fragments of render to files, and returns
// them.
func (p *politeTarget) writeFragments(t *testing.T, stack stacktest.Stack, toggle bool) []string {
	var files []string
	for service, text := range p.render(t, stack, toggle) {
		file := filepath.Join(t.TempDir(), service+".cfg")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	return files
}

// waitChecks waits until HAProxy has checked the server politeChecks times
// with the passing check (as many failing checks run beside).
func (p *politeTarget) waitChecks(t *testing.T) {
	t.Helper()
	timeout := 30*time.Second + politeChecks*politeInter*time.Millisecond
	deadline := time.Now().Add(timeout)
	for len(p.srv.Calls()) < politeChecks {
		if time.Now().After(deadline) {
			t.Fatalf("%s received %d checks in %v, want %d", p.srv, len(p.srv.Calls()), timeout, politeChecks)
		}
		time.Sleep(politeInter * time.Millisecond)
	}
}

// errors returns the error lines the server has logged.
func (p *politeTarget) errors() []string {
	var lines []string
	for _, line := range strings.Split(p.srv.Log(), "\n") {
		if serverError.MatchString(strings.TrimSpace(line)) {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}
