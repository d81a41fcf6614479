package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// probeCase is a server that real HAProxy and the probe both check with
// the example's fragments, and the check status both must give it.
type probeCase struct {
	name string
	ip   string
	// want is the check status of the server with each fragment kind,
	// by backend.
	want map[string]string
	// serve starts the server at addr.
	serve func(t *testing.T, addr string)
}

// probeGroup is cases checked by one HAProxy, at most one fragment's ten
// server slots.
type probeGroup struct {
	name  string
	cases []*probeCase
	// tls checks the group with fragments of TLS checks.
	tls bool
}

// both is the same check status for both fragment kinds.
func both(status string) map[string]string {
	return map[string]string{"greeter": status, "servicestatus": status}
}

// notServing is the check status of a server that says it is not serving:
// the grpc.health.v1 check drains it (L7OKC), the health RPC check, which
// has no not-serving response, fails it (L7RSP).
var notServing = map[string]string{"greeter": "L7OKC", "servicestatus": "L7RSP"}

// TestProbeAgreesWithHAProxy checks that the probe gives every server the
// verdict that real HAProxy gives it, with the same generated fragment,
// case by case: on each stack, a healthy server (L7OK), a not-serving one
// (drained, L7OKC, by the grpc.health.v1 check; failed, L7RSP, by the
// health RPC check), one of another service (L7RSP), a stopped one (L4CON)
// and a TLS server that a plaintext check reaches (L7RSP); a plain HTTP/1
// server (L7RSP), a non-gRPC HTTP/2 server, which ends its stream with DATA
// rather than trailers (L7RSP, at once), and a healthy and a not-serving
// server behind a relay that splits their answers at every byte. With TLS
// checks: every stack's healthy (L7OK) and not-serving TLS server, a
// plaintext server and a server whose certificate another CA signed
// (L6RSP).
func TestProbeAgreesWithHAProxy(t *testing.T) {
	root := testenv.RepoRoot(t)
	certFile, keyFile, caFile := stacktest.TLSFiles(t)
	tlsFragments := tlsExampleFragments(t, caFile)
	var groups []*probeGroup
	next := 1
	newCase := func(name string, want map[string]string, serve func(t *testing.T, addr string)) *probeCase {
		c := &probeCase{name: name, ip: fmt.Sprintf("127.0.40.%d", next), want: want, serve: serve}
		next++
		return c
	}
	for _, stack := range stacktest.Stacks {
		start := func(opts stacktest.Options, stop bool) func(*testing.T, string) {
			return func(t *testing.T, addr string) {
				opts.Addr = addr
				srv := stacktest.Start(t, stack, opts)
				if stop {
					srv.Stop(t)
				}
			}
		}
		groups = append(groups, &probeGroup{name: string(stack), cases: []*probeCase{
			newCase("healthy", both("L7OK"), start(stacktest.Options{}, false)),
			newCase("not serving", notServing, start(stacktest.Options{NotServing: true}, false)),
			newCase("stopped", both("L4CON"), start(stacktest.Options{}, true)),
			newCase("another service", both("L7RSP"), start(stacktest.Options{Services: []string{"greeter"}}, false)),
			newCase("TLS", both("L7RSP"), start(stacktest.Options{TLSCert: certFile, TLSKey: keyFile}, false)),
		}})
	}
	// relay relays to a grpc-go server of its own, one byte per segment.
	relay := func(opts stacktest.Options) func(*testing.T, string) {
		return func(t *testing.T, addr string) {
			startByteRelay(t, addr, stacktest.Start(t, stacktest.GoStack, opts).Addr)
		}
	}
	// The TLS group is checked with fragments of TLS checks, verified with
	// tlsCA: every stack's healthy and not-serving TLS server, a plaintext
	// server and a server whose certificate another CA signed.
	otherCert, otherKey, _ := stacktest.TLSFiles(t)
	tls := &probeGroup{name: "tls", tls: true}
	for _, stack := range stacktest.Stacks {
		serveTLS := func(notServing bool) func(*testing.T, string) {
			return func(t *testing.T, addr string) {
				stacktest.Start(t, stack, stacktest.Options{Addr: addr, NotServing: notServing, TLSCert: certFile, TLSKey: keyFile})
			}
		}
		tls.cases = append(tls.cases,
			newCase(string(stack)+" healthy over TLS", both("L7OK"), serveTLS(false)),
			newCase(string(stack)+" not serving over TLS", notServing, serveTLS(true)))
	}
	tls.cases = append(tls.cases,
		newCase("plaintext server", both("L6RSP"), func(t *testing.T, addr string) {
			stacktest.Start(t, stacktest.GoStack, stacktest.Options{Addr: addr})
		}),
		newCase("certificate of another CA", both("L6RSP"), func(t *testing.T, addr string) {
			stacktest.Start(t, stacktest.GoStack, stacktest.Options{Addr: addr, TLSCert: otherCert, TLSKey: otherKey})
		}))
	groups = append(groups, tls)
	groups = append(groups, &probeGroup{name: "other", cases: []*probeCase{
		newCase("HTTP/1", both("L7RSP"), func(t *testing.T, addr string) { serveHTTP(t, addr, false, "", "") }),
		newCase("HTTP/2 without gRPC", both("L7RSP"), func(t *testing.T, addr string) { serveHTTP(t, addr, true, "", "") }),
		newCase("healthy, split at every byte", both("L7OK"), relay(stacktest.Options{})),
		newCase("not serving, split at every byte", notServing, relay(stacktest.Options{NotServing: true})),
	}})

	var ips []string
	for _, g := range groups {
		for _, c := range g.cases {
			ips = append(ips, c.ip)
		}
	}
	port := testenv.FreePort(t, ips)
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range g.cases {
				c.serve(t, net.JoinHostPort(c.ip, port))
			}
			fragments := map[string]string{
				"greeter":       filepath.Join(root, "example", "gen", "haproxy", "helloworld.Greeter.cfg"),
				"servicestatus": filepath.Join(root, "example", "gen", "haproxy", "servicestatus.HealthCheck.cfg"),
			}
			if g.tls {
				fragments = tlsFragments
			}
			testProbeGroup(t, fragments, g, port)
		})
	}
}

// tlsExampleFragments generates the example's checks as TLS checks that
// verify certificates with caFile, and returns their fragments by backend.
func tlsExampleFragments(t *testing.T, caFile string) map[string]string {
	t.Helper()
	files := exampleWithoutGo(t)
	for name, source := range files {
		files[name] = strings.Replace(source, `import "haproxycheck/v1/haproxycheck.proto";`,
			`import "haproxycheck/v1/haproxycheck.proto";`+"\n"+fmt.Sprintf(`option (haproxycheck.v1.defaults) = {tls: {ca_file: %q}};`, caFile), 1)
	}
	out := generateProtos(t, testenv.BuildPlugin(t), "", files)
	return map[string]string{
		"greeter":       filepath.Join(out, "haproxy", "helloworld.Greeter.cfg"),
		"servicestatus": filepath.Join(out, "haproxy", "servicestatus.HealthCheck.cfg"),
	}
}

// testProbeGroup checks the servers of g, all on port, with real HAProxy
// and with the probe, through fragments, by backend.
func testProbeGroup(t *testing.T, fragments map[string]string, g *probeGroup, port string) {
	var ips []string
	for _, c := range g.cases {
		ips = append(ips, c.ip)
	}
	hap := startHAProxy(t, []string{fragments["greeter"], fragments["servicestatus"]}, "",
		strings.ReplaceAll(g.name, "-", "")+".probe.test", ips, port, "GREETER_SERVERS", "SERVICESTATUS_SERVERS")
	for backend, file := range fragments {
		f := readFragment(t, file)
		for _, c := range g.cases {
			addr := net.JoinHostPort(c.ip, port)
			haproxyStatus := firstCheck(t, hap, backend, addr).CheckStatus
			res := runProbe(t, f, addr, probe.Options{})
			if res.Verdict.HAProxy.String() != haproxyStatus || haproxyStatus != c.want[backend] {
				t.Errorf("%s, %s: HAProxy %s, probe %s (%s: %s); want both %s",
					c.name, backend, haproxyStatus, res.Verdict.HAProxy, res.Verdict.Class, res.Verdict.Reason, c.want[backend])
				continue
			}
			t.Logf("%s, %s: HAProxy and probe %s; probe: %s", c.name, backend, haproxyStatus, res.Verdict.Reason)
		}
	}
}

// serveHTTP runs a Go HTTP server on addr that reads every request and
// answers it with a plain-text body: HTTP/1 only, or HTTP/2 only when h2
// (with prior knowledge, h2c, in plaintext), over TLS when certFile and
// keyFile are given.
func serveHTTP(t *testing.T, addr string, h2 bool, certFile, keyFile string) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Reading the whole request first makes the answer one: a
			// handler that answers before the request's DATA arrives has
			// the server also reset the stream (RST_STREAM NO_ERROR),
			// which ends the call for the check, or not, by chance.
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("not gRPC\n"))
		}),
		ReadHeaderTimeout: 5 * time.Second,
		Protocols:         &http.Protocols{},
	}
	switch {
	case h2 && certFile != "":
		srv.Protocols.SetHTTP2(true)
	case h2:
		srv.Protocols.SetUnencryptedHTTP2(true)
	default:
		srv.Protocols.SetHTTP1(true)
	}
	go func() {
		if certFile != "" {
			_ = srv.ServeTLS(l, certFile, keyFile)
		} else {
			_ = srv.Serve(l)
		}
	}()
	t.Cleanup(func() { _ = srv.Close() })
}
