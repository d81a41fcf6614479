// Package testenv finds the real tools that end-to-end tests run (haproxy,
// protoc, nginx) and decides what a missing one means: a skip on a
// developer's machine, a failure where RequireToolsEnv is set, as it is in
// CI, so that no test silently stops running there.
//
// Tools are looked up on PATH, except HAProxy when HAPROXYCHECK_HAPROXY
// (HAProxyEnv) names a binary, and Node.js when HAPROXYCHECK_NODE
// (NodeEnv) does: then every test runs that one, and a missing or
// non-executable file fails the test whatever HAPROXYCHECK_REQUIRE_TOOLS
// says. scripts/test runs the end-to-end tests
// this way a second time, on the HAProxy that scripts/haproxy-sid unpacks
// from Debian sid:
//
//	HAPROXYCHECK_HAPROXY="$(scripts/haproxy-sid)" go test ./e2e
//
// Tests that depend on HAProxy's version ask HAProxyVersion.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// RequireToolsEnv is the environment variable that turns a missing tool
// into a test failure.
const RequireToolsEnv = "HAPROXYCHECK_REQUIRE_TOOLS"

// HAProxyEnv is the environment variable that names the haproxy binary
// the tests run instead of the one on PATH.
const HAProxyEnv = "HAPROXYCHECK_HAPROXY"

// NodeEnv is the environment variable that names the node binary the
// tests run grpc-js servers on instead of the one on PATH (scripts/test
// sets it to scripts/nodejs's choice).
const NodeEnv = "HAPROXYCHECK_NODE"

// toolEnv maps the tools that an environment variable can name to it.
var toolEnv = map[string]string{"haproxy": HAProxyEnv, "node": NodeEnv}

// Tool returns the path of the named program, skipping the test when it is
// missing, or failing it when RequireToolsEnv is set. For "haproxy" and
// "node" it returns the binary that HAProxyEnv or NodeEnv names, if set,
// and fails the test if that is not an executable file.
func Tool(t testing.TB, name string) string {
	t.Helper()
	if env, ok := toolEnv[name]; ok {
		if path := os.Getenv(env); path != "" {
			if err := checkExecutable(path); err != nil {
				t.Fatalf("%s=%s: %v", env, path, err)
			}
			return path
		}
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	Unusable(t, fmt.Sprintf("%s is not installed (%v); install it or run scripts/test, which does", name, err))
	return ""
}

// Unusable stops a test that cannot run because a tool is missing or
// unfit, with msg saying why and how to get one: it skips the test, or
// fails it when RequireToolsEnv is set.
func Unusable(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequireToolsEnv) != "" {
		t.Fatalf("%s (%s is set, so this fails rather than skips)", msg, RequireToolsEnv)
	}
	t.Skipf("%s", msg)
}

// checkExecutable reports why path is not an executable regular file.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("not executable (%v)", fi.Mode().Perm())
	}
	return nil
}

// RepoRoot returns the root of this repository.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, ok := Root()
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return root
}

// Root returns the root of this repository, found from this source file.
func Root() (string, bool) {
	_, file, _, ok := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", ".."), ok
}

// BuildPlugin builds protoc-gen-haproxycheck into a temporary directory and
// returns its path.
func BuildPlugin(t testing.TB) string {
	t.Helper()
	return build(t, "protoc-gen-haproxycheck", "./cmd/protoc-gen-haproxycheck")
}

// BuildTool builds the command pkg, pinned in the tools module whose go.mod
// is modfile (relative to the repository, such as "tools/go.mod"), into a
// temporary directory and returns its path.
func BuildTool(t testing.TB, modfile, pkg string) string {
	t.Helper()
	return build(t, filepath.Base(pkg), "-modfile="+modfile, pkg)
}

// build runs go build with args into a temporary directory and returns the
// path of the binary, named name.
func build(t testing.TB, name string, args ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	Run(t, RepoRoot(t), 10*time.Minute, "go", append([]string{"build", "-o", bin}, args...)...)
	return bin
}

// Run runs a command in dir, bounded by timeout, and fails the test with
// its output when it fails. It returns the combined output.
func Run(t testing.TB, dir string, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	out, err := RunErr(dir, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// RunErr runs a command in dir, bounded by timeout, and returns its
// combined output and error.
func RunErr(dir string, timeout time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// FreePort returns a TCP port that is free on every one of ips, so that a
// test can give servers on several loopback addresses one port, as DNS
// gives HAProxy's server-template one port for every address.
func FreePort(t testing.TB, ips []string) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		free := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return port
		}
	}
	t.Fatal("no port free on every test address")
	return ""
}
