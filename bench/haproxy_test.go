package bench

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
)

// The timing of the driver's HAProxy servers: a short inter for the
// timing runs, and the plugin's default rise and fall for all.
const (
	timingInterMS = 200
	timingRise    = 2
	timingFall    = 3
)

const (
	// sickBackends is how many backends check the same not-serving server,
	// each adding one sample per check round.
	sickBackends = 4
	// sickWarmup is how long the not-serving server is checked before
	// the samples, so that they are of a warm server.
	sickWarmup = time.Second
	// sickRounds is how many times the not-serving checks are sampled, one
	// inter apart.
	sickRounds = 30
	// downSamples is how many times a server turns not serving.
	downSamples = 8
)

// resolversSection is the name of the driver's HAProxy resolvers section.
const resolversSection = "bench"

// benchHAProxy is a running HAProxy and its process id.
type benchHAProxy struct {
	*haproxytest.HAProxy
	pid int
}

// backendConfig is one backend of a benchmark's HAProxy configuration.
type backendConfig struct {
	name   string
	config []byte
}

// startBenchHAProxy runs HAProxy with the test main configuration, a resolvers
// section "bench" that asks dnsAddr and accepts answers of up to 8 KiB
// (hundreds of servers), and backends, each in a file of its own.
func startBenchHAProxy(t *testing.T, dnsAddr string, backends []backendConfig) benchHAProxy {
	dir := t.TempDir()
	resolvers := fmt.Sprintf(`
resolvers %s
    nameserver test %s
    accepted_payload_size 8192
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 10s
    hold obsolete 30s
`, resolversSection, dnsAddr)
	var files []string
	for _, b := range backends {
		path := filepath.Join(dir, b.name+".cfg")
		if err := os.WriteFile(path, b.config, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, path)
	}
	hap := haproxytest.Run(t, dnsAddr, resolvers, files, nil)
	return benchHAProxy{HAProxy: hap, pid: pidWithArg(t, files[0])}
}

// server returns the first server of backend.
func (h benchHAProxy) server(t *testing.T, backend string) haproxytest.Server {
	servers, err := h.Servers(backend)
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) == 0 {
		t.Fatalf("backend %s has no servers", backend)
	}
	return servers[0]
}

// waitUntil calls cond every interval until it holds, and fails the test
// if it does not hold within timeout.
func waitUntil(t *testing.T, what string, timeout, interval time.Duration, cond func() bool) {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(interval)
	}
}

// timingResult is how fast HAProxy failed one kind of check on one stack.
type timingResult struct {
	// sick are the durations of samples of the last check of servers that
	// answer not serving, and sickStatus their check statuses.
	sick       []time.Duration
	sickStatus []string
	// down are the times from a server turning not serving to HAProxy
	// taking it out of the balance: NOLB for a check that drains it,
	// DOWN for one that fails it.
	down []time.Duration
	// downStatus are the check statuses HAProxy gave when it did.
	downStatus []string
}

// outOfBalance returns the state HAProxy puts a server in once g's check
// finds it not serving: NOLB (drained) or DOWN.
func (g generated) outOfBalance() string {
	if g.drains {
		return "NOLB"
	}
	return "DOWN"
}

// notServingStatus returns the check status g gives a server that says
// it is not serving: L7OKC (drained) or L7RSP (failed by the response
// rule).
func (g generated) notServingStatus() string {
	if g.drains {
		return "L7OKC"
	}
	return "L7RSP"
}

// outOfBalanceBound is the longest HAProxy should take, once a server
// turns not serving, to take it out of the balance with g's check and
// the driver's timing: the first check comes within one inter and drains
// it; fall checks, one inter apart, fail it.
func (g generated) outOfBalanceBound() time.Duration {
	if g.drains {
		return timingInterMS * time.Millisecond
	}
	return timingFall * timingInterMS * time.Millisecond
}

// haproxyTiming runs HAProxy against two servers of stack on the loopback
// addresses subnet+"2" and subnet+"3": one that does not serve, checked
// by several backends of each check, to sample how long a check of a
// not-serving answer takes; and one that serves and turns not serving, to
// time how long HAProxy takes to drain it (NOLB) or mark it DOWN.
func haproxyTiming(t *testing.T, stack stacktest.Stack, subnet string, checks []generated) map[string]*timingResult {
	sick := stacktest.Start(t, stack, stacktest.Options{Addr: subnet + "2:0", NotServing: true})
	toggled := stacktest.Start(t, stack, stacktest.Options{Addr: subnet + "3:0"})
	dns := dnstest.Start(t)
	sickName, toggledName := string(stack)+".sick.bench.test", string(stack)+".toggled.bench.test"
	dns.Set(sickName, hostIP(t, sick.Addr))
	dns.Set(toggledName, hostIP(t, toggled.Addr))
	var backends []backendConfig
	results := map[string]*timingResult{}
	kindOf := map[string]string{} // sick backend → check's backend
	for _, g := range checks {
		results[g.backend] = &timingResult{}
		for k := range sickBackends {
			name := fmt.Sprintf("sick_%s_%d", g.backend, k)
			kindOf[name] = g.backend
			backends = append(backends, g.backendFor(name, sickName+":"+port(t, sick.Addr), 1, timingInterMS))
		}
		backends = append(backends, g.backendFor("toggled_"+g.backend, toggledName+":"+port(t, toggled.Addr), 1, timingInterMS))
	}
	hap := startBenchHAProxy(t, dns.Addr, backends)

	checked := func() bool {
		for name := range kindOf {
			if !strings.HasPrefix(hap.server(t, name).CheckStatus, "L") {
				return false
			}
		}
		return true
	}
	waitUntil(t, "a first check of every backend of the not-serving server", 20*time.Second, 20*time.Millisecond, checked)
	time.Sleep(sickWarmup)
	for range sickRounds {
		for name, kind := range kindOf {
			s := hap.server(t, name)
			results[kind].sick = append(results[kind].sick, s.CheckDuration)
			results[kind].sickStatus = append(results[kind].sickStatus, s.CheckStatus)
		}
		time.Sleep(timingInterMS * time.Millisecond)
	}

	for range downSamples {
		toggled.SetServing(t, true)
		waitUntil(t, "the serving server UP after passed checks", 20*time.Second, 20*time.Millisecond, func() bool {
			for _, g := range checks {
				if s := hap.server(t, "toggled_"+g.backend); s.Status != "UP" || s.CheckStatus != "L7OK" {
					return false
				}
			}
			return true
		})
		// The server turns not serving at a random point of HAProxy's
		// check schedule, as it would in production, rather than just
		// after the check that made it UP.
		time.Sleep(rand.N(timingInterMS * time.Millisecond))
		start := time.Now()
		toggled.SetServing(t, false)
		pending := map[string]bool{}
		for _, g := range checks {
			pending[g.backend] = true
		}
		waitUntil(t, "the not-serving server NOLB or DOWN", 20*time.Second, 2*time.Millisecond, func() bool {
			for _, g := range checks {
				if s := hap.server(t, "toggled_"+g.backend); pending[g.backend] && s.Status == g.outOfBalance() {
					results[g.backend].down = append(results[g.backend].down, time.Since(start))
					results[g.backend].downStatus = append(results[g.backend].downStatus, s.CheckStatus)
					delete(pending, g.backend)
				}
			}
			return len(pending) == 0
		})
	}
	return results
}

// hostIP returns the IP address of addr, "ip:port".
func hostIP(t *testing.T, addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return net.ParseIP(host)
}

// writeTiming reports how fast HAProxy judged a not-serving answer, and
// how long it took to take a server out of the balance after it turned
// not serving.
func writeTiming(r *report, checks []generated, stacks map[stacktest.Stack]*stackResult) {
	r.heading("HAProxy: time to judge a not-serving answer")
	r.para("Real HAProxy loads the fragments the plugin generates for the example's checks (with `inter %dms`, servers from a DNS "+
		"name on a loopback address) and checks servers of each stack (`internal/stacktest`) that answer not serving: %d backends per "+
		"check, sampled %d times one inter apart after %v of checks. The duration is HAProxy's own `check_duration` from `show stat` (whole milliseconds). "+
		"Target: under 50 ms, ended by a rule, not by a timeout: drained (L7OKC) by the grpc.health.v1 check, whose contract names the "+
		"not-serving answer, failed (L7RSP) by the health RPC check, which has none. Reference: a check that only fails by timing out "+
		"waits its timeout, which is `inter` when `timeout check` is unset: %d ms here, %d ms with the example's generated inter.",
		timingInterMS, sickBackends, sickRounds, sickWarmup, timingInterMS, checks[0].interMS)
	rows := timingRows(checks, stacks, func(_ generated, res *timingResult) []string {
		return []string{fmt.Sprint(len(res.sick)), countsText(res.sickStatus), checkMS(median(res.sick)), checkMS(quantile(res.sick, 0.9)),
			checkMS(slices.Max(res.sick)), ratio(slices.Max(res.sick), timingInterMS*time.Millisecond)}
	})
	r.table([]string{"stack", "check", "samples", "check status", "median", "p90", "max", "max against the timeout"}, rows)

	r.heading("HAProxy: time from not serving to out of the balance")
	r.para("The same HAProxy checks a serving server of each stack (`inter %dms rise %d fall %d`); once it is UP after passed checks, "+
		"the server is told to stop serving (SIGUSR1, the test servers' `SetServing(false)`), and the driver polls `show stat` every 2 ms "+
		"until HAProxy reports it NOLB (drained: no new connections) with the grpc.health.v1 check, DOWN with the health RPC check; "+
		"%d samples per check, each starting at a random point of the check schedule. Reference: the bound for each, `inter` = %d ms "+
		"for a check that drains at once (the first check after the change comes up to one inter later), `fall × inter` = %d ms for "+
		"one that fails at once (then `fall − 1` more checks, one inter apart). The product's earlier timeout-based check took 11.1 s "+
		"with `inter 2s fall 3`.",
		timingInterMS, timingRise, timingFall, downSamples, timingInterMS, timingFall*timingInterMS)
	rows = timingRows(checks, stacks, func(g generated, res *timingResult) []string {
		return []string{g.outOfBalance(), fmt.Sprint(len(res.down)), countsText(res.downStatus), ms(median(res.down)), ms(slices.Min(res.down)),
			ms(slices.Max(res.down)), ms(g.outOfBalanceBound()), ratio(median(res.down), g.outOfBalanceBound())}
	})
	r.table([]string{"stack", "check", "state", "samples", "last check", "median", "min", "max", "bound", "median against the bound"}, rows)

	var sick []time.Duration
	down := map[string][]time.Duration{} // by check
	var ran, byRule int
	for _, stack := range stacktest.Stacks {
		if !stacks[stack].ran {
			continue
		}
		ran++
		for _, g := range checks {
			res := stacks[stack].timing[g.backend]
			sick = append(sick, res.sick...)
			down[g.backend] = append(down[g.backend], res.down...)
			byRule += strings.Count(strings.Join(res.sickStatus, " "), g.notServingStatus())
		}
	}
	if ran == 0 {
		return
	}
	r.summarize("**Not-serving answer:** on %d stacks, HAProxy ended the check by a rule (L7OKC, drained, with the grpc.health.v1 "+
		"check; L7RSP, failed, with the health RPC check; not a timeout) in %d of %d sampled checks, in %s median, %s p90, %s at most, "+
		"against a timeout of %d ms.",
		ran, byRule, len(sick), checkMS(median(sick)), checkMS(quantile(sick, 0.9)), checkMS(slices.Max(sick)), timingInterMS)
	var parts []string
	for _, g := range checks {
		d, bound := down[g.backend], g.outOfBalanceBound()
		parts = append(parts, fmt.Sprintf("%s %s after %s median, %s at most (%s and %s of its bound, %s)", g.backend, g.outOfBalance(),
			ms(median(d)), ms(slices.Max(d)), ratio(median(d), bound), ratio(slices.Max(d), bound), ms(bound)))
	}
	r.summarize("**Not serving to out of the balance** (`inter %dms fall %d`): %s.", timingInterMS, timingFall, strings.Join(parts, "; "))
}

// timingRows returns a row for each stack and check: the stack, the check,
// and the cells that cells makes of its timing, or "not run".
func timingRows(checks []generated, stacks map[stacktest.Stack]*stackResult, cells func(generated, *timingResult) []string) [][]string {
	var rows [][]string
	for _, stack := range stacktest.Stacks {
		for _, g := range checks {
			row := []string{string(stack), g.backend}
			if s := stacks[stack]; s.ran {
				row = append(row, cells(g, s.timing[g.backend])...)
			} else {
				row = append(row, "not run")
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// checkMS formats a check duration that HAProxy reports in whole
// milliseconds.
func checkMS(d time.Duration) string {
	if d < time.Millisecond {
		return "<1 ms"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

// countsText counts names and formats the counts as "NAME×N", sorted by
// name.
func countsText(names []string) string {
	counts := map[string]int{}
	for _, name := range names {
		counts[name]++
	}
	var parts []string
	for name, n := range counts {
		parts = append(parts, fmt.Sprintf("%s×%d", name, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// pidWithArg returns the id of the process, other than this one, that has
// arg among its command-line arguments.
func pidWithArg(t *testing.T, arg string) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && slices.Contains(strings.Split(string(raw), "\x00"), arg) {
			return pid
		}
	}
	t.Fatalf("no process has the argument %s", arg)
	return 0
}

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100
// on every Linux architecture Go supports but alpha and ia64.
const clockTick = 10 * time.Millisecond

// processCPU returns the user and system CPU time that the process pid has
// used, in all its threads, at a resolution of 10 ms.
func processCPU(t *testing.T, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces, start with the state (field 3); utime and stime are
	// fields 14 and 15.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	utime, err1 := strconv.ParseInt(fields[14-3], 10, 64)
	stime, err2 := strconv.ParseInt(fields[15-3], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("reading /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * clockTick
}
