package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// drainProto is the check whose drain the driver times: the Greeter
// through grpc.health.v1, with the driver's timing; %s are the backend's
// name and what the check makes of a server that says it is not serving.
const drainProto = `syntax = "proto3";
package helloworld;
import "haproxycheck/v1/haproxycheck.proto";
service Greeter {
  option (haproxycheck.v1.grpc_health) = {check: {
    backend: "%s" not_serving: %s
    timing: {inter_ms: %d rise: %d fall: %d}
  }};
  rpc SayHello(HelloRequest) returns (HelloReply);
}
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
`

// drainCheck is one of the two checks the drain is timed with.
type drainCheck struct {
	// backend is the generated backend's name, and notServing what its
	// check makes of a server that says it is not serving.
	backend, notServing string
	// state is the state HAProxy puts that server in: NOLB or DOWN.
	state string
}

// The drained check, the default, and the reference: the same server and
// timing with a check that fails a not-serving server.
var drainChecks = []drainCheck{
	{backend: "drained", notServing: "NOT_SERVING_DRAIN", state: "NOLB"},
	{backend: "failed", notServing: "NOT_SERVING_DOWN", state: "DOWN"},
}

const (
	// drainSamples is how many times the server turns not serving.
	drainSamples = 8
	// drainCallers is how many callers open connections through each
	// backend's frontend, each a new connection per call, drainPace apart:
	// about 400 new connections a second per backend, half of them to the
	// drained server.
	drainCallers = 2
	drainPace    = 5 * time.Millisecond
)

// drainResult is what the driver measured of one check.
type drainResult struct {
	// last are, per sample, the times from the server turning not
	// serving to the start of the last new connection that HAProxy sent
	// it; zero when it sent none after the change.
	last []time.Duration
	// state are, per sample, the times to HAProxy reporting the state.
	state []time.Duration
	// after is how many new connections it got after the change, in all
	// samples.
	after int
	// contract is the drain time of the fragment's contract line.
	contract time.Duration
	// failed is how many calls through the backend failed, in the whole
	// run.
	failed int
}

// connRecord is one connection through a frontend: when it started and
// which server answered its call.
type connRecord struct {
	start  time.Time
	server string
}

// measureDrain times, with real HAProxy and a grpc-go server, how long
// HAProxy goes on sending a server new connections once it says it is not
// serving: with the generated grpc.health.v1 check, which drains it (NOLB)
// at the first check, against the same check made to fail it (DOWN) after
// fall checks, both backends checking the same server in the same run.
// Each backend has a second server, which takes the connections the first
// no longer gets.
func measureDrain(t *testing.T, r *report, protoc string, bins binaries) {
	fragments := make([]string, len(drainChecks))
	results := make([]*drainResult, len(drainChecks))
	for i, c := range drainChecks {
		fragments[i] = generateDrainFragment(t, protoc, bins, c)
		text, err := os.ReadFile(fragments[i])
		if err != nil {
			t.Fatal(err)
		}
		f, err := probe.ParseFragment(text)
		if err != nil || f.Contract == nil {
			t.Fatalf("%s: %v (contract %v)", fragments[i], err, f.Contract)
		}
		if f.Contract.NotServingDrains != (c.state == "NOLB") {
			t.Fatalf("%s: the contract says not-serving-drains=%t, want the %s check", fragments[i], f.Contract.NotServingDrains, c.backend)
		}
		results[i] = &drainResult{contract: f.Contract.DrainTime}
	}

	const subnet = "127.0.97."
	ips := []string{subnet + "1", subnet + "2", subnet + "101", subnet + "102"}
	port := testenv.FreePort(t, ips)
	addr := func(ip string) string { return net.JoinHostPort(ip, port) }
	drained := stacktest.Start(t, stacktest.GoStack, stacktest.Options{Addr: addr(ips[0]), Services: []string{"greeter", "health"}, ID: "drained"})
	stacktest.Start(t, stacktest.GoStack, stacktest.Options{Addr: addr(ips[1]), Services: []string{"greeter", "health"}, ID: "other"})
	dns := dnstest.Start(t)
	const name = "greeter.drain.bench.test"
	dns.Set(name, net.ParseIP(ips[0]), net.ParseIP(ips[1]))
	var frontends strings.Builder
	var env []string
	for i, c := range drainChecks {
		fmt.Fprintf(&frontends, "\nfrontend lb_%s\n    mode tcp\n    bind %s\n    default_backend %s\n", c.backend, addr(ips[2+i]), c.backend)
		env = append(env, strings.ToUpper(c.backend)+"_SERVERS="+name+":"+port)
	}
	hap := haproxytest.Run(t, dns.Addr, frontends.String(), fragments, env)
	status := func(backend string) string {
		s, _, err := hap.ServerAt(backend, drained.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return s.Status
	}

	records := make([]*connLog, len(drainChecks))
	for i := range drainChecks {
		records[i] = startConnections(t, addr(ips[2+i]))
	}
	for range drainSamples {
		drained.SetServing(t, true)
		waitUntil(t, "the server UP in every backend", 20*time.Second, 10*time.Millisecond, func() bool {
			for _, c := range drainChecks {
				if status(c.backend) != "UP" {
					return false
				}
			}
			return true
		})
		// The server turns not serving at a random point of HAProxy's
		// check schedule, as it would in production.
		time.Sleep(rand.N(timingInterMS * time.Millisecond))
		start := time.Now()
		drained.SetServing(t, false)
		pending := map[int]bool{0: true, 1: true}
		waitUntil(t, "the server out of the balance in every backend", 20*time.Second, 2*time.Millisecond, func() bool {
			for i, c := range drainChecks {
				if pending[i] && status(c.backend) == c.state {
					results[i].state = append(results[i].state, time.Since(start))
					delete(pending, i)
				}
			}
			return len(pending) == 0
		})
		// Connections that HAProxy had already sent the server when it
		// changed its state reach it within milliseconds.
		time.Sleep(timingInterMS * time.Millisecond)
		for i, log := range records {
			last, after := log.lastAfter("drained", start)
			results[i].last = append(results[i].last, last)
			results[i].after += after
		}
	}
	for i, log := range records {
		log.stop()
		results[i].failed = log.failed
	}
	writeDrain(r, results)
}

// generateDrainFragment runs real protoc with the plugin on drainProto for
// c, and returns the fragment's path.
func generateDrainFragment(t *testing.T, protoc string, bins binaries, c drainCheck) string {
	src, out := t.TempDir(), t.TempDir()
	proto := filepath.Join(src, "helloworld", "greeter.proto")
	if err := os.MkdirAll(filepath.Dir(proto), 0o755); err != nil {
		t.Fatal(err)
	}
	source := fmt.Sprintf(drainProto, c.backend, c.notServing, timingInterMS, timingRise, timingFall)
	if err := os.WriteFile(proto, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-I", bins.options, "-I", src, "--plugin=protoc-gen-haproxycheck=" + bins.plugin, "--haproxycheck_out=" + out, "helloworld/greeter.proto"}
	testenv.Run(t, src, time.Minute, protoc, args...)
	return filepath.Join(out, "haproxy", "helloworld.Greeter.cfg")
}

// connLog opens connections through a frontend, one per call, until it
// is stopped, and records which server answered each.
type connLog struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []connRecord
	failed  int
}

// startConnections starts drainCallers callers through addr.
func startConnections(t *testing.T, addr string) *connLog {
	l := &connLog{}
	for range drainCallers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stopped.Load() {
				start := time.Now()
				id, err := callOnce(addr)
				l.mu.Lock()
				if err != nil {
					l.failed++
				} else {
					l.conns = append(l.conns, connRecord{start: start, server: id})
				}
				l.mu.Unlock()
				time.Sleep(time.Until(start.Add(drainPace)))
			}
		}()
	}
	t.Cleanup(l.stop)
	return l
}

// stop stops the callers and waits for them.
func (l *connLog) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

// callOnce makes one Greeter call on a new connection to addr and returns
// the ID of the server that answered.
func callOnce(addr string) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := helloworld.NewGreeterClient(conn).SayHello(ctx, &helloworld.HelloRequest{Name: "drain"})
	if err != nil {
		return "", err
	}
	_, id, _ := strings.Cut(reply.GetMessage(), " from ")
	return id, nil
}

// lastAfter returns how long after since the last connection that server
// id answered started (zero when none started after since), and how many
// did.
func (l *connLog) lastAfter(id string, since time.Time) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last time.Duration
	n := 0
	for _, c := range l.conns {
		if c.server == id && c.start.After(since) {
			last = max(last, c.start.Sub(since))
			n++
		}
	}
	return last, n
}

// writeDrain reports how long HAProxy sent the server new connections
// after it turned not serving.
func writeDrain(r *report, results []*drainResult) {
	fallInter := time.Duration(timingFall*timingInterMS) * time.Millisecond
	r.heading("HAProxy: time from a drain to the server's last new connection")
	r.para("Real HAProxy loads two backends the plugin generates from the same grpc.health.v1 annotation (`inter %dms rise %d fall %d`, "+
		"servers from a DNS name on loopback addresses), both checking the same two grpc-go test servers: `drained`, the default, "+
		"which drains a server that answers NOT_SERVING (L7OKC, NOLB), and `failed`, with `not_serving: NOT_SERVING_DOWN`, which fails "+
		"it (DOWN after fall checks). Through a `mode tcp` frontend per backend, %d callers each open a new connection per call, %v "+
		"apart, and note which server answered. Once both backends have the first server UP, at a random point of the check schedule, "+
		"it turns not serving (SIGUSR1, `SetServing(false)`); the time is from then to the start of the last connection it answered, "+
		"measured from the callers' records, %d samples. Reference: `fall × inter` = %v, how long the check that fails a not-serving "+
		"server may take to stop sending it new connections; the drained check should take at most its contract's drain time "+
		"(`inter` + the check's timeout).",
		timingInterMS, timingRise, timingFall, drainCallers, drainPace, drainSamples, fallInter)
	var rows [][]string
	for i, c := range drainChecks {
		res := results[i]
		rows = append(rows, []string{c.backend, c.state, fmt.Sprint(len(res.last)), fmt.Sprint(res.after), ms(median(res.last)),
			ms(slices.Min(res.last)), ms(slices.Max(res.last)), ms(median(res.state)), ms(res.contract), ratio(median(res.last), fallInter),
			fmt.Sprint(res.failed)})
	}
	r.table([]string{"check", "state", "samples", "new connections after the change", "median to the last one", "min", "max",
		"median to the state in show stat", "contract drain time", "median against fall × inter", "failed calls"}, rows)
	drainedRes, failedRes := results[0], results[1]
	r.summarize("**Drain to the last new connection:** a server that says it is not serving gets its last new connection %s after (median, "+
		"%s at most) with the generated check, which drains it, against %s (median, %s at most) with the same check made to fail it: %s and "+
		"%s of `fall × inter` = %s (`inter %dms fall %d`).",
		ms(median(drainedRes.last)), ms(slices.Max(drainedRes.last)), ms(median(failedRes.last)), ms(slices.Max(failedRes.last)),
		ratio(median(drainedRes.last), fallInter), ratio(median(failedRes.last), fallInter), ms(fallInter), timingInterMS, timingFall)
}

// TestRecordDrain runs the benchmark driver's drain part alone, on the
// haproxy the tests run (testenv), and writes the machine and that section
// to the file given with -record:
//
//	go test ./bench -run '^TestRecordDrain$' -count 1 -v -record /tmp/drain.md
func TestRecordDrain(t *testing.T) {
	recordPart(t, "Drain to the last new connection", "The drain part of `scripts/bench`, run alone.", func(r *report, protoc string, bins binaries) {
		measureDrain(t, r, protoc, bins)
	})
}
