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
	// proto is the proto file, relative to its protoc run's root, and
	// source its text; %s is the file's defaults option.
	proto, source string
}

// The server roles: a server of each stack plays each.
const (
	roleHealthy     = "healthy"
	roleNotServing  = "not serving"
	roleDraining    = "draining"
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
		upRoles: []string{roleHealthy, roleHealthySplit, roleOnlyGreeter},
		proto:   "helloworld/greeter.proto", source: fmt.Sprintf(matrixGreeterProto, "%s", "greeter", "mode: MODE_TCP"),
	},
	{
		name: "greeter_http", envVar: "GREETER_HTTP_SERVERS", path: "/grpc.health.v1.Health/Check",
		upRoles: []string{roleHealthy, roleHealthySplit, roleOnlyGreeter},
		proto:   "helloworld/greeter.proto", source: fmt.Sprintf(matrixGreeterProto, "%s", "greeter_http", "mode: MODE_HTTP"),
	},
	{
		name: "greeter_whole", envVar: "GREETER_WHOLE_SERVERS", path: "/grpc.health.v1.Health/Check",
		upRoles: []string{roleHealthy, roleHealthySplit, roleOnlyGreeter},
		proto:   "helloworld/greeter.proto", source: fmt.Sprintf(matrixGreeterProto, "%s", "greeter_whole", "whole_server: true"),
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
// that is not serving is DOWN, failed by the response rule (L7RSP), not by
// a timeout; a stopped one is DOWN; a server of another service, a plain
// HTTP/1 server and a non-gRPC HTTP/2 server are never passed by a check.
// Every server sees the check's authority and metadata, and HAProxy
// balances real gRPC calls, in mode tcp and in mode http, over the UP
// servers only. A healthy and a not-serving server of each stack are also
// checked through a relay that splits their answers at every byte, and a
// server of each stack is drained while it is UP. It prints the table of
// final verdicts.
func TestStackMatrix(t *testing.T) {
	t.Parallel()
	plugin := testenv.BuildPlugin(t)
	table := &verdictTable{rows: map[string]map[string]string{}}
	t.Cleanup(func() { t.Logf("verdicts (status, last check):%s", table) })
	for i, transport := range []string{"plaintext", "tls"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			runMatrix(t, plugin, transport, fmt.Sprintf("127.0.%d.", 51+i), table)
		})
	}
}

// runMatrix runs one transport's matrix on the addresses of subnet.
func runMatrix(t *testing.T, plugin, transport, subnet string, table *verdictTable) {
	useTLS := transport == "tls"
	type server struct {
		stack stacktest.Stack // empty for the Go HTTP servers
		role  string
		ip    string
		grpc  *stacktest.Server
	}
	var servers []*server
	for i, stack := range stacktest.Stacks {
		for j, role := range stackRoles {
			if relayed[role] != "" && useTLS {
				continue
			}
			servers = append(servers, &server{stack: stack, role: role, ip: fmt.Sprintf("%s%d", subnet, 10*(i+1)+j)})
		}
	}
	serverOf := func(stack stacktest.Stack, role string) *server {
		for _, s := range servers {
			if s.stack == stack && s.role == role {
				return s
			}
		}
		return nil
	}
	servers = append(servers, &server{role: roleHTTP1, ip: subnet + "200"}, &server{role: roleH2, ip: subnet + "201"})
	tcpFrontend, httpFrontend := subnet+"250", subnet+"251"
	var ips []string
	for _, s := range servers {
		ips = append(ips, s.ip)
	}
	port := freePort(t, append(ips, tcpFrontend, httpFrontend))
	addr := func(ip string) string { return net.JoinHostPort(ip, port) }

	var certFile, keyFile, caFile string
	defaults := fmt.Sprintf(`option (haproxycheck.v1.defaults) = {
  authority: %q
  metadata: {key: %q value: %q}
  servers: {count: 40}
  timing: {inter_ms: 1000 rise: 2 fall: 2 timeout_ms: 3000}`, matrixAuthority, matrixMetadataKey, matrixMetadataValue)
	if useTLS {
		certFile, keyFile, caFile = stacktest.TLSFiles(t, matrixAuthority)
		defaults += fmt.Sprintf("\n  tls: {ca_file: %q}", caFile)
	}
	defaults += "\n};"
	fragments := generateMatrix(t, plugin, defaults)

	for _, s := range servers {
		switch s.role {
		case roleHTTP1:
			serveHTTP(t, addr(s.ip), false, certFile, keyFile)
		case roleH2:
			serveHTTP(t, addr(s.ip), true, certFile, keyFile)
		case roleHealthySplit, roleNotServingSplit:
			startByteRelay(t, addr(s.ip), addr(serverOf(s.stack, relayed[s.role]).ip))
		default:
			s.grpc = stacktest.Start(t, s.stack, stacktest.Options{
				Addr: addr(s.ip), Services: roleServices[s.role], NotServing: s.role == roleNotServing,
				ID: string(s.stack) + "/" + s.role, TLSCert: certFile, TLSKey: keyFile,
			})
		}
	}

	extra := fmt.Sprintf(`
frontend lb_tcp
    mode tcp
    bind %s
    default_backend greeter

frontend lb_http
    mode http
    bind %s proto h2
    default_backend greeter_http
`, addr(tcpFrontend), addr(httpFrontend))
	var envVars []string
	for _, b := range matrixBackends {
		envVars = append(envVars, b.envVar)
	}
	hap := startHAProxy(t, fragments, extra, "servers.matrix.test", ips, port, envVars...)
	var backendNames []string
	for _, b := range matrixBackends {
		backendNames = append(backendNames, b.name)
	}
	watch := watchBackends(t, hap, backendNames...)

	const upWithin = 30 * time.Second
	for _, b := range matrixBackends {
		for _, s := range servers {
			if slices.Contains(b.upRoles, s.role) || s.role == roleStopped || s.role == roleDraining {
				hap.WaitStatus(t, b.name, addr(s.ip), "UP", upWithin)
			}
		}
	}
	for _, s := range servers {
		switch s.role {
		case roleStopped:
			s.grpc.Stop(t)
		case roleDraining:
			s.grpc.SetServing(t, false)
		}
	}

	const downWithin = 15 * time.Second
	for _, b := range matrixBackends {
		for _, s := range servers {
			row := s.role
			if s.stack != "" {
				row = string(s.stack) + " " + s.role
			}
			switch {
			case slices.Contains(b.upRoles, s.role):
				st, _, _ := hap.ServerAt(b.name, addr(s.ip))
				if st.Status != "UP" || st.CheckStatus != "L7OK" {
					t.Errorf("%s: %s %s ended %s %s, want UP L7OK", b.name, row, addr(s.ip), st.Status, st.CheckStatus)
				}
			case s.role == roleStopped:
				st := hap.WaitStatus(t, b.name, addr(s.ip), "DOWN", downWithin)
				if !strings.HasPrefix(st.CheckStatus, "L4") {
					t.Errorf("%s: stopped %s: last check %s, want a layer 4 failure", b.name, row, st.CheckStatus)
				}
			case s.role == roleDraining:
				st := hap.WaitStatus(t, b.name, addr(s.ip), "DOWN", downWithin)
				if st.CheckStatus != "L7RSP" {
					t.Errorf("%s: %s: last check %s, want L7RSP (failed by the response rule, not by a timeout)", b.name, row, st.CheckStatus)
				}
			case s.role == roleHTTP1 || s.role == roleH2:
				// Whichever way they fail (an HTTP/1 answer, a TLS server
				// without ALPN h2, an HTTP/2 answer without trailers that
				// runs into the check's timeout), they never pass.
				hap.WaitStatus(t, b.name, addr(s.ip), "DOWN", downWithin)
				watch.assertNeverPassed(t, b.name, addr(s.ip))
			default:
				st := hap.WaitStatus(t, b.name, addr(s.ip), "DOWN", downWithin)
				if st.CheckStatus != "L7RSP" {
					t.Errorf("%s: %s: last check %s, want L7RSP (failed by the response rule, not by a timeout)", b.name, row, st.CheckStatus)
				}
				watch.assertNeverPassed(t, b.name, addr(s.ip))
			}
			st, _, _ := hap.ServerAt(b.name, addr(s.ip))
			table.set(row, transport+" "+b.name, st.Status+" "+st.CheckStatus)
		}
	}

	// Every stack saw the checks' authority and metadata.
	for _, s := range servers {
		if s.role != roleHealthy {
			continue
		}
		for _, path := range []string{"/servicestatus.HealthCheck/Check", "/grpc.health.v1.Health/Check"} {
			s.grpc.WaitCall(t, func(c stacktest.Call) bool {
				return c.Method == path && c.Authority == matrixAuthority && c.Metadata[matrixMetadataKey] == matrixMetadataValue
			}, 10*time.Second)
		}
	}

	// HAProxy balances calls over the UP servers only: in mode tcp each
	// connection, in mode http each call.
	var wantIDs []string
	for _, s := range servers {
		if slices.Contains(matrixBackends[1].upRoles, s.role) && relayed[s.role] == "" {
			wantIDs = append(wantIDs, string(s.stack)+"/"+s.role) // a relay's calls reach the server it relays
		}
	}
	tcpCreds := insecure.NewCredentials()
	if useTLS {
		var err error
		tcpCreds, err = credentials.NewClientTLSFromFile(caFile, matrixAuthority)
		if err != nil {
			t.Fatal(err)
		}
	}
	assertBalanced(t, "mode tcp", wantIDs, func(ctx context.Context) (string, error) {
		return sayHello(ctx, addr(tcpFrontend), tcpCreds, nil)
	})
	httpConn, err := grpc.NewClient(addr(httpFrontend), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer httpConn.Close()
	assertBalanced(t, "mode http", wantIDs, func(ctx context.Context) (string, error) {
		return sayHello(ctx, addr(httpFrontend), nil, httpConn)
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
