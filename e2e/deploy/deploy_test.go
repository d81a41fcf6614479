package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(stacktest.Main(m))
}

// backendMode is one mode of the generated backend.
type backendMode struct {
	// name is "tcp" or "http", and option the annotation's value.
	name, option string
	// frontend is the frontend section that routes the load client's
	// calls to the backend; {bind} stands for its bind address.
	frontend string
}

// backend is the generated backend's name in mode m.
func (m backendMode) backend() string { return "greeter_" + m.name }

var modes = []backendMode{
	// In mode tcp, HAProxy logs every connection with the server it went
	// to (connLogLine), which tells which server a connection's failed
	// calls went to.
	{name: "tcp", option: "MODE_TCP", frontend: `
frontend lb
    mode tcp
    log-format "conn %ci:%cp server %si:%sp accepted %Ts.%ms state %ts"
    bind {bind}
    default_backend greeter_tcp
`},
	// In mode http, HAProxy logs every call that does not end normally
	// with the server it went to (httpLogLine), which tells which failed
	// calls it sent on its connections to a killed server.
	{name: "http", option: "MODE_HTTP", frontend: `
frontend lb
    mode http
    log-format "call %ci:%cp server %si:%sp accepted %Ts.%ms status %ST state %ts"
    option dontlog-normal
    bind {bind} proto h2
    default_backend greeter_http
`},
}

// greeterProto is the proto the test generates its backends from: the
// example's Greeter, checked through grpc.health.v1 with a fast timing, so
// that the whole test fits in CI; %s are the backend's name and mode.
const greeterProto = `syntax = "proto3";
package helloworld;
import "haproxycheck/v1/haproxycheck.proto";
service Greeter {
  option (haproxycheck.v1.grpc_health) = {check: {
    backend: "%s" mode: %s
    timing: {inter_ms: 500 rise: 2 fall: 2 timeout_ms: 500}
  }};
  rpc SayHello(HelloRequest) returns (HelloReply);
}
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
`

// generated is a fragment that the plugin generated under real protoc.
type generated struct {
	// path is the fragment's file.
	path string
	// envVar is the environment variable its servers come from.
	envVar string
	// drainTime is the drain time of its contract line: how long a
	// server reports not serving before it stops.
	drainTime time.Duration
	// inter and timeout are its servers' check interval and timeout.
	inter, timeout time.Duration
	// initDown reports whether servers that DNS adds start DOWN.
	initDown bool
}

// generate runs real protoc with plugin and its parameter param on the
// test's proto for mode m, and reads the fragment back as the probe does.
func generate(t *testing.T, plugin, param string, m backendMode) generated {
	protoc := testenv.Tool(t, "protoc")
	src, out := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "helloworld"), 0o755); err != nil {
		t.Fatal(err)
	}
	source := fmt.Sprintf(greeterProto, m.backend(), m.option)
	if err := os.WriteFile(filepath.Join(src, "helloworld", "greeter.proto"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-I", filepath.Join(testenv.RepoRoot(t), "options"), "-I", src,
		"--plugin=protoc-gen-haproxycheck=" + plugin, "--haproxycheck_out=" + out}
	if param != "" {
		args = append(args, "--haproxycheck_opt="+param)
	}
	testenv.Run(t, src, time.Minute, protoc, append(args, "helloworld/greeter.proto")...)
	path := filepath.Join(out, "haproxy", "helloworld.Greeter.cfg")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := probe.ParseFragment(text)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.Contract == nil || !f.Contract.NotServingDrains || f.Contract.DrainTime <= 0 {
		t.Fatalf("%s: the contract line %+v does not drain a not-serving server with a drain time", path, f.Contract)
	}
	timeout := f.TimeoutCheck
	if timeout == 0 {
		timeout = f.Timing.Inter
	}
	return generated{
		path:      path,
		envVar:    strings.ToUpper(m.backend()) + "_SERVERS",
		drainTime: f.Contract.DrainTime,
		inter:     f.Timing.Inter,
		timeout:   timeout,
		initDown:  strings.Contains(string(text), " init-state down"),
	}
}

// maxParallel is how many scenarios run at once, at most (go test's
// -parallel, GOMAXPROCS by default, bounds them too): each runs HAProxy,
// four to six servers and a load client, and two or three keep a 2-CPU
// machine busy without starving HAProxy's checks.
const maxParallel = 3

// TestNoCallLost runs, on every stack and in both modes, three servers
// behind a generated grpc.health.v1 backend under a steady load of calls
// through HAProxy, and meanwhile restarts each server in turn, adds a
// server, removes one, and kills one. Every server stops gracefully on
// SIGTERM, waiting the drain time of the fragment's contract line. No call
// may fail, but those in flight on the killed server when it died. With
// HAProxy 3.2 or later the fragments are generated with min_haproxy=3.2,
// whose servers start DOWN, and a server that DNS adds must get no call
// before its first check; with older HAProxy, what a server added before
// it listens, or before it serves, costs is measured. It prints a table of
// every event's calls, failures and times.
func TestNoCallLost(t *testing.T) {
	plugin := testenv.BuildPlugin(t)
	version := testenv.HAProxyVersion(t)
	param := ""
	if version.AtLeast(3, 2) {
		param = "min_haproxy=3.2"
	}
	fragments := map[string]generated{}
	for _, m := range modes {
		fragments[m.name] = generate(t, plugin, param, m)
		if g := fragments[m.name]; g.initDown != (param != "") {
			t.Fatalf("HAProxy %v, plugin parameter %q: the mode %s fragment has init-state down: %t", version, param, m.name, g.initDown)
		}
	}
	table := &resultTable{}
	slots := make(chan struct{}, maxParallel)
	t.Run("scenarios", func(t *testing.T) {
		n := 0
		for _, stack := range stacktest.Stacks {
			for _, m := range modes {
				subnet := fmt.Sprintf("127.0.%d.", 90+n)
				n++
				t.Run(string(stack)+"/"+m.name, func(t *testing.T) {
					t.Parallel()
					slots <- struct{}{}
					defer func() { <-slots }()
					sc := newScenario(t, stack, m, fragments[m.name], subnet)
					sc.run()
					table.add(sc.outcomes()...)
				})
			}
		}
	})
	t.Logf("HAProxy %v, fragments generated with %q; drain time %v (inter %v, timeout %v)\n%s",
		version, param, fragments["tcp"].drainTime, fragments["tcp"].inter, fragments["tcp"].timeout, table)
}

// resultTable collects the outcomes of every scenario.
type resultTable struct {
	mu   sync.Mutex
	rows []outcome
}

func (r *resultTable) add(rows ...outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, rows...)
}
