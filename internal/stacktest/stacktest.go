// Package stacktest runs the end-to-end tests' gRPC servers on three
// implementations of gRPC: grpc-go (e2e/stacks/goserver), grpc-js
// (e2e/stacks/node, with @grpc/grpc-js) and gRPC C-core through Python
// (e2e/stacks/python, with Debian's python3-grpcio and /usr/bin/python3).
//
// The three servers share one command line and one output, so a test runs
// the same case on every stack: each serves servicestatus.HealthCheck,
// grpc.health.v1.Health and helloworld.Greeter (or the services chosen),
// switches between serving and not serving on SIGUSR1 and SIGUSR2, stops
// gracefully on SIGTERM (Server.StopGracefully) as its stack should behind
// HAProxy's generated checks, and prints one JSON line per call, which
// Server.Calls returns, so that a test can check what HAProxy sent.
//
// A missing runtime (node, npm, /usr/bin/python3 with its grpc module,
// protoc) skips the test, or fails it where testenv.RequireToolsEnv is set.
// The servers' output goes to the test log when the test fails, or always
// with HAPROXYCHECK_TEST_LOG=1.
package stacktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// Stack names a gRPC server implementation.
type Stack string

// The stacks.
const (
	GoStack   Stack = "grpc-go"
	NodeStack Stack = "grpc-js"
	CoreStack Stack = "c-core"
)

// Stacks lists every stack, for tests that run on each.
var Stacks = []Stack{GoStack, NodeStack, CoreStack}

// Options are a server's command-line options.
type Options struct {
	// Addr is the address to listen on; "127.0.0.1:0" when empty.
	Addr string
	// Services are the services to serve, of "servicestatus", "greeter" and
	// "health"; all three when empty.
	Services []string
	// NotServing starts the server not serving.
	NotServing bool
	// ID is the name that Greeter replies give ("Hello NAME from ID"); the
	// listen address when empty.
	ID string
	// TLSCert and TLSKey are PEM files (see TLSFiles); the server serves
	// TLS, with ALPN h2, when they are set.
	TLSCert, TLSKey string
	// Env is added to the server's environment, for example to turn on
	// the stack's own logging (GRPC_GO_LOG_SEVERITY_LEVEL, GRPC_VERBOSITY,
	// GRPC_NODE_VERBOSITY), which Log returns.
	Env []string
	// DrainTime is how long the server reports not serving on SIGTERM
	// before it stops: the drain time of the fragment that checks it
	// (contract.Line.DrainTime), never a guess. Zero stops at once after
	// reporting not serving.
	DrainTime time.Duration
	// Grace bounds how long the calls in flight may take to finish after
	// the drain time; the servers' default, 10 s, when zero.
	Grace time.Duration
}

// args returns the options as command-line arguments.
func (o Options) args() []string {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	args := []string{"--addr", addr}
	if len(o.Services) > 0 {
		args = append(args, "--services", strings.Join(o.Services, ","))
	}
	if o.ID != "" {
		args = append(args, "--id", o.ID)
	}
	if o.NotServing {
		args = append(args, "--not-serving")
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		args = append(args, "--tls-cert", o.TLSCert, "--tls-key", o.TLSKey)
	}
	if o.DrainTime > 0 {
		args = append(args, "--drain-time", durationArg(o.DrainTime))
	}
	if o.Grace > 0 {
		args = append(args, "--grace", durationArg(o.Grace))
	}
	return args
}

// durationArg formats d for the servers' duration flags, which take Go's
// form, in whole milliseconds.
func durationArg(d time.Duration) string {
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// Call is one call that a server received, as it reported it.
type Call struct {
	// Method is the call's path: "/package.Service/Method".
	Method string `json:"method"`
	// Authority is the :authority the server saw, or the host header when
	// the request has no :authority (every stack falls back on it).
	Authority string `json:"authority"`
	// Metadata is the request metadata that the stack gives the
	// application, keys in lower case, several values joined with ",",
	// values of "-bin" keys in padded standard base64. Pseudo-headers and
	// user-agent are never in it. Every stack gives custom metadata; the
	// rest differs: grpc-go also gives content-type and
	// grpc-accept-encoding, grpc-js gives host when the request has no
	// :authority, and grpc-js gets repeated headers from Node's http2
	// already joined with ", " rather than ",".
	Metadata map[string]string `json:"metadata"`
	// UserAgent is the user-agent header.
	UserAgent string `json:"user_agent"`
}

// Server is a running test server.
type Server struct {
	// Stack is the server's implementation.
	Stack Stack
	// Addr is the address the server listens on, with the real port.
	Addr string

	proc *testenv.Process

	stopOnce sync.Once
	// ending is set once the test has begun to stop the server
	// (StopGracefully, Terminate or Kill), so that its exit is expected.
	ending atomic.Bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever the state below changes
	partial []byte        // standard output after its last newline
	listen  string        // the address of the "listening" line
	serving []bool        // the "serving" lines, in order
	calls   []Call
	bad     []string // standard output lines of no known form
	log     bytes.Buffer
}

// stopTimeout bounds how long a server has to exit after SIGINT before it
// is killed.
const stopTimeout = 10 * time.Second

// Start starts a server of stack with opts, waits (at most 30 s) until it
// accepts connections, and stops it when the test ends. It fails the test
// if the server exits before it is stopped, or does not exit cleanly on
// SIGINT or SIGTERM.
func Start(t testing.TB, stack Stack, opts Options) *Server {
	t.Helper()
	name, args := command(t, stack)
	s := &Server{Stack: stack, changed: make(chan struct{})}
	cmd := exec.Command(name, append(args, opts.args()...)...)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Stdout = stdoutWriter{s}
	cmd.Stderr = logWriter{s}
	cmd.WaitDelay = 5 * time.Second
	s.proc = testenv.StartProcess(t, "the "+string(stack)+" server", cmd, syscall.SIGINT, stopTimeout)
	// Stop, which runs first, reports how the server exited.
	t.Cleanup(func() {
		s.Stop(t)
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.bad) > 0 {
			t.Errorf("the %s server printed lines of no known form: %q", stack, s.bad)
		}
		if t.Failed() || os.Getenv("HAPROXYCHECK_TEST_LOG") != "" {
			t.Logf("%s server %s %v output:\n%s", stack, s.listen, opts.args(), abridged(s.log.String()))
		}
	})
	if !s.await(30*time.Second, func() bool { return s.listen != "" }) {
		select {
		case <-s.proc.Done():
			t.Fatalf("the %s server exited before listening: %v", stack, s.exitErr())
		default:
		}
		t.Fatalf("the %s server did not report listening within 30s", stack)
	}
	s.Addr = s.listen
	return s
}

// Lines of a server's output that the test log shows: a server under load
// prints a line per call, too many to read.
const (
	logHead = 50
	logTail = 150
)

// abridged returns out, or, when it has more than logHead + logTail lines,
// its first logHead and last logTail lines and how many are left out.
func abridged(out string) string {
	lines := strings.SplitAfter(out, "\n")
	if len(lines) <= logHead+logTail {
		return out
	}
	return strings.Join(lines[:logHead], "") +
		fmt.Sprintf("[... %d lines left out ...]\n", len(lines)-logHead-logTail) +
		strings.Join(lines[len(lines)-logTail:], "")
}

// SetServing makes the server serving or not, and waits (at most 10 s)
// until it reports the change, so that the calls after it see the new
// state. It must not run concurrently with itself on one server.
func (s *Server) SetServing(t testing.TB, serving bool) {
	t.Helper()
	sig := syscall.SIGUSR2
	if !serving {
		sig = syscall.SIGUSR1
	}
	s.mu.Lock()
	seen := len(s.serving)
	s.mu.Unlock()
	if err := s.proc.Signal(sig); err != nil {
		t.Fatalf("signalling %s: %v", s, err)
	}
	reported := func() bool {
		for _, v := range s.serving[seen:] {
			if v == serving {
				return true
			}
		}
		return false
	}
	if !s.await(10*time.Second, reported) {
		t.Fatalf("%s did not report serving %t within 10s (exited: %v)", s, serving, s.exitErr())
	}
}

// Log returns what the server has written so far, standard output and
// standard error together.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Calls returns the calls that the server has reported so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// WaitCall returns the first call, received so far or within timeout, that
// pred accepts, and fails the test if there is none.
func (s *Server) WaitCall(t testing.TB, pred func(Call) bool, timeout time.Duration) Call {
	t.Helper()
	var found Call
	match := func() bool {
		for _, c := range s.calls {
			if pred(c) {
				found = c
				return true
			}
		}
		return false
	}
	if !s.await(timeout, match) {
		t.Fatalf("%s received no call as wanted within %v; calls: %+v", s, timeout, s.Calls())
	}
	return found
}

// Stop stops the server now: SIGINT, then SIGKILL if it has not exited
// within 10 s. It fails the test if the server had exited before, or did not
// exit cleanly. Only the first Stop of a server does anything, and nothing
// after StopGracefully, Terminate or Kill but bounding the wait for its
// exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stopOnce.Do(func() {
		if err := s.stop(); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	})
}

// stop stops the process and waits for it.
func (s *Server) stop() error {
	if exited, err := s.proc.Exited(); exited {
		if s.ending.Load() {
			return nil // the test has seen to its exit
		}
		return fmt.Errorf("exited before it was stopped: %v", err)
	}
	if !s.proc.Stop(syscall.SIGINT, stopTimeout) {
		return fmt.Errorf("did not exit within %v of SIGINT; killed", stopTimeout)
	}
	if err := s.exitErr(); err != nil && !s.ending.Load() {
		return fmt.Errorf("on SIGINT: %v", err)
	}
	return nil
}

// Terminate sends the server SIGTERM, which starts its graceful stop, and
// waits (at most 10 s) until it reports not serving: from then on it
// drains, for Options.DrainTime, before it stops. WaitExit waits for its
// exit.
func (s *Server) Terminate(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	seen := len(s.serving)
	s.mu.Unlock()
	s.ending.Store(true)
	if err := s.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signalling %s: %v", s, err)
	}
	reported := func() bool { return slices.Contains(s.serving[seen:], false) }
	if !s.await(10*time.Second, reported) {
		t.Fatalf("%s did not report serving false within 10s of SIGTERM (exited: %v)", s, s.exitErr())
	}
}

// WaitExit waits, at most timeout, until the server has exited, and fails
// the test unless it exited with status 0. A server still running after
// timeout is killed.
func (s *Server) WaitExit(t testing.TB, timeout time.Duration) {
	t.Helper()
	if !s.proc.Wait(timeout) {
		t.Fatalf("%s did not exit within %v; killed", s, timeout)
	}
	if err := s.exitErr(); err != nil {
		t.Fatalf("%s exited: %v", s, err)
	}
}

// StopGracefully stops the server as SIGTERM stops it (Terminate), and
// waits, at most timeout, until it has exited with status 0 (WaitExit).
func (s *Server) StopGracefully(t testing.TB, timeout time.Duration) {
	t.Helper()
	s.Terminate(t)
	s.WaitExit(t, timeout)
}

// Kill kills the server with SIGKILL, as a crash would end it, and waits
// (at most 10 s) until it is gone: its connections are closed once Kill
// returns.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.ending.Store(true)
	if err := s.proc.Signal(os.Kill); err != nil {
		t.Fatalf("killing %s: %v", s, err)
	}
	select {
	case <-s.proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit within 10s of SIGKILL", s)
	}
}

// Exited returns a channel that is closed once the server has exited.
func (s *Server) Exited() <-chan struct{} {
	return s.proc.Done()
}

// String describes the server for messages: its stack and address.
func (s *Server) String() string {
	if s.Addr == "" {
		return "the " + string(s.Stack) + " server"
	}
	return "the " + string(s.Stack) + " server at " + s.Addr
}

// exitErr returns how the process exited, or nil while it runs.
func (s *Server) exitErr() error {
	_, err := s.proc.Exited()
	return err
}

// await waits until cond, called with s.mu held, holds, at most timeout or
// until the process has exited, and reports whether it held.
func (s *Server) await(timeout time.Duration, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		changed := s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-s.proc.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			return cond()
		case <-timer.C:
			return false
		}
	}
}

// stdoutWriter takes in a server's standard output.
type stdoutWriter struct{ s *Server }

// Write logs p and records the complete lines in it.
func (w stdoutWriter) Write(p []byte) (int, error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Write(p)
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		s.record(string(s.partial[:i]))
		s.partial = s.partial[i+1:]
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// record records one line of standard output; s.mu is held.
func (s *Server) record(line string) {
	switch {
	case strings.HasPrefix(line, "listening ") && s.listen == "":
		s.listen = strings.TrimPrefix(line, "listening ")
	case line == "serving true" || line == "serving false":
		s.serving = append(s.serving, line == "serving true")
	case strings.HasPrefix(line, "{"):
		var c Call
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			s.bad = append(s.bad, line)
			return
		}
		s.calls = append(s.calls, c)
	default:
		s.bad = append(s.bad, line)
	}
}

// logWriter takes in a server's standard error.
type logWriter struct{ s *Server }

// Write logs p.
func (w logWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.log.Write(p)
}

// command returns the program and the leading arguments that run a server
// of stack, skipping or failing the test when a tool is missing.
func command(t testing.TB, stack Stack) (string, []string) {
	t.Helper()
	root := testenv.RepoRoot(t)
	switch stack {
	case GoStack:
		return goServer(t), nil
	case NodeStack:
		node := nodeRuntime(t)
		installNodeModules(t)
		return node, []string{filepath.Join(root, "e2e", "stacks", "node", "server.js")}
	case CoreStack:
		testenv.Tool(t, "protoc")
		return corePython(t), []string{filepath.Join(root, "e2e", "stacks", "python", "server.py")}
	}
	t.Fatalf("unknown stack %q", stack)
	return "", nil
}

// goServerBin is the grpc-go server built by Main, if it ran.
var goServerBin string

// Main builds the grpc-go server once for the test binary, runs the tests
// and removes the build; call it from TestMain as os.Exit(stacktest.Main(m)).
// Without it, Start builds the grpc-go server for every test that starts
// one.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "haproxycheck-stacktest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, _ := testenv.Root()
	bin := filepath.Join(dir, "goserver")
	if out, err := testenv.RunErr(root, 5*time.Minute, "go", "build", "-o", bin, "./e2e/stacks/goserver"); err != nil {
		fmt.Fprintf(os.Stderr, "building the grpc-go test server: %v\n%s", err, out)
		return 1
	}
	goServerBin = bin
	return m.Run()
}

// goServer returns the grpc-go server, built by Main or now for the test.
func goServer(t testing.TB) string {
	t.Helper()
	if goServerBin != "" {
		return goServerBin
	}
	bin := filepath.Join(t.TempDir(), "goserver")
	testenv.Run(t, testenv.RepoRoot(t), 5*time.Minute, "go", "build", "-o", bin, "./e2e/stacks/goserver")
	return bin
}

// nodeChecks caches, per node binary, why it cannot run the grpc-js
// servers ("" if it can).
var nodeChecks sync.Map

// nodeRuntime returns the node on PATH, skipping or failing the test like
// testenv.Tool when it is missing or is a Node.js that can lose calls when
// a grpc-js server stops (e2e/stacks/node/runtime.js, which scripts/nodejs
// also asks, says which).
func nodeRuntime(t testing.TB) string {
	t.Helper()
	node := testenv.Tool(t, "node")
	reason, ok := nodeChecks.Load(node)
	if !ok {
		check := filepath.Join(testenv.RepoRoot(t), "e2e", "stacks", "node", "runtime.js")
		out, err := testenv.RunErr("", time.Minute, node, check)
		reason = ""
		if err != nil {
			reason = fmt.Sprintf("%s: %s (%v)", node, strings.TrimSpace(string(out)), err)
		}
		nodeChecks.Store(node, reason)
	}
	if reason != "" {
		testenv.Unusable(t, reason.(string))
	}
	return node
}

// nodeMu serializes installNodeModules within the test binary.
var nodeMu sync.Mutex

// installNodeModules runs npm ci in e2e/stacks/node (at most 5 min) unless
// node_modules is as new as package-lock.json, holding a lock on
// package.json against other test binaries doing the same.
func installNodeModules(t testing.TB) {
	t.Helper()
	nodeMu.Lock()
	defer nodeMu.Unlock()
	dir := filepath.Join(testenv.RepoRoot(t), "e2e", "stacks", "node")
	lockFile, err := os.Open(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer lockFile.Close()
	if err := syscall.Flock(int(lockFile.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("locking %s: %v", lockFile.Name(), err)
	}
	defer syscall.Flock(int(lockFile.Fd()), syscall.LOCK_UN)
	want, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	// npm writes node_modules/.package-lock.json last when it installs.
	if have, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && !have.ModTime().Before(want.ModTime()) {
		return
	}
	npm := testenv.Tool(t, "npm")
	testenv.Run(t, dir, 5*time.Minute, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
}

// python is the interpreter of Debian's python3-grpcio, which the C-core
// server needs; a python3 earlier on PATH (pyenv) lacks the module.
const python = "/usr/bin/python3"

// pythonCheck is the result of checking python's modules, once.
var pythonCheck = sync.OnceValue(func() error {
	out, err := testenv.RunErr("", time.Minute, python, "-c", "import grpc, google.protobuf")
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
})

// corePython returns python, skipping or failing the test like
// testenv.Tool when it or its grpc and protobuf modules are missing.
func corePython(t testing.TB) string {
	t.Helper()
	testenv.Tool(t, python)
	if err := pythonCheck(); err != nil {
		testenv.Unusable(t, fmt.Sprintf("%s cannot import grpc and google.protobuf (apt-get install python3-grpcio python3-protobuf): %v", python, err))
	}
	return python
}
