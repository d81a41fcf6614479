package e2e

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

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
	dir := t.TempDir()
	socket := filepath.Join(dir, "stats.sock")
	return haproxytest.Start(t, dir, socket, haproxytest.MainConfig(socket, dns.Addr)+extra, fragments, env)
}
