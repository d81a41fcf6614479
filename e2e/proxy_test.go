package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/nginxtest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// The proxy test's timing: a check every second, a timeout of 2 s, which
// is shorter than HAProxy's retries of a refused upstream (about 3 s).
const (
	proxyInter   = time.Second
	proxyTimeout = 2 * time.Second
	proxyFall    = 2
)

// proxyProto is the Greeter checked through grpc.health.v1 with the proxy
// test's timing.
const proxyProto = `syntax = "proto3";
package helloworld;
import "haproxycheck/v1/haproxycheck.proto";
service Greeter {
  option (haproxycheck.v1.grpc_health) = {
    check: {backend: "greeter" timing: {inter_ms: %d timeout_ms: %d rise: 2 fall: %d} servers: {count: 20}}
  };
  rpc SayHello(HelloRequest) returns (HelloReply);
}
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
`

// A proxyRole is what the grpc-go server behind a path does.
type proxyRole string

const (
	roleProxyHealthy    proxyRole = "healthy"
	roleProxyNotServing proxyRole = "not serving"
	roleProxyDraining   proxyRole = "draining"
	roleProxyDown       proxyRole = "down"
)

// proxyRoles are the servers' roles; each role's server is 127.0.91.(10+i),
// and the proxies in front of it are at 127.0.91.(30+i) (nginx) and
// 127.0.91.(50+i) (HAProxy in mode http).
var proxyRoles = []proxyRole{roleProxyHealthy, roleProxyNotServing, roleProxyDraining, roleProxyDown}

// The paths from the checking HAProxy to a server.
const (
	pathDirect  = "direct"
	pathNginx   = "nginx"
	pathHAProxy = "HAProxy mode http"
	pathRelay   = "nginx, relay" // nginx, then a relay that splits the server's answers at every byte
)

// proxyPaths are the paths in front of every role, with the last byte of
// their addresses less the role's index.
var proxyPaths = []struct {
	name string
	base int
}{{pathDirect, 10}, {pathNginx, 30}, {pathHAProxy, 50}}

const (
	proxySubnet  = "127.0.91."
	relayNginxIP = proxySubnet + "40" // nginx in front of the relay
	relayIP      = proxySubnet + "70" // the relay, in front of the healthy server
)

// proxyTarget is one address that HAProxy and the probe check: a server,
// or a proxy in front of it.
type proxyTarget struct {
	role proxyRole
	path string
	addr string
	// first is HAProxy's first check of the target, and probe the
	// probe's check at the same stage.
	first haproxytest.Server
	probe *probe.Result
}

// TestChecksBehindProxies checks grpc-go servers directly and behind a
// real proxy, nginx's grpc_pass and HAProxy in mode http with proto h2,
// with real HAProxy and with the probe, on the same generated fragment: a
// healthy server is UP (L7OK) on every path, a not-serving one is drained
// (L7OKC), and one turned not serving while UP is drained; a stopped one
// fails every check at once behind nginx (its 502), and is never passed
// behind HAProxy (2.6 retries the refused upstream for about 3 s, longer
// than the check's timeout, then answers 503; 3.2 answers 502 at once).
// HAProxy and the probe give the same status at every stage. A healthy
// server behind nginx and a relay that splits its answers at every byte
// stays UP, whatever frames nginx makes of them.
func TestChecksBehindProxies(t *testing.T) {
	t.Parallel()
	src := fmt.Sprintf(proxyProto, proxyInter.Milliseconds(), proxyTimeout.Milliseconds(), proxyFall)
	out := generateProtos(t, testenv.BuildPlugin(t), "", map[string]string{"helloworld/greeter.proto": src})
	fragment := filepath.Join(out, "haproxy", "helloworld.Greeter.cfg")
	text, err := os.ReadFile(fragment)
	if err != nil {
		t.Fatal(err)
	}
	f := parseFragment(t, text)

	var targets []*proxyTarget
	serverIP := func(i int) string { return fmt.Sprintf("%s%d", proxySubnet, 10+i) }
	for i, role := range proxyRoles {
		for _, p := range proxyPaths {
			targets = append(targets, &proxyTarget{role: role, path: p.name, addr: fmt.Sprintf("%s%d", proxySubnet, p.base+i)})
		}
	}
	targets = append(targets, &proxyTarget{role: roleProxyHealthy, path: pathRelay, addr: relayNginxIP})
	var ips []string
	for _, tg := range targets {
		ips = append(ips, tg.addr)
	}
	port := testenv.FreePort(t, append(slices.Clone(ips), relayIP))
	at := func(ip string) string { return net.JoinHostPort(ip, port) }
	for _, tg := range targets {
		tg.addr = at(tg.addr)
	}

	servers := map[proxyRole]*stacktest.Server{}
	var proxies []nginxtest.GRPCProxy
	var httpProxies strings.Builder
	for i, role := range proxyRoles {
		servers[role] = stacktest.Start(t, stacktest.GoStack, stacktest.Options{
			Addr: at(serverIP(i)), NotServing: role == roleProxyNotServing, ID: string(role),
		})
		proxies = append(proxies, nginxtest.GRPCProxy{Listen: at(fmt.Sprintf("%s%d", proxySubnet, 30+i)), Upstream: at(serverIP(i))})
		fmt.Fprintf(&httpProxies, `
listen grpc_proxy_%d
    mode http
    option httplog
    bind %s proto h2
    server upstream %s proto h2
`, i, at(fmt.Sprintf("%s%d", proxySubnet, 50+i)), at(serverIP(i)))
	}
	startByteRelay(t, at(relayIP), servers[roleProxyHealthy].Addr)
	proxies = append(proxies, nginxtest.GRPCProxy{Listen: at(relayNginxIP), Upstream: at(relayIP)})
	nginxtest.Start(t, t.TempDir(), nginxtest.GRPCProxiesConfig(proxies...))
	httpProxy := haproxytest.Run(t, dnstest.Start(t).Addr, httpProxies.String(), nil, nil)
	checker := startHAProxy(t, []string{fragment}, logHealthChecks, "proxied.test", ips, port, "GREETER_SERVERS")

	// Every target's first check, by HAProxy and by the probe.
	want := map[proxyRole]string{roleProxyHealthy: "L7OK", roleProxyNotServing: "L7OKC", roleProxyDraining: "L7OK", roleProxyDown: "L7OK"}
	for _, tg := range targets {
		tg.first = firstCheck(t, checker, "greeter", tg.addr)
	}
	probeTargets(t, f, targets)
	for _, tg := range targets {
		if tg.path != pathRelay {
			checkProxyTarget(t, tg, "first check", tg.first.CheckStatus, want[tg.role])
		}
	}
	t.Run("healthy behind nginx, answer split before nginx", func(t *testing.T) {
		tg := targets[len(targets)-1]
		checkProxyTarget(t, tg, "first check", tg.first.CheckStatus, "L7OK")
		reportRelayed(t, tg)
	})

	// A server turned not serving while UP is drained on every path.
	draining := withRole(targets, roleProxyDraining)
	for _, tg := range draining {
		checker.WaitStatus(t, "greeter", tg.addr, "UP", 10*time.Second)
	}
	servers[roleProxyDraining].SetServing(t, false)
	turned := time.Now()
	var wg sync.WaitGroup
	for _, tg := range draining {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, ok, err := checker.AwaitServer("greeter", tg.addr, 10*time.Second, func(s haproxytest.Server) bool { return s.CheckStatus == "L7OKC" })
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				t.Errorf("%s, %s: no L7OKC within 10s of turning not serving; last %s %s", tg.role, tg.path, s.Status, s.CheckStatus)
				return
			}
			tg.first = s
			t.Logf("%s, %s: %s (%s) %v after the server turned not serving, check duration %v",
				tg.role, tg.path, s.Status, s.CheckStatus, time.Since(turned).Round(time.Millisecond), s.CheckDuration)
		}()
	}
	wg.Wait()
	probeTargets(t, f, draining)
	for _, tg := range draining {
		checkProxyTarget(t, tg, "turned not serving", tg.first.CheckStatus, "L7OKC")
	}

	// A stopped server.
	down := withRole(targets, roleProxyDown)
	for _, tg := range down {
		checker.WaitStatus(t, "greeter", tg.addr, "UP", 10*time.Second)
	}
	slots := map[string]string{}
	for _, tg := range down {
		s, _, err := checker.ServerAt("greeter", tg.addr)
		if err != nil {
			t.Fatal(err)
		}
		slots[tg.path] = s.Name
	}
	logged := map[string]int{}
	for _, tg := range down {
		logged[tg.path] = len(checker.HealthChecks("greeter", slots[tg.path]))
	}
	servers[roleProxyDown].Stop(t)
	stopped := time.Now()
	downAfter := map[string]time.Duration{}
	var mu sync.Mutex
	for _, tg := range down {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, ok, err := checker.AwaitServer("greeter", tg.addr, 20*time.Second, func(s haproxytest.Server) bool { return s.Status == "DOWN" })
			if err != nil {
				t.Error(err)
				return
			}
			if !ok {
				t.Errorf("down, %s: not DOWN within 20s of the server's stop; last %s %s", tg.path, s.Status, s.CheckStatus)
				return
			}
			mu.Lock()
			downAfter[tg.path] = time.Since(stopped)
			mu.Unlock()
		}()
	}
	wg.Wait()
	probeTargets(t, f, down)
	for _, tg := range down {
		checks := checker.HealthChecks("greeter", slots[tg.path])[logged[tg.path]:]
		var seen []string
		for _, c := range checks {
			seen = append(seen, fmt.Sprintf("%s in %v (%s, %s)", c.Status, c.Duration, c.Reason, c.Health))
		}
		t.Logf("down, %s: DOWN %v after the stop; checks: %s; probe: %s in %.0fms: %s", tg.path, downAfter[tg.path].Round(time.Millisecond),
			strings.Join(seen, "; "), tg.probe.Verdict.HAProxy, tg.probe.DurationMS, tg.probe.Verdict.Reason)
		if len(checks) == 0 {
			t.Errorf("down, %s: HAProxy logged no check after the server's stop", tg.path)
		}
		for _, c := range checks {
			switch {
			case c.Status == "L7OK" || c.Status == "L7OKC":
				t.Errorf("down, %s: a check passed after the server's stop: %s", tg.path, c.Line)
			case tg.path == pathDirect && c.Status != "L4CON":
				t.Errorf("down, direct: %s, want L4CON: %s", c.Status, c.Line)
			case tg.path == pathNginx && (c.Status != "L7RSP" && c.Status != "L7STS" || c.Duration > proxyTimeout/4):
				t.Errorf("down, nginx: %s in %v, want L7RSP or L7STS far within the %v timeout: %s", c.Status, c.Duration, proxyTimeout, c.Line)
			}
		}
		probeStatus := tg.probe.Verdict.HAProxy.String()
		switch {
		case len(checks) > 0 && probeStatus != checks[len(checks)-1].Status:
			t.Errorf("down, %s: HAProxy's last check %s, the probe %s: %s", tg.path, checks[len(checks)-1].Status, probeStatus, tg.probe.Verdict.Reason)
		case probeStatus == "L7OK" || probeStatus == "L7OKC":
			t.Errorf("down, %s: the probe passes: %s", tg.path, tg.probe.Verdict.Reason)
		case tg.path == pathDirect && probeStatus != "L4CON":
			t.Errorf("down, direct: the probe gives %s, want L4CON", probeStatus)
		case tg.path == pathNginx && (probeStatus != "L7RSP" && probeStatus != "L7STS" || tg.probe.DurationMS > float64((proxyTimeout/4).Milliseconds())):
			t.Errorf("down, nginx: the probe gives %s in %.0fms, want L7RSP or L7STS far within the %v timeout", probeStatus, tg.probe.DurationMS, proxyTimeout)
		}
		if tg.path == pathNginx {
			reportAnswer(t, "down, nginx: the probe received", tg.probe)
		}
		if tg.path == pathHAProxy {
			res := tg.probe
			if probeStatus == "L7TOUT" {
				// What HAProxy answers once its retries are over.
				var err error
				res, err = probe.Run(context.Background(), f, tg.addr, probe.Options{Timeout: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("down, %s: a probe that waits 10s gets %s in %.0fms: %s", tg.path, res.Verdict.HAProxy, res.DurationMS, res.Verdict.Reason)
			}
			reportAnswer(t, "down, HAProxy mode http: the probe received", res)
			var lines []string
			for _, line := range strings.Split(httpProxy.Log(), "\n") {
				if strings.Contains(line, fmt.Sprintf("grpc_proxy_%d ", slices.Index(proxyRoles, roleProxyDown))) && !strings.HasPrefix(line, "[") {
					lines = append(lines, line)
				}
			}
			t.Logf("down, %s: the proxy's log of its last calls:\n    %s", tg.path, strings.Join(lines[max(0, len(lines)-3):], "\n    "))
		}
	}
}

// logHealthChecks is a defaults section for the fragments loaded after it,
// as the test main configuration's, that also logs every check that moves
// a server's health (see haproxytest.HealthChecks).
const logHealthChecks = `
defaults
    log global
    mode tcp
    option log-health-checks
    timeout connect 2s
    timeout client 10s
    timeout server 10s
`

// withRole returns the targets of role, on every path but the relay.
func withRole(targets []*proxyTarget, role proxyRole) []*proxyTarget {
	var out []*proxyTarget
	for _, tg := range targets {
		if tg.role == role && tg.path != pathRelay {
			out = append(out, tg)
		}
	}
	return out
}

// probeTargets probes every target at once, with the fragment's own
// timing.
func probeTargets(t *testing.T, f *probe.Fragment, targets []*proxyTarget) {
	var wg sync.WaitGroup
	for _, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := probe.Run(context.Background(), f, tg.addr, probe.Options{})
			if err != nil {
				t.Errorf("%s, %s: the probe could not run: %v", tg.role, tg.path, err)
				return
			}
			tg.probe = res
		}()
	}
	wg.Wait()
}

// checkProxyTarget checks HAProxy's status of a target and the probe's
// against want.
func checkProxyTarget(t *testing.T, tg *proxyTarget, stage, haproxyStatus, want string) {
	t.Helper()
	if tg.probe == nil {
		return
	}
	probeStatus := tg.probe.Verdict.HAProxy.String()
	line := fmt.Sprintf("%s, %s, %s: HAProxy %s (%s, check duration %v), probe %s in %.0fms",
		tg.role, tg.path, stage, haproxyStatus, tg.first.Status, tg.first.CheckDuration, probeStatus, tg.probe.DurationMS)
	if haproxyStatus != want || probeStatus != want {
		t.Errorf("%s; want both %s\n  probe: %s\n  unseen: %s", line, want, tg.probe.Verdict.Reason, tg.probe.Verdict.Unseen)
		if tg.path != pathRelay {
			reportAnswer(t, "  the probe received", tg.probe)
		}
		return
	}
	t.Log(line)
}

// reportRelayed logs the frames that nginx sent for an answer that reached
// it split at every byte, and whether the response message came in one
// DATA frame, as the checks read it.
func reportRelayed(t *testing.T, tg *proxyTarget) {
	t.Helper()
	dataFrames := 0
	for _, fr := range tg.probe.Received.Frames {
		if fr.Type == http2.FrameData && fr.Stream == wire.StreamID && fr.Length > 0 {
			dataFrames++
		}
	}
	reportAnswer(t, fmt.Sprintf("%s, %s: the message came in %d DATA frame(s); nginx sent", tg.role, tg.path, dataFrames), tg.probe)
	t.Logf("  in hex: %s", tg.probe.Received.Hex)
}

// reportAnswer logs the frames of the answer that a probe received.
func reportAnswer(t *testing.T, what string, res *probe.Result) {
	t.Helper()
	var frames []string
	for _, fr := range res.Received.Frames {
		s := fmt.Sprintf("%s stream %d length %d", fr.Type, fr.Stream, fr.Length)
		if names := fr.FlagNames(); len(names) > 0 {
			s += " " + strings.Join(names, "|")
		}
		var fields []string
		for _, field := range fr.Fields {
			fields = append(fields, field.Name+": "+field.Value)
		}
		if len(fields) > 0 {
			s += " {" + strings.Join(fields, ", ") + "}"
		}
		if fr.Type == http2.FrameData && len(fr.Data) > 0 {
			s += " " + hex.EncodeToString(fr.Data[:min(len(fr.Data), 32)])
		}
		frames = append(frames, s)
	}
	t.Logf("%s %d bytes:\n    %s", what, res.Received.Bytes, strings.Join(frames, "\n    "))
}
