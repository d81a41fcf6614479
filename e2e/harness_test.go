package e2e

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// The example's services, one of each kind of check.
const (
	greeterService     = protogentest.Greeter     // through grpc.health.v1
	healthCheckService = protogentest.HealthCheck // through its health RPC
)

// parseFragment reads a fragment's text.
func parseFragment(t testing.TB, text []byte) *probe.Fragment {
	t.Helper()
	f, err := probe.ParseFragment(text)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// runProbe probes addr with f, and fails the test if the probe cannot
// run.
func runProbe(t testing.TB, f *probe.Fragment, addr string, opts probe.Options) *probe.Result {
	t.Helper()
	res, err := probe.Run(context.Background(), f, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// withLinger returns a fragment's text with linger on its connect rule, or
// without when on is false.
func withLinger(text []byte, on bool) []byte {
	s := strings.Replace(string(text), "tcp-check connect linger ", "tcp-check connect ", 1)
	if on {
		s = strings.Replace(s, "tcp-check connect ", "tcp-check connect linger ", 1)
	}
	return []byte(s)
}

// generateProtos writes files (proto path → source) into a directory, runs
// real protoc with plugin and the plugin parameter param on all of them,
// and returns the output directory.
func generateProtos(t *testing.T, plugin, param string, files map[string]string) string {
	t.Helper()
	protoc := testenv.Tool(t, "protoc")
	src, out := t.TempDir(), t.TempDir()
	var names []string
	for name, source := range files {
		path := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(source), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	args := []string{"-I", filepath.Join(testenv.RepoRoot(t), "options"), "-I", src,
		"--plugin=protoc-gen-haproxycheck=" + plugin, "--haproxycheck_out=" + out}
	if param != "" {
		args = append(args, "--haproxycheck_opt="+param)
	}
	testenv.Run(t, src, time.Minute, protoc, append(args, names...)...)
	return out
}

// startHAProxy runs real HAProxy on the fragments, after main's minimal
// configuration and extra sections, with a DNS server that resolves
// name to ips, and each of envVars set to name:port.
func startHAProxy(t *testing.T, fragments []string, extra, name string, ips []string, port string, envVars ...string) *haproxytest.HAProxy {
	t.Helper()
	dns := dnstest.Start(t)
	var parsed []net.IP
	for _, ip := range ips {
		parsed = append(parsed, net.ParseIP(ip))
	}
	dns.Set(name, parsed...)
	var env []string
	for _, v := range envVars {
		env = append(env, v+"="+name+":"+port)
	}
	return haproxytest.Run(t, dns.Addr, extra, fragments, env)
}

// waitState waits, at most timeout, until the server of backend at addr
// has the status want and its last check the status check, and returns
// it: a server already DOWN for one reason is waited on until a check
// gives the other.
func waitState(t *testing.T, hap *haproxytest.HAProxy, backend, addr, want, check string, timeout time.Duration) haproxytest.Server {
	t.Helper()
	s, ok, err := hap.AwaitServer(backend, addr, timeout, func(s haproxytest.Server) bool {
		return s.Status == want && s.CheckStatus == check
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("server %s of backend %s: %s with last check %s, want %s with %s after %v", addr, backend, s.Status, s.CheckStatus, want, check, timeout)
	}
	return s
}

// firstCheck waits, at most 30 s, until HAProxy has checked the server of
// backend at addr, and returns the server then.
func firstCheck(t *testing.T, hap *haproxytest.HAProxy, backend, addr string) haproxytest.Server {
	t.Helper()
	s, ok, err := hap.AwaitServer(backend, addr, 30*time.Second, func(s haproxytest.Server) bool {
		return strings.HasPrefix(s.CheckStatus, "L") || s.CheckStatus == "SOCKERR"
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("HAProxy did not check %s of backend %s within 30s", addr, backend)
	}
	return s
}

// readFragment reads the fragment in file.
func readFragment(t testing.TB, file string) *probe.Fragment {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return parseFragment(t, text)
}

// requestOf returns what a check of f sends: its send-binary rules' bytes.
func requestOf(f *probe.Fragment) []byte {
	var request []byte
	for _, r := range f.Rules {
		if r.Kind == probe.Send {
			request = append(request, r.Data...)
		}
	}
	return request
}
