package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// The matrix's checks carry this authority and metadata, which every
// server must see.
const (
	matrixAuthority     = "checks.matrix.test"
	matrixMetadataKey   = "x-check-token"
	matrixMetadataValue = "matrix"
)

// matrixBackend is one generated backend of the matrix.
type matrixBackend struct {
	name, envVar string
	// path is the check's RPC.
	path string
	// upRoles are the server roles whose checks pass.
	upRoles []string
	// drains reports whether the check drains a server that says it is
	// not serving (NOLB, L7OKC) rather than failing it (DOWN, L7RSP): a
	// grpc.health.v1 check does; a health RPC without not_serving_response
	// does not.
	drains bool
	// proto is the proto file, relative to its protoc run's root, and
	// source its text; %s is the file's defaults option.
	proto, source string
}

// notServing returns the state and the last check status of a server
// that says it is not serving.
func (b matrixBackend) notServing() (status, check string) {
	if b.drains {
		return "NOLB", "L7OKC"
	}
	return "DOWN", "L7RSP"
}

// The server roles: a server of each stack plays each.
const (
	roleHealthy     = "healthy"
	roleNotServing  = "not serving"
	roleDraining    = "draining" // UP, then not serving, then serving again
	roleStopped     = "stopped"
	roleOnlyGreeter = "greeter only"
	roleOnlyStatus  = "servicestatus only"
	roleHTTP1       = "HTTP/1 server"
	roleH2          = "non-gRPC HTTP/2 server"
	// The healthy and the not-serving server of each stack, behind a relay
	// that splits their answers at every byte (plaintext only: the check's
	// timeout is too short for a TLS handshake a byte at a time).
	roleHealthySplit    = "healthy, split"
	roleNotServingSplit = "not serving, split"
)

// stackRoles are the roles a server of every stack plays; roleHTTP1 and
// roleH2 are played by one Go server each.
var stackRoles = []string{roleHealthy, roleNotServing, roleDraining, roleStopped, roleOnlyGreeter, roleOnlyStatus, roleHealthySplit, roleNotServingSplit}

// relayed are the roles of relays, and the role of the server each relays.
var relayed = map[string]string{roleHealthySplit: roleHealthy, roleNotServingSplit: roleNotServing}

// roleServices are the services each stack role serves.
var roleServices = map[string][]string{
	roleOnlyGreeter: {"greeter", "health"},
	roleOnlyStatus:  {"servicestatus"},
}

const matrixGreeterProto = `syntax = "proto3";
package helloworld;
import "haproxycheck/v1/haproxycheck.proto";
option go_package = "example.com/matrix/helloworld";
%s
service Greeter {
  option (haproxycheck.v1.grpc_health) = {check: {backend: "%s" %s}};
  rpc SayHello(HelloRequest) returns (HelloReply);
}
message HelloRequest { string name = 1; }
message HelloReply { string message = 1; }
`

// matrixBackends are the backends every matrix run generates: a health RPC
// in mode tcp, and grpc.health.v1 in mode tcp, in mode http, and about the
// whole server.
var matrixBackends = []matrixBackend{
	{
		name: "servicestatus", envVar: "SERVICESTATUS_SERVERS", path: "/servicestatus.HealthCheck/Check",
		upRoles: []string{roleHealthy, roleHealthySplit, roleOnlyStatus},
		proto:   "servicestatus/servicestatus.proto", source: fmt.Sprintf(statusProto, "%s", ""),
	},
	{
		name: "greeter", envVar: "GREETER_SERVERS", path: "/grpc.health.v1.Health/Check",
		upRoles: []string{roleHealthy, roleHealthySplit, roleOnlyGreeter}, drains: true,
		proto: "helloworld/greeter.proto", source: fmt.Sprintf(matrixGreeterProto, "%s", "greeter", "mode: MODE_TCP"),
	},
	{
		name: "greeter_http", envVar: "GREETER_HTTP_SERVERS", path: "/grpc.health.v1.Health/Check",
		upRoles: []string{roleHealthy, roleHealthySplit, roleOnlyGreeter}, drains: true,
		proto: "helloworld/greeter.proto", source: fmt.Sprintf(matrixGreeterProto, "%s", "greeter_http", "mode: MODE_HTTP"),
	},
	{
		name: "greeter_whole", envVar: "GREETER_WHOLE_SERVERS", path: "/grpc.health.v1.Health/Check",
		upRoles: []string{roleHealthy, roleHealthySplit, roleOnlyGreeter}, drains: true,
		proto: "helloworld/greeter.proto", source: fmt.Sprintf(matrixGreeterProto, "%s", "greeter_whole", "whole_server: true"),
	},
}

// verdictTable collects the final state of every server in every backend,
// by transport, for the table the matrix prints.
type verdictTable struct {
	mu   sync.Mutex
	rows map[string]map[string]string // "stack role" → "transport backend" → verdict
}

func (v *verdictTable) set(row, column, verdict string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.rows[row] == nil {
		v.rows[row] = map[string]string{}
	}
	v.rows[row][column] = verdict
}

// String renders the table with one column per transport and backend.
func (v *verdictTable) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var columns []string
	for _, transport := range []string{"plaintext", "tls"} {
		for _, b := range matrixBackends {
			columns = append(columns, transport+" "+b.name)
		}
	}
	var rows []string
	for row := range v.rows {
		rows = append(rows, row)
	}
	slices.Sort(rows)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-34s", "server")
	for _, c := range columns {
		fmt.Fprintf(&b, " | %-22s", c)
	}
	b.WriteString("\n")
	for _, row := range rows {
		fmt.Fprintf(&b, "%-34s", row)
		for _, c := range columns {
			fmt.Fprintf(&b, " | %-22s", v.rows[row][c])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestStackMatrix runs the generated checks of both kinds, in mode tcp and
// mode http, over plaintext and TLS, in real HAProxy against real servers
// of grpc-go, grpc-js and gRPC C-core: a healthy server is UP; a server
// that is not serving is drained (NOLB, its checks ended by L7OKC) by the
// grpc.health.v1 checks and failed (DOWN, L7RSP: by the response rule, not
// by a timeout) by the health RPC check, which has no not-serving response;
// a stopped one is DOWN; a server of another service, a plain HTTP/1
// server and a non-gRPC HTTP/2 server are never passed by a check. A server
// of each stack that is UP and turns not serving is drained at the first
// check after the change, not after fall checks, and UP again at the first
// check after it serves again. Every server sees the check's authority and
// metadata, and HAProxy balances real gRPC calls, in mode tcp and in mode
// http, over the UP servers only. A healthy and a not-serving server of each
// stack are also checked through a relay that splits their answers at
// every byte. It prints the table of final verdicts, and the drain timings.
func TestStackMatrix(t *testing.T) {
	t.Parallel()
	plugin := testenv.BuildPlugin(t)
	table := &verdictTable{rows: map[string]map[string]string{}}
	t.Cleanup(func() { t.Logf("verdicts on HAProxy %s (status, last check):%s", testenv.HAProxyVersion(t), table) })
	for i, transport := range []string{"plaintext", "tls"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			runMatrix(t, plugin, transport, fmt.Sprintf("127.0.%d.", 51+i), table)
		})
	}
}

// runMatrix runs one transport's matrix on the addresses of subnet.
func runMatrix(t *testing.T, plugin, transport, subnet string, table *verdictTable) {
	m := planMatrix(t, transport, subnet)
	m.startServers(t)
	m.startHAProxy(t, plugin)
	m.waitInitialStates(t)
	m.applyEvents(t)
	m.judgeServers(t, table)
	m.checkSeen(t)
	m.checkBalancing(t)
}

// The matrix's check timing, which every backend's defaults set.
const (
	matrixInter   = time.Second
	matrixTimeout = 3 * time.Second
	matrixRise    = 2
	matrixFall    = 2
)

// The bounds of the matrix's waits. matrixSlack is what a timed event
// allows beyond HAProxy's own timing, for the stats polls, the signal
// reaching the server, and some 50 servers checked by four backends each
// on a small machine.
const (
	matrixUpWithin   = 30 * time.Second // rise × inter, plus DNS resolution
	matrixDownWithin = 15 * time.Second
	matrixSlack      = time.Second
)

// matrix is one transport's run of the matrix.
type matrix struct {
	transport string
	useTLS    bool
	servers   []*matrixServer
	port      string
	// tcpFrontend and httpFrontend are the addresses HAProxy balances
	// Greeter calls on, in mode tcp and in mode http.
	tcpFrontend, httpFrontend string
	// certFile, keyFile and caFile are the servers' TLS files.
	certFile, keyFile, caFile string
	hap                       *haproxytest.HAProxy
	watch                     stateWatch
	// drains are what HAProxy made of each draining server, by backend
	// and server.
	drains map[drainKey]*drainEvent
}

// matrixServer is one server of the matrix.
type matrixServer struct {
	stack stacktest.Stack // empty for the Go HTTP servers
	role  string
	ip    string
	addr  string
	grpc  *stacktest.Server // nil for the HTTP servers and relays
	// relayed is the server a relay role relays.
	relayed *matrixServer
}

// row names the server in the verdict table.
func (s *matrixServer) row() string {
	if s.stack == "" {
		return s.role
	}
	return string(s.stack) + " " + s.role
}

// id is the name a gRPC server gives in its Greeter replies.
func (s *matrixServer) id() string { return string(s.stack) + "/" + s.role }

// planMatrix lays out the servers of one transport's matrix on the
// addresses of subnet, on a port free on all of them.
func planMatrix(t *testing.T, transport, subnet string) *matrix {
	m := &matrix{transport: transport, useTLS: transport == "tls", drains: map[drainKey]*drainEvent{}}
	for i, stack := range stacktest.Stacks {
		for j, role := range stackRoles {
			if relayed[role] != "" && m.useTLS {
				continue
			}
			m.servers = append(m.servers, &matrixServer{stack: stack, role: role, ip: fmt.Sprintf("%s%d", subnet, 10*(i+1)+j)})
		}
	}
	m.servers = append(m.servers, &matrixServer{role: roleHTTP1, ip: subnet + "200"}, &matrixServer{role: roleH2, ip: subnet + "201"})
	tcpIP, httpIP := subnet+"250", subnet+"251"
	m.port = testenv.FreePort(t, append(m.ips(), tcpIP, httpIP))
	for _, s := range m.servers {
		s.addr = net.JoinHostPort(s.ip, m.port)
		if role := relayed[s.role]; role != "" {
			s.relayed = m.server(s.stack, role)
		}
	}
	m.tcpFrontend, m.httpFrontend = net.JoinHostPort(tcpIP, m.port), net.JoinHostPort(httpIP, m.port)
	if m.useTLS {
		m.certFile, m.keyFile, m.caFile = stacktest.TLSFiles(t, matrixAuthority)
	}
	return m
}

// ips returns the servers' addresses.
func (m *matrix) ips() []string {
	var ips []string
	for _, s := range m.servers {
		ips = append(ips, s.ip)
	}
	return ips
}

// server returns the server of stack that plays role.
func (m *matrix) server(stack stacktest.Stack, role string) *matrixServer {
	for _, s := range m.servers {
		if s.stack == stack && s.role == role {
			return s
		}
	}
	return nil
}

// startServers starts every server: the gRPC servers of each stack, the
// Go HTTP servers, and the relays.
func (m *matrix) startServers(t *testing.T) {
	for _, s := range m.servers {
		switch {
		case s.role == roleHTTP1 || s.role == roleH2:
			serveHTTP(t, s.addr, s.role == roleH2, m.certFile, m.keyFile)
		case s.relayed != nil:
			startByteRelay(t, s.addr, s.relayed.addr)
		default:
			s.grpc = stacktest.Start(t, s.stack, stacktest.Options{
				Addr: s.addr, Services: roleServices[s.role], NotServing: s.role == roleNotServing,
				ID: s.id(), TLSCert: m.certFile, TLSKey: m.keyFile,
			})
		}
	}
}

// startHAProxy generates the matrix's backends and runs HAProxy on them,
// with a frontend in mode tcp and one in mode http that balance Greeter
// calls, and starts watching the servers' states.
func (m *matrix) startHAProxy(t *testing.T, plugin string) {
	defaults := fmt.Sprintf(`option (haproxycheck.v1.defaults) = {
  authority: %q
  metadata: {key: %q value: %q}
  servers: {count: 40}
  timing: {inter_ms: %d rise: %d fall: %d timeout_ms: %d}`, matrixAuthority, matrixMetadataKey, matrixMetadataValue,
		matrixInter.Milliseconds(), matrixRise, matrixFall, matrixTimeout.Milliseconds())
	if m.useTLS {
		defaults += fmt.Sprintf("\n  tls: {ca_file: %q}", m.caFile)
	}
	defaults += "\n};"
	fragments := generateMatrix(t, plugin, defaults)

	extra := fmt.Sprintf(`
frontend lb_tcp
    mode tcp
    bind %s
    default_backend greeter

frontend lb_http
    mode http
    bind %s proto h2
    default_backend greeter_http
`, m.tcpFrontend, m.httpFrontend)
	var envVars, backendNames []string
	for _, b := range matrixBackends {
		envVars = append(envVars, b.envVar)
		backendNames = append(backendNames, b.name)
	}
	m.hap = startHAProxy(t, fragments, extra, "servers.matrix.test", m.ips(), m.port, envVars...)
	m.watch = watchBackends(t, m.hap, backendNames...)
}

// waitInitialStates waits until every server that serves a backend's
// check is UP in it, the ones that the events will stop and drain
// included.
func (m *matrix) waitInitialStates(t *testing.T) {
	for _, b := range matrixBackends {
		for _, s := range m.servers {
			if slices.Contains(b.upRoles, s.role) || s.role == roleStopped || s.role == roleDraining {
				m.hap.WaitStatus(t, b.name, s.addr, "UP", matrixUpWithin)
			}
		}
	}
}

// drainKey is one server of one backend.
type drainKey struct {
	backend string
	addr    string
}

// drainEvent is what HAProxy made of a draining server in one backend:
// the state it reached once the server said it was not serving (out), and
// once it served again (back), with the time each took from the change,
// and the state it was in just before.
type drainEvent struct {
	out, back           stateChange
	outBound, backBound time.Duration
}

// stateChange is a server's state once it reached the one wanted, at most
// a minute after the change that led to it.
type stateChange struct {
	want    string
	since   time.Time
	reached bool
	state   haproxytest.Server
	took    time.Duration
}

// newDrainEvent returns the drain event of a server in backend b, with
// how long HAProxy may take: to drain it, one check, the first within one
// inter of the change; to fail it, fall checks; to pass it again, one check
// out of NOLB (rise does not apply to leaving it), rise checks out of DOWN.
func newDrainEvent(b matrixBackend) *drainEvent {
	want, _ := b.notServing()
	e := &drainEvent{out: stateChange{want: want}, back: stateChange{want: "UP"}}
	if b.drains {
		e.outBound, e.backBound = matrixInter+matrixTimeout, 2*matrixInter
	} else {
		e.outBound, e.backBound = matrixFall*matrixInter+matrixTimeout, matrixRise*matrixInter+matrixTimeout
	}
	return e
}

// applyEvents stops the stopped servers, then turns every draining server
// not serving, waits until each backend has drained or failed it, turns it
// serving again, and waits until each has it UP, timing both.
func (m *matrix) applyEvents(t *testing.T) {
	var draining []*matrixServer
	for _, s := range m.servers {
		switch s.role {
		case roleStopped:
			s.grpc.Stop(t)
		case roleDraining:
			draining = append(draining, s)
			for _, b := range matrixBackends {
				m.drains[drainKey{b.name, s.addr}] = newDrainEvent(b)
			}
		}
	}
	m.turn(t, draining, false, func(e *drainEvent) *stateChange { return &e.out })
	m.turn(t, draining, true, func(e *drainEvent) *stateChange { return &e.back })
	for _, b := range matrixBackends {
		for _, s := range draining {
			e := m.drains[drainKey{b.name, s.addr}]
			t.Logf("%s %s, %s: %s %s %v after not serving; %s %s %v after serving again", m.transport, s.row(), b.name,
				e.out.state.Status, e.out.state.CheckStatus, e.out.took.Round(time.Millisecond),
				e.back.state.Status, e.back.state.CheckStatus, e.back.took.Round(time.Millisecond))
		}
	}
}

// turn makes servers serving or not, and waits until the watch has seen
// HAProxy put each in the state that change picks of its drain events, in
// every backend.
func (m *matrix) turn(t *testing.T, servers []*matrixServer, serving bool, change func(*drainEvent) *stateChange) {
	var pending []*stateChange
	keys := map[*stateChange]drainKey{}
	for _, s := range servers {
		since := time.Now()
		s.grpc.SetServing(t, serving)
		for _, b := range matrixBackends {
			key := drainKey{b.name, s.addr}
			c := change(m.drains[key])
			c.since, keys[c] = since, key
			pending = append(pending, c)
		}
	}
	for deadline := time.Now().Add(time.Minute); len(pending) > 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pending = slices.DeleteFunc(pending, func(c *stateChange) bool {
			o, ok := m.watch.firstSince(keys[c].backend, keys[c].addr, c.since, c.want)
			if ok {
				c.reached, c.state, c.took = true, o.Server, o.At.Sub(c.since)
			}
			return ok
		})
	}
}

// judgeServers judges the final state of every server in every backend,
// and records it in table.
func (m *matrix) judgeServers(t *testing.T, table *verdictTable) {
	for _, b := range matrixBackends {
		for _, s := range m.servers {
			verdict := m.judge(t, b, s)
			table.set(s.row(), m.transport+" "+b.name, verdict)
		}
	}
}

// judge judges the server s in backend b, and returns its verdict for the
// table.
func (m *matrix) judge(t *testing.T, b matrixBackend, s *matrixServer) string {
	t.Helper()
	switch {
	case slices.Contains(b.upRoles, s.role):
		st, _, _ := m.hap.ServerAt(b.name, s.addr)
		if st.Status != "UP" || st.CheckStatus != "L7OK" {
			t.Errorf("%s: %s %s ended %s %s, want UP L7OK", b.name, s.row(), s.addr, st.Status, st.CheckStatus)
		}
		return st.Status + " " + st.CheckStatus
	case s.role == roleStopped:
		st := m.hap.WaitStatus(t, b.name, s.addr, "DOWN", matrixDownWithin)
		if !strings.HasPrefix(st.CheckStatus, "L4") {
			t.Errorf("%s: stopped %s: last check %s, want a layer 4 failure", b.name, s.row(), st.CheckStatus)
		}
		return st.Status + " " + st.CheckStatus
	case s.role == roleDraining:
		return m.judgeDrain(t, b, s)
	case s.role == roleHTTP1 || s.role == roleH2:
		// Whichever way they fail (an HTTP/1 answer, a TLS server without
		// ALPN h2), they never pass; a non-gRPC HTTP/2 answer, which ends
		// its stream with DATA, fails the check as soon as it ends.
		st := m.hap.WaitStatus(t, b.name, s.addr, "DOWN", matrixDownWithin)
		if s.role == roleH2 && st.CheckStatus != "L7RSP" {
			t.Errorf("%s: %s: last check %s, want L7RSP (failed by the response rule, not by a timeout)", b.name, s.row(), st.CheckStatus)
		}
		m.watch.assertNeverPassed(t, b.name, s.addr, "DOWN")
		return st.Status + " " + st.CheckStatus
	default:
		want, check := "DOWN", "L7RSP"
		if s.role == roleNotServing || s.role == roleNotServingSplit {
			want, check = b.notServing()
		}
		st := m.hap.WaitStatus(t, b.name, s.addr, want, matrixDownWithin)
		if st.CheckStatus != check {
			t.Errorf("%s: %s: last check %s, want %s (ended by the response rule, not by a timeout)", b.name, s.row(), st.CheckStatus, check)
		}
		m.watch.assertNeverPassed(t, b.name, s.addr, want)
		return st.Status + " " + st.CheckStatus
	}
}

// judgeDrain judges what backend b made of the draining server s, and
// returns its verdict for the table: the state once not serving, then
// once serving again.
func (m *matrix) judgeDrain(t *testing.T, b matrixBackend, s *matrixServer) string {
	t.Helper()
	e := m.drains[drainKey{b.name, s.addr}]
	_, check := b.notServing()
	switch {
	case !e.out.reached:
		t.Errorf("%s: %s: never %s after it said it was not serving", b.name, s.row(), e.out.want)
	case e.out.state.CheckStatus != check:
		t.Errorf("%s: %s: %s with last check %s, want %s", b.name, s.row(), e.out.want, e.out.state.CheckStatus, check)
	case e.out.took > e.outBound+matrixSlack:
		t.Errorf("%s: %s: %s %v after it said it was not serving, want within %v (and %v of slack)",
			b.name, s.row(), e.out.want, e.out.took, e.outBound, matrixSlack)
	}
	if b.drains && e.out.reached {
		// Drained at the first check after the change: no check failed
		// before it, as one would on the way to DOWN ("UP 1/2").
		seen := m.watch.statusesBetween(b.name, s.addr, e.out.since, e.out.since.Add(e.out.took))
		if !slices.Equal(slices.DeleteFunc(slices.Clone(seen), func(st string) bool { return st == "UP" }), []string{"NOLB"}) {
			t.Errorf("%s: %s: states %q from not serving to NOLB, want UP until drained", b.name, s.row(), seen)
		}
	}
	switch {
	case !e.back.reached:
		t.Errorf("%s: %s: never UP again after it served again", b.name, s.row())
	case e.back.state.CheckStatus != "L7OK":
		t.Errorf("%s: %s: UP again with last check %s, want L7OK", b.name, s.row(), e.back.state.CheckStatus)
	case e.back.took > e.backBound+matrixSlack:
		t.Errorf("%s: %s: UP %v after it served again, want within %v (and %v of slack)", b.name, s.row(), e.back.took, e.backBound, matrixSlack)
	}
	return fmt.Sprintf("%s %s, %s %s", e.out.state.Status, e.out.state.CheckStatus, e.back.state.Status, e.back.state.CheckStatus)
}

// checkSeen checks that every stack saw the checks' authority and
// metadata.
func (m *matrix) checkSeen(t *testing.T) {
	for _, s := range m.servers {
		if s.role != roleHealthy {
			continue
		}
		for _, path := range []string{"/servicestatus.HealthCheck/Check", "/grpc.health.v1.Health/Check"} {
			s.grpc.WaitCall(t, func(c stacktest.Call) bool {
				return c.Method == path && c.Authority == matrixAuthority && c.Metadata[matrixMetadataKey] == matrixMetadataValue
			}, 10*time.Second)
		}
	}
}

// checkBalancing checks that HAProxy balances Greeter calls over the UP
// servers only, the draining ones UP again included: in mode tcp each
// connection, in mode http each call. The not-serving servers, drained,
// serve the Greeter but get none.
func (m *matrix) checkBalancing(t *testing.T) {
	var wantIDs []string
	for _, s := range m.servers {
		// A relay's calls reach the server it relays.
		if (slices.Contains(matrixBackends[1].upRoles, s.role) || s.role == roleDraining) && s.relayed == nil {
			wantIDs = append(wantIDs, s.id())
		}
	}
	tcpCreds := insecure.NewCredentials()
	if m.useTLS {
		var err error
		tcpCreds, err = credentials.NewClientTLSFromFile(m.caFile, matrixAuthority)
		if err != nil {
			t.Fatal(err)
		}
	}
	assertBalanced(t, "mode tcp", wantIDs, func(ctx context.Context) (string, error) {
		return sayHello(ctx, m.tcpFrontend, tcpCreds, nil)
	})
	httpConn, err := grpc.NewClient(m.httpFrontend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer httpConn.Close()
	assertBalanced(t, "mode http", wantIDs, func(ctx context.Context) (string, error) {
		return sayHello(ctx, m.httpFrontend, nil, httpConn)
	})
}

// generateMatrix generates the matrix's backends with the file option
// defaults, each in a protoc run of its own, and returns the fragments.
func generateMatrix(t *testing.T, plugin, defaults string) []string {
	t.Helper()
	var fragments []string
	for _, b := range matrixBackends {
		out := generateProtos(t, plugin, "", map[string]string{b.proto: fmt.Sprintf(b.source, defaults)})
		fragments = append(fragments, filepath.Join(out, "haproxy"))
	}
	return fragments
}

// sayHello calls Greeter.SayHello through addr, on conn or on a connection
// of its own with creds, and returns the ID of the server that answered.
func sayHello(ctx context.Context, addr string, creds credentials.TransportCredentials, conn *grpc.ClientConn) (string, error) {
	if conn == nil {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return "", err
		}
		defer c.Close()
		conn = c
	}
	reply, err := helloworld.NewGreeterClient(conn).SayHello(ctx, &helloworld.HelloRequest{Name: "matrix"})
	if err != nil {
		return "", err
	}
	_, id, ok := strings.Cut(reply.GetMessage(), " from ")
	if !ok {
		return "", fmt.Errorf("reply %q names no server", reply.GetMessage())
	}
	return id, nil
}

// assertBalanced makes calls through HAProxy with call and fails the test
// unless every call succeeds, every answer comes from one of the servers
// wantIDs, and every one of them answers at least once.
func assertBalanced(t *testing.T, mode string, wantIDs []string, call func(context.Context) (string, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[string]int{}
	for range 5 * len(wantIDs) {
		id, err := call(ctx)
		if err != nil {
			t.Errorf("%s: call through HAProxy: %v", mode, err)
			return
		}
		if !slices.Contains(wantIDs, id) {
			t.Errorf("%s: call answered by %s, which is not an UP server", mode, id)
		}
		got[id]++
	}
	for _, id := range wantIDs {
		if got[id] == 0 {
			t.Errorf("%s: no call reached %s (calls by server: %v)", mode, id, got)
		}
	}
}
