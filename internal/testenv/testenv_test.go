package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Fatalf and Skipf record the message and
// end the goroutine, as the real ones do.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// tool runs Tool(r, name) on a goroutine of its own, which Fatalf and
// Skipf may end.
func tool(t *testing.T, name string) (path string, r *recorder) {
	r = &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		path = Tool(r, name)
	}()
	<-done
	return path, r
}

func TestToolFromEnv(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "haproxy")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho 'HAProxy version 3.2.26-1 2026/10/14 - https://haproxy.org/'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Setenv(RequireToolsEnv, "")
	t.Setenv(HAProxyEnv, bin)
	if path, r := tool(t, "haproxy"); path != bin || r.fatal != "" || r.skip != "" {
		t.Errorf("Tool(haproxy) with %s=%s: %q (fatal %q, skip %q), want the file", HAProxyEnv, bin, path, r.fatal, r.skip)
	}
	if v := HAProxyVersion(t); v.Full != "3.2.26-1" || !v.AtLeast(3, 2) || v.AtLeast(3, 3) {
		t.Errorf("HAProxyVersion = %+v, want 3.2.26-1", v)
	}

	// A binary named but missing is a failure, never a skip, even without
	// RequireToolsEnv: the run meant to test that HAProxy.
	for _, bad := range []string{filepath.Join(dir, "missing"), notExec, dir} {
		t.Setenv(HAProxyEnv, bad)
		_, r := tool(t, "haproxy")
		if r.fatal == "" || !strings.Contains(r.fatal, HAProxyEnv) {
			t.Errorf("Tool(haproxy) with %s=%s: fatal %q, skip %q; want a failure naming %s", HAProxyEnv, bad, r.fatal, r.skip, HAProxyEnv)
		}
	}

	// NodeEnv names node as HAProxyEnv names haproxy.
	t.Setenv(NodeEnv, bin)
	if path, r := tool(t, "node"); path != bin || r.fatal != "" || r.skip != "" {
		t.Errorf("Tool(node) with %s=%s: %q (fatal %q, skip %q), want the file", NodeEnv, bin, path, r.fatal, r.skip)
	}
	t.Setenv(NodeEnv, notExec)
	if _, r := tool(t, "node"); r.fatal == "" || !strings.Contains(r.fatal, NodeEnv) {
		t.Errorf("Tool(node) with %s=%s: fatal %q, skip %q; want a failure naming %s", NodeEnv, notExec, r.fatal, r.skip, NodeEnv)
	}

	// Other tools ignore them.
	t.Setenv(HAProxyEnv, bin)
	t.Setenv(NodeEnv, bin)
	t.Setenv("PATH", dir)
	if _, r := tool(t, "not-a-tool-anywhere"); r.skip == "" {
		t.Errorf("Tool of a missing tool without %s: fatal %q, want a skip", RequireToolsEnv, r.fatal)
	}
	t.Setenv(RequireToolsEnv, "1")
	if _, r := tool(t, "not-a-tool-anywhere"); r.fatal == "" {
		t.Errorf("Tool of a missing tool with %s: skip %q, want a failure", RequireToolsEnv, r.skip)
	}
}

func TestParseHAProxyVersion(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want Version
	}{
		{"HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\nStatus: long-term supported branch - will stop receiving fixes around Q2 2027.\n",
			Version{2, 6, 12, "2.6.12-1+deb12u4"}},
		{"HAProxy version 3.2.26-1 2026/10/14 - https://haproxy.org/\n", Version{3, 2, 26, "3.2.26-1"}},
		{"HAProxy version 3.3-dev5-1a2b3c 2025/08/01 - https://haproxy.org/\n", Version{3, 3, 0, "3.3-dev5-1a2b3c"}},
		{"HA-Proxy version 2.0.33 2023/09/02 - https://haproxy.org/\n", Version{2, 0, 33, "2.0.33"}},
	} {
		got, err := ParseHAProxyVersion(tc.out)
		if err != nil || got != tc.want {
			t.Errorf("ParseHAProxyVersion(%q) = %+v, %v; want %+v", firstLine(tc.out), got, err, tc.want)
		}
	}
	if _, err := ParseHAProxyVersion("nginx version: nginx/1.22.1\n"); err == nil {
		t.Error("ParseHAProxyVersion of nginx's -v: no error")
	}
}

// TestHAProxyVersion runs the haproxy that the tests run.
func TestHAProxyVersion(t *testing.T) {
	v := HAProxyVersion(t)
	if v.Major < 2 {
		t.Errorf("HAProxy %v: want 2.0 or newer", v)
	}
	t.Logf("%s: HAProxy %v", Tool(t, "haproxy"), v)
}
