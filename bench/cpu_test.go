package bench

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// How long the driver's check client checks a server: first to warm it
// up, then measuring its CPU.
const (
	cpuWarmup  = 500 * time.Millisecond
	cpuMeasure = 3 * time.Second
)

// cpuResult is a server's CPU for one kind of check.
type cpuResult struct {
	// checks is how many checks ran while measuring.
	checks int
	// unhealthy is how many of them did not get the healthy answer.
	unhealthy int
	// cpu is the CPU the server used meanwhile.
	cpu time.Duration
	// walls are the checks' durations, as the client saw them.
	walls []time.Duration
}

// perCheck is the server CPU per check.
func (r cpuResult) perCheck() time.Duration {
	return r.cpu / time.Duration(r.checks)
}

// serverCPU checks the server at addr, process pid, with g one check at a
// time, and measures the CPU the server uses.
func serverCPU(t *testing.T, pid int, addr string, g generated) cpuResult {
	run := func(d time.Duration) cpuResult {
		var res cpuResult
		for deadline := time.Now().Add(d); time.Now().Before(deadline); {
			start := time.Now()
			o, err := check(addr, g.request, g.healthy)
			if err != nil {
				t.Fatalf("checking %s: %v", addr, err)
			}
			res.walls = append(res.walls, time.Since(start))
			res.checks++
			if !o.healthy {
				res.unhealthy++
			}
		}
		return res
	}
	run(cpuWarmup)
	before := processCPU(t, pid)
	res := run(cpuMeasure)
	res.cpu = processCPU(t, pid) - before
	return res
}

// exampleServerCPU measures the CPU per check of the example's grpc-go
// server, which prints nothing per call, unlike the stacks' test servers.
func exampleServerCPU(t *testing.T, bin string, checks []generated) map[string]cpuResult {
	addr := "127.0.70.1:" + port(t, freeAddr(t, "127.0.70.1"))
	cmd := exec.Command(bin, "-addr", addr, "-services", "servicestatus,greeter")
	testenv.StartProcess(t, "the example server", cmd, os.Kill, 5*time.Second)
	testenv.WaitAccepting(t, "the example server", addr, 10*time.Second)
	results := map[string]cpuResult{}
	for _, g := range checks {
		results[g.backend] = serverCPU(t, cmd.Process.Pid, addr, g)
	}
	return results
}

// freeAddr returns an address on ip with a port that was free a moment
// ago.
func freeAddr(t *testing.T, ip string) string {
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeServerCPU reports the servers' CPU per check.
func writeServerCPU(r *report, checks []generated, stacks map[stacktest.Stack]*stackResult, example map[string]cpuResult) {
	r.heading("Server CPU per check")
	r.para("The driver's own check client does what HAProxy's tcp-check does, one check at a time: connect, send the fragment's "+
		"exact bytes, read until the server ends the call, close normally (as HAProxy does with the fragments' linger). It "+
		"checks each server for %v to warm it up, then for %v while it reads the server process's user+system CPU from "+
		"`/proc/PID/stat` (10 ms ticks; each measurement spans hundreds of them). The stacks' test servers (`internal/stacktest`) print a "+
		"JSON line per call, which is in their CPU; the example's grpc-go server (`example/server`) prints nothing per call. Reference: "+
		"the same server on the other check, and the other stacks.", cpuWarmup, cpuMeasure)
	var rows [][]string
	var perServer []string
	add := func(server string, results map[string]cpuResult) {
		var perCheck []time.Duration
		for _, g := range checks {
			res, ok := results[g.backend]
			if !ok {
				rows = append(rows, []string{server, g.backend, "not run"})
				continue
			}
			rows = append(rows, []string{server, g.backend, fmt.Sprint(res.checks), fmt.Sprint(res.unhealthy),
				us(res.perCheck()), us(median(res.walls))})
			perCheck = append(perCheck, res.perCheck())
		}
		if len(perCheck) > 0 {
			perServer = append(perServer, fmt.Sprintf("%s %s to %s", server, us(slices.Min(perCheck)), us(slices.Max(perCheck))))
		}
	}
	add("example server (grpc-go)", example)
	for _, stack := range stacktest.Stacks {
		add(string(stack)+" test server", stacks[stack].cpu)
	}
	r.table([]string{"server", "check", "checks", "not healthy", "server CPU per check", "check wall time (median)"}, rows)
	r.summarize("**Server CPU per check:** %s.", strings.Join(perServer, "; "))
}

// The HAProxy CPU runs: many servers, checked often.
const (
	cpuServers = 200
	cpuInterMS = 100
	cpuWindow  = 15 * time.Second
)

// haproxyCPUResult is HAProxy's and the servers' CPU for one kind of
// check.
type haproxyCPUResult struct {
	name    string
	checks  int64
	cpu     time.Duration
	servers time.Duration
	// downs is how many times HAProxy marked a server DOWN.
	downs int
}

// perCheck returns cpu per check.
func (r haproxyCPUResult) perCheck(cpu time.Duration) time.Duration {
	return cpu / time.Duration(r.checks)
}

// TestRecordHAProxyCPU runs the benchmark driver's HAProxy CPU part alone,
// on the haproxy the tests run (testenv), and writes the machine and that
// section to the file given with -record:
//
//	go test ./bench -run '^TestRecordHAProxyCPU$' -count 1 -v -record /tmp/cpu.md
func TestRecordHAProxyCPU(t *testing.T) {
	recordPart(t, "HAProxy CPU per check", "The HAProxy CPU part of `scripts/bench`, run alone.", func(r *report, protoc string, bins binaries) {
		examples := generateExample(t, protoc, bins)
		i := slices.IndexFunc(examples, func(g generated) bool { return g.path() == grpcHealthPath })
		if i < 0 {
			t.Fatal("the example has no check through grpc.health.v1")
		}
		measureHAProxyCPU(t, r, examples[i])
	})
}

// measureHAProxyCPU measures HAProxy's CPU per check with the generated
// check checked, a grpc.health.v1 check, with the same check's rules as
// the previous release rendered them, and with a plain HTTP/1 httpchk,
// each against cpuServers servers in this process on the loopback
// addresses 127.0.80.*.
func measureHAProxyCPU(t *testing.T, r *report, checked generated) {
	var ips []net.IP
	for i := 1; i <= cpuServers; i++ {
		ips = append(ips, net.IPv4(127, 0, 80, byte(i)))
	}
	var grpcChecks, httpChecks atomic.Int64
	grpcPort := serveOnAll(t, ips, func(ls []net.Listener) func() {
		count := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			grpcChecks.Add(1)
			return handler(ctx, req)
		}
		srv := grpc.NewServer(grpc.UnaryInterceptor(count))
		// grpc-go's health server answers SERVING for the whole server (""),
		// and for every service it is told about.
		hs := health.NewServer()
		grpc_health_v1.RegisterHealthServer(srv, hs)
		hs.SetServingStatus(healthServiceName(t, checked), grpc_health_v1.HealthCheckResponse_SERVING)
		for _, l := range ls {
			go func() { _ = srv.Serve(l) }()
		}
		return srv.Stop
	})
	httpPort := serveOnAll(t, ips, func(ls []net.Listener) func() {
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			httpChecks.Add(1)
			w.WriteHeader(http.StatusOK)
		})}
		for _, l := range ls {
			go func() { _ = srv.Serve(l) }()
		}
		return func() { _ = srv.Close() }
	})
	dns := dnstest.Start(t)
	dns.Set("grpc.cpu.bench.test", ips...)
	dns.Set("http.cpu.bench.test", ips...)

	httpBackend := fmt.Sprintf(`backend http1
    mode tcp
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr host localhost
    http-check expect status 200
    server-template srv %d http.cpu.bench.test:%s resolvers %s init-addr none check inter %dms rise %d fall %d
`, cpuServers, httpPort, resolversSection, cpuInterMS, timingRise, timingFall)
	grpcAddr := "grpc.cpu.bench.test:" + grpcPort
	runs := []struct {
		name    string
		backend backendConfig
		counter *atomic.Int64
	}{
		{"generated gRPC tcp-check, three `expect rstring` rules (" + checked.backend + ", grpc-go)",
			checked.backendFor("grpc", grpcAddr, cpuServers, cpuInterMS), &grpcChecks},
		{"the same with the previous release's rules (`expect rbinary` and `expect binary`)",
			withPreviousRules(t, checked, checked.backendFor("grpc_previous", grpcAddr, cpuServers, cpuInterMS)), &grpcChecks},
		{"HTTP/1 `option httpchk` (Go net/http)", backendConfig{name: "http1", config: []byte(httpBackend)}, &httpChecks},
	}
	var results []haproxyCPUResult
	for _, run := range runs {
		t.Run(run.backend.name, func(t *testing.T) {
			hap := startBenchHAProxy(t, dns.Addr, []backendConfig{run.backend})
			waitUntil(t, fmt.Sprintf("all %d servers UP after passed checks", cpuServers), time.Minute, 100*time.Millisecond, func() bool {
				servers, err := hap.Servers(run.backend.name)
				if err != nil {
					t.Fatal(err)
				}
				up := 0
				for _, s := range servers {
					if s.Status == "UP" && s.CheckStatus == "L7OK" {
						up++
					}
				}
				return up == cpuServers
			})
			log0, cpu0, servers0, checks0 := len(hap.Log()), processCPU(t, hap.pid), selfCPU(t), run.counter.Load()
			time.Sleep(cpuWindow)
			results = append(results, haproxyCPUResult{
				name:    run.name,
				checks:  run.counter.Load() - checks0,
				cpu:     processCPU(t, hap.pid) - cpu0,
				servers: selfCPU(t) - servers0,
				downs:   downEvents(hap.Log()[log0:]),
			})
		})
	}
	if len(results) != len(runs) {
		t.Fatal("a HAProxy CPU run failed")
	}

	r.heading("HAProxy CPU for many servers")
	r.para("One HAProxy (`nbthread` defaulting to the CPUs), one backend of %d servers (`server-template` resolved through DNS, the "+
		"fragment's way) checked every %d ms, against servers in the driver's process on %d loopback addresses, in three runs: the "+
		"fragment the plugin renders for %s, whose three `expect rstring` rules run PCRE2 patterns that walk the answer frame by "+
		"frame, against a grpc-go health server; the same fragment with the rules the previous release rendered instead (`expect "+
		"rbinary` on the answer's hex dump, then `expect binary`; `bench/testdata/%s`); and, as the reference, a plain HTTP/1 `option "+
		"httpchk` check (`GET /healthz`, expect status 200) against Go net/http servers. Once every server is UP, the driver reads "+
		"HAProxy's CPU from `/proc/PID/stat`, its own CPU (`getrusage`: the servers'; the driver only sleeps meanwhile), and counts "+
		"the checks the servers answered, over %v.", cpuServers, cpuInterMS, cpuServers, checked.backend, previousRulesFile, cpuWindow)
	var rows [][]string
	for _, res := range results {
		rows = append(rows, []string{res.name, fmt.Sprint(res.checks), fmt.Sprintf("%.0f", float64(res.checks)/cpuWindow.Seconds()),
			fmt.Sprint(res.downs), ms(res.cpu), ofOneCPU(res.cpu), us(res.perCheck(res.cpu)), us(res.perCheck(res.servers))})
	}
	r.table([]string{"check", "checks", "checks/s", "servers marked DOWN", "HAProxy CPU", "of one CPU", "HAProxy CPU per check", "servers' CPU per check"}, rows)
	generated, previous, http1 := results[0], results[1], results[2]
	r.para("**Per check, against the HTTP/1 httpchk:** HAProxy CPU %s with the generated check, %s with the previous release's "+
		"rules; server CPU (grpc-go against Go net/http) %s.",
		ratio(generated.perCheck(generated.cpu), http1.perCheck(http1.cpu)), ratio(previous.perCheck(previous.cpu), http1.perCheck(http1.cpu)),
		ratio(generated.perCheck(generated.servers), http1.perCheck(http1.servers)))
	r.summarize("**HAProxy CPU:** %s per check with the generated check (%s of one CPU for %d servers every %d ms), %s the %s of an "+
		"HTTP/1 httpchk, and %s the %s of the same check with the previous release's rules.",
		us(generated.perCheck(generated.cpu)), ofOneCPU(generated.cpu), cpuServers, cpuInterMS,
		ratio(generated.perCheck(generated.cpu), http1.perCheck(http1.cpu)), us(http1.perCheck(http1.cpu)),
		ratio(generated.perCheck(generated.cpu), previous.perCheck(previous.cpu)), us(previous.perCheck(previous.cpu)))
}

// healthServiceName returns the service name that g, a grpc.health.v1
// check, asks about, decoded from its request.
func healthServiceName(t *testing.T, g generated) string {
	var req grpc_health_v1.HealthCheckRequest
	if err := proto.Unmarshal(g.data[wire.FrameHeaderLen+wire.MessagePrefixLen:], &req); err != nil {
		t.Fatalf("%s: the request message: %v", g.backend, err)
	}
	return req.GetService()
}

// previousRulesFile holds the expect rules of the example's grpc.health.v1
// check as the previous release rendered them, under testdata.
const previousRulesFile = "previous-release-greeter-rules.cfg"

//go:embed testdata/previous-release-greeter-rules.cfg
var previousRules string

// withPreviousRules returns b, a backend of the check g, with the previous
// release's expect rules in place of its own, and fails the test unless
// they judge the same healthy response as g.
func withPreviousRules(t *testing.T, g generated, b backendConfig) backendConfig {
	f, err := probe.ParseFragment(b.config)
	if err != nil {
		t.Fatalf("backend %s: %v", b.name, err)
	}
	expects := map[int]bool{}
	for _, r := range f.Rules {
		if r.Kind != probe.Send {
			expects[r.Line] = true
		}
	}
	var rules []string
	for _, line := range strings.Split(previousRules, "\n") {
		if trimmed := strings.TrimSpace(line); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			rules = append(rules, line)
		}
	}
	var lines []string
	for i, line := range strings.Split(string(b.config), "\n") {
		switch {
		case !expects[i+1]:
			lines = append(lines, line)
		case rules != nil:
			lines = append(lines, rules...)
			rules = nil
		}
	}
	previous := backendConfig{name: b.name, config: []byte(strings.Join(lines, "\n"))}
	p, err := probe.ParseFragment(previous.config)
	if err != nil {
		t.Fatalf("backend %s with the rules of %s: %v", b.name, previousRulesFile, err)
	}
	kinds := each(p.Rules, func(r probe.Rule) probe.RuleKind { return r.Kind })
	if want := []probe.RuleKind{probe.Send, probe.ExpectRBinary, probe.ExpectBinary}; !slices.Equal(kinds, want) || !bytes.Equal(p.Rules[2].Data, g.healthy) {
		t.Fatalf("%s: want an expect rbinary rule, then expect binary of %s's healthy response %x; got %v", previousRulesFile, g.backend, g.healthy, p.Rules)
	}
	return previous
}

// TestPreviousRules puts the previous release's rules into a backend of
// the example's grpc.health.v1 check, as the CPU benchmark does: they
// replace the three expect rules and judge the same healthy response.
func TestPreviousRules(t *testing.T) {
	checks := readFragments(t, filepath.Join(testenv.RepoRoot(t), "example", "gen"))
	i := slices.IndexFunc(checks, func(g generated) bool { return g.path() == grpcHealthPath })
	previous := withPreviousRules(t, checks[i], checks[i].backendFor("grpc_previous", "grpc.cpu.bench.test:1", cpuServers, cpuInterMS))
	f, err := probe.ParseFragment(previous.config)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Rules[1].Pattern, "^(..)*(00....010500000001|000004030000000001)"; got != want {
		t.Errorf("end-of-answer pattern %q, want the previous release's %q", got, want)
	}
}

// ofOneCPU formats cpu as a share of one CPU over the window.
func ofOneCPU(cpu time.Duration) string {
	return fmt.Sprintf("%.1f%%", 100*cpu.Seconds()/cpuWindow.Seconds())
}

// downEvents counts the servers HAProxy reports DOWN in log.
func downEvents(log string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "[WARNING]") && strings.Contains(line, " is DOWN") {
			n++
		}
	}
	return n
}

// selfCPU returns the user and system CPU time this process has used.
func selfCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serveOnAll listens on the same free port on every one of ips, starts
// serving with serve, which returns how to stop, and stops when the test
// ends. It returns the port.
func serveOnAll(t *testing.T, ips []net.IP, serve func([]net.Listener) func()) string {
	for range 20 {
		first, err := net.Listen("tcp", net.JoinHostPort(ips[0].String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		p := port(t, first.Addr().String())
		ls := []net.Listener{first}
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), p))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		if len(ls) == len(ips) {
			t.Cleanup(serve(ls))
			return p
		}
		for _, l := range ls {
			l.Close()
		}
	}
	t.Fatalf("no port free on all of %s…%s", ips[0], ips[len(ips)-1])
	return ""
}
