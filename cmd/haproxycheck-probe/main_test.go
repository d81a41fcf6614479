package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
)

// greeterFragment is the committed fragment of the example's Greeter,
// checked through grpc.health.v1.
func greeterFragment(t *testing.T) string {
	return filepath.Join(testenv.RepoRoot(t), "example", "gen", "haproxy", "helloworld.Greeter.cfg")
}

// probeCmd runs the command with args and returns its exit code and
// output.
func probeCmd(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// healthServer runs a grpc-go server on loopback whose health service
// reports status for helloworld.Greeter, until the test ends.
func healthServer(t *testing.T, status grpc_health_v1.HealthCheckResponse_ServingStatus) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("helloworld.Greeter", status)
	grpc_health_v1.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return l.Addr().String()
}

// silentServer accepts connections and never answers, until the test ends.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				_, _ = io.Copy(io.Discard, conn)
				conn.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// tlsFragment writes the Greeter's fragment with TLS added to its connect
// rule and no certificate verification, and returns its file.
func tlsFragment(t *testing.T) string {
	text, err := os.ReadFile(greeterFragment(t))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "tcp-check connect ", "tcp-check connect ssl alpn h2 ", 1)
	s = strings.Replace(s, " check inter", " check verify none inter", 1)
	file := filepath.Join(t.TempDir(), "tls.cfg")
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestExitCodes checks the exit code and the verdict printed for each
// class of outcome.
func TestExitCodes(t *testing.T) {
	fragment := greeterFragment(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"healthy", []string{"-fragment", fragment, "-addr", healthServer(t, grpc_health_v1.HealthCheckResponse_SERVING)}, 0, "verdict: healthy (HAProxy: L7OK)"},
		{"connection refused", []string{"-fragment", fragment, "-addr", closedAddr(t)}, 2, "verdict: connection-failed (HAProxy: L4CON)"},
		{"timeout", []string{"-fragment", fragment, "-addr", silentServer(t), "-timeout", "200ms"}, 3, "verdict: timeout (HAProxy: L7TOUT)"},
		{"not serving", []string{"-fragment", fragment, "-addr", healthServer(t, grpc_health_v1.HealthCheckResponse_NOT_SERVING)}, 6, "verdict: draining (HAProxy: L7OKC)"},
		{"unknown service", []string{"-fragment", fragment, "-addr", healthServer(t, grpc_health_v1.HealthCheckResponse_SERVICE_UNKNOWN)}, 4, "verdict: wrong-answer (HAProxy: L7RSP)"},
		{"TLS to a plaintext server", []string{"-fragment", tlsFragment(t), "-addr", healthServer(t, grpc_health_v1.HealthCheckResponse_SERVING)}, 5, "verdict: tls-failure (HAProxy: L6RSP)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := probeCmd(tt.args...)
			// protobuf text format varies its spaces on purpose.
			squeeze := func(s string) string { return strings.Join(strings.Fields(s), "") }
			if code != tt.code || !strings.Contains(squeeze(stdout), squeeze(tt.want)) {
				t.Errorf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tt.code, tt.want, stdout, stderr)
			}
		})
	}
}

// TestOutput checks that the text output shows the frames, header fields
// and messages, and that -json prints the same result as JSON.
func TestOutput(t *testing.T) {
	addr := healthServer(t, grpc_health_v1.HealthCheckResponse_SERVING)
	_, stdout, _ := probeCmd("-fragment", greeterFragment(t), "-addr", addr)
	for _, want := range []string{
		"\nsent: ", ":path: /grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest {service:",
		"SETTINGS stream 0", "HEADERS stream 1 [END_STREAM|END_HEADERS]", "grpc-status: 0",
		"call: :status 200", "ended by trailers", ": passed",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}

	code, stdout, stderr := probeCmd("-json", "-fragment", greeterFragment(t), "-addr", addr)
	var res struct {
		Address string `json:"address"`
		Verdict struct {
			Class   string `json:"class"`
			HAProxy string `json:"haproxy_status"`
		} `json:"verdict"`
		Call struct {
			GRPCStatus struct {
				Code uint32 `json:"code"`
				Name string `json:"name"`
			} `json:"grpc_status"`
			End string `json:"end"`
		} `json:"call"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 {
		t.Fatalf("-json: exit %d, %v\n%s\n%s", code, err, stdout, stderr)
	}
	if res.Address != addr || res.Verdict.Class != "healthy" || res.Verdict.HAProxy != "L7OK" ||
		res.Call.GRPCStatus.Code != 0 || res.Call.GRPCStatus.Name != "OK" || res.Call.End != "trailers" {
		t.Errorf("-json result: %s", stdout)
	}
}

// TestDescriptorSet checks that a probe compiles a service's fragment from
// a descriptor set, with the plugin's parameters.
func TestDescriptorSet(t *testing.T) {
	set := protogentest.ExampleSet(t, nil)
	raw, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "greeter.binpb")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := healthServer(t, grpc_health_v1.HealthCheckResponse_SERVING)
	code, stdout, stderr := probeCmd("-descriptor-set", file, "-service", "helloworld.Greeter", "-addr", addr)
	if code != 0 || !strings.Contains(stdout, "probe of backend greeter") {
		t.Errorf("compiled from the descriptor set: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "user-agent: protoc-gen-haproxycheck/") {
		t.Errorf("the plugin's default user_agent=true is not in the request:\n%s", stdout)
	}
	code, stdout, stderr = probeCmd("-descriptor-set", file, "-service", "helloworld.Greeter", "-plugin-opt", "user_agent=false", "-addr", addr)
	if code != 0 || strings.Contains(stdout, "user-agent:") {
		t.Errorf("-plugin-opt user_agent=false: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = probeCmd("-descriptor-set", file, "-service", "helloworld.Greeter", "-plugin-opt", "nope=1", "-addr", addr)
	if code != 1 || !strings.Contains(stderr, `unknown parameter "nope"`) {
		t.Errorf("-plugin-opt nope=1: exit %d, %s", code, stderr)
	}
	code, _, stderr = probeCmd("-descriptor-set", file, "-service", "helloworld.Nope", "-addr", addr)
	if code != 1 || !strings.Contains(stderr, "no file of the descriptor set declares service helloworld.Nope") {
		t.Errorf("unknown service: exit %d, %s", code, stderr)
	}
	partial := filepath.Join(t.TempDir(), "partial.binpb")
	var greeterOnly descriptorpb.FileDescriptorSet
	for _, f := range set.File {
		if f.GetName() == "helloworld/greeter.proto" {
			greeterOnly.File = append(greeterOnly.File, f)
		}
	}
	raw, _ = proto.Marshal(&greeterOnly)
	if err := os.WriteFile(partial, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = probeCmd("-descriptor-set", partial, "-service", "helloworld.Greeter", "-addr", addr)
	if code != 1 || !strings.Contains(stderr, "--include_imports") {
		t.Errorf("descriptor set without imports: exit %d, %s", code, stderr)
	}
}

// TestUsage checks --version, and that bad invocations exit 1 with a
// message.
func TestUsage(t *testing.T) {
	code, stdout, _ := probeCmd("--version")
	if code != 0 || stdout != "haproxycheck-probe "+version.Version+"\n" {
		t.Errorf("--version: exit %d, %q", code, stdout)
	}
	bad := filepath.Join(t.TempDir(), "bad.cfg")
	if err := os.WriteFile(bad, []byte("frontend f\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-fragment", greeterFragment(t)}, "-addr HOST:PORT is required"},
		{[]string{"-addr", "127.0.0.1:1"}, "give either -fragment FILE"},
		{[]string{"-fragment", greeterFragment(t), "-service", "a.B", "-addr", "127.0.0.1:1"}, "give either -fragment FILE"},
		{[]string{"-service", "a.B", "-addr", "127.0.0.1:1"}, "-service needs -descriptor-set FILE"},
		{[]string{"-fragment", greeterFragment(t), "-plugin-opt", "go=false", "-addr", "127.0.0.1:1"}, "-plugin-opt goes with -service"},
		{[]string{"-fragment", greeterFragment(t), "-addr", "127.0.0.1:1", "extra"}, "unexpected arguments"},
		{[]string{"-fragment", bad, "-addr", "127.0.0.1:1"}, "reading the fragment: line 1"},
		{[]string{"-fragment", filepath.Join(t.TempDir(), "none.cfg"), "-addr", "127.0.0.1:1"}, "no such file"},
		{[]string{"-descriptor-set", bad, "-service", "a.B", "-addr", "127.0.0.1:1"}, "is not a FileDescriptorSet"},
		{[]string{"-nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		code, _, stderr := probeCmd(tt.args...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

// TestREADMEListsExitCodes checks that the README's table of exit codes
// has a row for each of probe.Classes, as it describes it, and one for
// usage errors.
func TestREADMEListsExitCodes(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "| exit | verdict | meaning | HAProxy |\n| --- | --- | --- | --- |\n")
	if !ok {
		t.Fatal("README has no table of exit codes")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	want := []string{fmt.Sprintf("| %d | | nothing was probed: bad flags, fragment, descriptor set or CA file | |", probe.ExitUsage)}
	for _, c := range probe.Classes {
		var statuses []string
		for _, s := range c.Statuses {
			statuses = append(statuses, s.String())
		}
		want = append(want, fmt.Sprintf("| %d | %s | %s | %s |", c.ExitCode, c.Name, c.Meaning, strings.Join(statuses, ", ")))
	}
	slices.SortFunc(want, func(a, b string) int { return strings.Compare(a[:4], b[:4]) })
	if got := strings.Split(table, "\n"); !slices.Equal(got, want) {
		t.Errorf("README's exit codes:\n%s\nwant, from probe.Classes:\n%s", table, strings.Join(want, "\n"))
	}
}
