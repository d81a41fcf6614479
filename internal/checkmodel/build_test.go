package checkmodel_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// file returns a test proto file "svc/svc.proto" in text format, with
// service svc.Svc whose options are serviceOpts and whose RPCs are methods.
func file(serviceOpts string, methods ...string) string {
	return `name: "svc/svc.proto" package: "svc" syntax: "proto3"
dependency: "haproxycheck/v1/haproxycheck.proto"
options { go_package: "example.com/svc" }
message_type { name: "Req" field { name: "name" json_name: "name" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
message_type { name: "Resp" field { name: "status" json_name: "status" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
service { name: "Svc" options { ` + serviceOpts + ` } ` + strings.Join(methods, " ") + ` }`
}

// rpc returns an RPC Check(Req) returns (Resp) with health_rpc option opt,
// or no option when opt is empty.
func rpc(name, opt string) string {
	options := ""
	if opt != "" {
		options = `options { [haproxycheck.v1.health_rpc] { ` + opt + ` } }`
	}
	return fmt.Sprintf(`method { name: %q input_type: ".svc.Req" output_type: ".svc.Resp" %s }`, name, options)
}

func build(t *testing.T, files ...string) ([]checkmodel.File, error) {
	t.Helper()
	return checkmodel.Build(protogentest.Plugin(t, "", files...), checkmodel.Options{})
}

func TestBuildHealthRPC(t *testing.T) {
	files, err := build(t, file("", rpc("Check", `request: 'name: "haproxy"' expected_response: 'status: "OK"'`)))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || len(files[0].Checks) != 1 {
		t.Fatalf("got %d files, want 1 with 1 check", len(files))
	}
	c := files[0].Checks[0]
	if c.Kind != checkmodel.HealthRPC || c.Call.Path != "/svc.Svc/Check" || c.Backend.Name != "svc_Svc" || c.Call.Authority != "localhost" {
		t.Errorf("check %+v", c)
	}
	if want := []byte("\x0a\x07haproxy"); !bytes.Equal(c.Call.Request.Bytes, want) {
		t.Errorf("request %x, want %x", c.Call.Request.Bytes, want)
	}
	if want := []byte("\x00\x00\x00\x00\x04\x0a\x02OK"); !bytes.Equal(c.Answers.Healthy.GRPC, want) {
		t.Errorf("expected response %x, want %x", c.Answers.Healthy.GRPC, want)
	}
	if c.Backend.Servers.EnvVar != "SVC_SVC_SERVERS" || c.Backend.Servers.Count != 10 || c.Backend.Servers.Resolvers != "default" {
		t.Errorf("servers %+v", c.Backend.Servers)
	}
	if c.Backend.Timing != (checkmodel.Timing{InterMS: 2000, Rise: 2, Fall: 3}) {
		t.Errorf("timing %+v", c.Backend.Timing)
	}
	if c.HealthRPC.Input.GoName != "Req" || c.HealthRPC.Method != "Check" || c.Service.GoName != "Svc" {
		t.Errorf("Go names %+v", c.HealthRPC)
	}
}

func TestBuildGRPCHealth(t *testing.T) {
	for _, tc := range []struct {
		opt, wantName string
		wantRequest   []byte
	}{
		{opt: "", wantName: "svc.Svc", wantRequest: []byte("\x0a\x07svc.Svc")},
		{opt: `service_name: "custom"`, wantName: "custom", wantRequest: []byte("\x0a\x06custom")},
		{opt: `service_name: ""`, wantName: "", wantRequest: nil},
	} {
		files, err := build(t, file(`[haproxycheck.v1.grpc_health] { `+tc.opt+` }`, rpc("Hello", "")))
		if err != nil {
			t.Fatalf("%s: %v", tc.opt, err)
		}
		c := files[0].Checks[0]
		if c.Kind != checkmodel.GRPCHealth || c.Call.Path != "/grpc.health.v1.Health/Check" || c.HealthServiceName != tc.wantName {
			t.Errorf("%s: check %+v", tc.opt, c)
		}
		if !bytes.Equal(c.Call.Request.Bytes, tc.wantRequest) {
			t.Errorf("%s: request %x, want %x", tc.opt, c.Call.Request.Bytes, tc.wantRequest)
		}
		if !bytes.Equal(c.Answers.Healthy.GRPC, []byte{0, 0, 0, 0, 2, 0x08, 0x01}) ||
			!bytes.Equal(c.Answers.NotServing.GRPC, []byte{0, 0, 0, 0, 2, 0x08, 0x02}) {
			t.Errorf("%s: responses %x / %x", tc.opt, c.Answers.Healthy.GRPC, c.Answers.NotServing.GRPC)
		}
	}
}

func TestBuildUnannotatedFileHasNoChecks(t *testing.T) {
	files, err := build(t, file("", rpc("Hello", "")))
	if err != nil || len(files) != 0 {
		t.Fatalf("got %v, %v; want no files and no error", files, err)
	}
}

func TestBuildErrors(t *testing.T) {
	ok := `expected_response: 'status: "OK"'`
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{
			name:  "streaming RPC",
			files: []string{strings.Replace(file("", rpc("Check", ok)), `output_type: ".svc.Resp"`, `output_type: ".svc.Resp" server_streaming: true`, 1)},
			want:  "svc/svc.proto: rpc svc.Svc.Check: is a streaming RPC; a health RPC must be unary (one request, one response)",
		},
		{
			name:  "missing expected response",
			files: []string{file("", rpc("Check", `request: 'name: "x"'`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.expected_response is missing; give the healthy response in text format of svc.Resp, for example 'status: "OK"'`,
		},
		{
			name:  "expected response names an unknown field",
			files: []string{file("", rpc("Check", `expected_response: 'state: "OK"'`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.expected_response is not valid text format of svc.Resp: proto:`,
		},
		{
			name:  "request of the wrong type",
			files: []string{file("", rpc("Check", `request: 'name: 5' `+ok))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.request is not valid text format of svc.Req: proto:`,
		},
		{
			name:  "empty expected response",
			files: []string{file("", rpc("Check", `expected_response: 'status: ""'`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.expected_response "status: \"\"" serializes to the empty message, which any server may answer; set a field that only a healthy server sends`,
		},
		{
			name:  "unsafe backend name",
			files: []string{file("", rpc("Check", ok+` check: {backend: "a b\nbackend evil"}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: backend name "a b\nbackend evil" is not a safe HAProxy name; use up to 100 letters, digits, '_', '-' and '.', starting with a letter or digit (set check.backend)`,
		},
		{
			name:  "unsafe authority",
			files: []string{file("", rpc("Check", ok+` check: {authority: "a\" #"}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.authority "a\" #" is not a valid :authority; use host or host:port of at most 255 characters, without spaces, quotes or '#'`,
		},
		{
			name:  "unsafe server address",
			files: []string{file("", rpc("Check", ok+` check: {servers: {address: "x:1\" check"}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.servers.address "x:1\" check" is not a host:port HAProxy can resolve; use a DNS name or address with a port, without spaces or quotes`,
		},
		{
			name:  "timing too long",
			files: []string{file("", rpc("Check", ok+` check: {timing: {inter_ms: 4000000000}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.timing.inter_ms 4000000000 is longer than HAProxy's largest time value (2147483647 ms)`,
		},
		{
			name:  "two health RPCs",
			files: []string{file("", rpc("Check", ok), rpc("Check2", ok))},
			want:  `svc/svc.proto: service svc.Svc: has 2 health checks (grpc_health and health_rpc annotations); a service has one, so keep one annotation`,
		},
		{
			name:  "grpc_health and a health RPC",
			files: []string{file(`[haproxycheck.v1.grpc_health] {}`, rpc("Check", ok))},
			want:  `svc/svc.proto: service svc.Svc: has 2 health checks (grpc_health and health_rpc annotations); a service has one, so keep one annotation`,
		},
		{
			name: "backend generated twice",
			files: []string{
				file(`[haproxycheck.v1.grpc_health] {check: {backend: "b"}}`),
				strings.NewReplacer(`"svc/svc.proto"`, `"svc/other.proto"`, `package: "svc"`, `package: "other"`, `".svc.`, `".other.`).
					Replace(file(`[haproxycheck.v1.grpc_health] {check: {backend: "b"}}`)),
			},
			want: `svc/other.proto: service other.Svc: backend "b" is already generated for service svc.Svc in svc/svc.proto; give one of them another name with check.backend`,
		},
		{
			name:  "oversized request",
			files: []string{file("", rpc("Check", fmt.Sprintf(`request: 'name: "%s"' `, strings.Repeat("x", 17000))+ok))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: request message is 17004 bytes; a check sends at most 16379 (one HTTP/2 DATA frame of 16384 bytes before the server's SETTINGS are known)`,
		},
		{
			name:  "oversized expected response",
			files: []string{file("", rpc("Check", fmt.Sprintf(`expected_response: 'status: "%s"'`, strings.Repeat("x", 800))))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.expected_response is 803 bytes serialized; a check matches at most 700, so expect a shorter answer`,
		},
		{
			name:  "path too long",
			files: []string{strings.ReplaceAll(file("", rpc("Check", ok+` check: {backend: "b"}`)), `"Svc"`, `"`+strings.Repeat("S", 510)+`"`)},
			want:  "svc/svc.proto: rpc svc." + strings.Repeat("S", 510) + ".Check: the call's path /svc." + strings.Repeat("S", 510) + "/Check is 521 characters",
		},
		{
			name:  "expected response that does not parse",
			files: []string{file("", rpc("Check", `expected_response: 'status: "OK'`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.expected_response is not valid text format of svc.Resp: proto:`,
		},
		{
			name:  "request that does not parse",
			files: []string{file("", rpc("Check", `request: 'name {' `+ok))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.request is not valid text format of svc.Req: proto:`,
		},
		{
			name:  "not-serving response equal to the expected response",
			files: []string{file("", rpc("Check", ok+` not_serving_response: 'status: "OK"'`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.expected_response holds the not_serving_response, so the check could take a healthy server for one that is not serving; make the two answers differ`,
		},
		{
			name:  "not-serving response of the wrong type",
			files: []string{file("", rpc("Check", ok+` not_serving_response: 'status: 3'`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: health_rpc.not_serving_response is not valid text format of svc.Resp: proto:`,
		},
		{
			name:  "non-ASCII backend name",
			files: []string{file("", rpc("Check", ok+` check: {backend: "café"}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: backend name "café" is not a safe HAProxy name; use up to 100 letters, digits, '_', '-' and '.', starting with a letter or digit (set check.backend)`,
		},
		{
			name:  "backend name with a comment",
			files: []string{file(`[haproxycheck.v1.grpc_health] {check: {backend: "b#x"}}`)},
			want:  `svc/svc.proto: service svc.Svc: backend name "b#x" is not a safe HAProxy name; use up to 100 letters, digits, '_', '-' and '.', starting with a letter or digit (set check.backend)`,
		},
		{
			name:  "resolvers name with white space",
			files: []string{file("", rpc("Check", ok+` check: {servers: {resolvers: "my dns"}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.servers.resolvers "my dns" is not a safe HAProxy name; use letters, digits, '_', '-' and '.'`,
		},
		{
			name:  "too many server slots",
			files: []string{file("", rpc("Check", ok+` check: {servers: {count: 20000}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.servers.count 20000 is more than 10000 server slots`,
		},
		{
			name:  "mode of a newer options file",
			files: []string{file("", rpc("Check", ok+` check: {mode: 7}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.mode 7 is unknown to this protoc-gen-haproxycheck; upgrade the plugin to the version of the options file`,
		},
		{
			name:  "not_serving of a newer options file",
			files: []string{file("", rpc("Check", ok+` check: {not_serving: 9}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.not_serving 9 is unknown to this protoc-gen-haproxycheck; upgrade the plugin to the version of the options file`,
		},
		{
			name:  "fall HAProxy rejects",
			files: []string{file("", rpc("Check", ok+` check: {timing: {fall: 2147483648}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.timing.fall 2147483648 is more than HAProxy takes (2147483647)`,
		},
		{
			name: "services that differ only in case",
			files: []string{
				file(`[haproxycheck.v1.grpc_health] {check: {backend: "a"}}`),
				strings.NewReplacer(`"svc/svc.proto"`, `"svc/other.proto"`, `package: "svc"`, `package: "Svc"`, `".svc.`, `".Svc.`, `example.com/svc`, `example.com/other`).
					Replace(file(`[haproxycheck.v1.grpc_health] {check: {backend: "b"}}`)),
			},
			want: `svc/other.proto: service Svc.Svc: differs from service svc.Svc only in case, so their fragment files would be one file on case-insensitive file systems; rename one of them`,
		},
		{
			name:  "conflicting TLS settings",
			files: []string{file("", rpc("Check", ok+` check: {tls: {ca_file: "/etc/haproxy/ca.pem" insecure_skip_verify: true}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.tls.ca_file and check.tls.insecure_skip_verify conflict; verify with the CA file or skip verification, not both`,
		},
		{
			name:  "TLS server name that is an address",
			files: []string{file("", rpc("Check", ok+` check: {tls: {server_name: "10.0.0.1"}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.tls.server_name "10.0.0.1" is not a DNS name; SNI carries host names only`,
		},
		{
			name:  "CA file with a space",
			files: []string{file("", rpc("Check", ok+` check: {tls: {ca_file: "/etc/my ca.pem"}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.tls.ca_file "/etc/my ca.pem" is not a file name HAProxy can take; use letters, digits and '_', '.', '/', '+', '-'`,
		},
		{
			name:  "upper-case metadata key",
			files: []string{file("", rpc("Check", ok+` check: {metadata: {key: "X-Api-Key" value: "k"}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.metadata key "X-Api-Key" is not a gRPC metadata key; use lower-case letters, digits, '_', '-' and '.'`,
		},
		{
			name:  "reserved metadata key",
			files: []string{file("", rpc("Check", ok+` check: {metadata: {key: "grpc-timeout" value: "1S"}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.metadata key "grpc-timeout" is reserved (gRPC or HTTP/2 sets it); use a key of your own`,
		},
		{
			name:  "binary metadata",
			files: []string{file("", rpc("Check", ok+` check: {metadata: {key: "x-token-bin" value: "AAE="}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.metadata key "x-token-bin" is binary metadata, which a check does not send; use a text key`,
		},
		{
			name:  "metadata value with a newline",
			files: []string{file("", rpc("Check", ok+` check: {metadata: {key: "x-token" value: "a\nb"}}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.metadata value of "x-token" must be printable ASCII, at most 1000 characters`,
		},
		{
			name:  "backend in file defaults",
			files: []string{strings.Replace(file(`[haproxycheck.v1.grpc_health] {}`), `options { go_package: "example.com/svc" }`, `options { go_package: "example.com/svc" [haproxycheck.v1.defaults] {backend: "all"} }`, 1)},
			want:  `svc/svc.proto: option defaults: backend "all" would name every service's backend alike; set check.backend on each service instead`,
		},
		{
			name:  "empty no_check",
			files: []string{file(`[haproxycheck.v1.no_check]: " "`)},
			want:  `svc/svc.proto: service svc.Svc: no_check is empty; say why the service is not health-checked`,
		},
		{
			name:  "no_check on a checked service",
			files: []string{file(`[haproxycheck.v1.no_check]: "internal"`, rpc("Check", ok))},
			want:  `svc/svc.proto: service svc.Svc: has a health check and no_check; keep one of them`,
		},
		{
			name:  "whole server and a service name",
			files: []string{file(`[haproxycheck.v1.grpc_health] {service_name: "svc" check: {whole_server: true}}`)},
			want:  `svc/svc.proto: service svc.Svc: check.whole_server asks about the whole server, service_name "svc" about one service; keep one of them`,
		},
		{
			name:  "whole server on a health RPC",
			files: []string{file("", rpc("Check", ok+` check: {whole_server: true}`))},
			want:  `svc/svc.proto: rpc svc.Svc.Check: check.whole_server applies to grpc_health checks only; remove it`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := build(t, tc.files...)
			if err == nil {
				t.Fatalf("no error; want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error:\n got %s\nwant %s", err, tc.want)
			}
			if files != nil {
				t.Errorf("got %d files with the error; want none", len(files))
			}
		})
	}
}

func TestBuildFileDefaults(t *testing.T) {
	defaults := `[haproxycheck.v1.defaults] {
		authority: "svc.internal:8443"
		tls: {ca_file: "/etc/haproxy/ca.pem"}
		metadata: {key: "x-api-key" value: "k"}
		timing: {inter_ms: 500 fall: 5}
	}`
	own := `[haproxycheck.v1.grpc_health] {check: {
		tls: {insecure_skip_verify: true}
		metadata: {key: "x-caller" value: "haproxy"}
		timing: {fall: 2}
	}}`
	f := strings.Replace(file(own), `options { go_package: "example.com/svc" }`, `options { go_package: "example.com/svc" `+defaults+` }`, 1)
	files, err := build(t, f)
	if err != nil {
		t.Fatal(err)
	}
	c := files[0].Checks[0]
	if c.Call.Authority != "svc.internal:8443" {
		t.Errorf("authority %q, want the default", c.Call.Authority)
	}
	if want := (checkmodel.TLS{ServerName: "svc.internal", InsecureSkipVerify: true}); c.Backend.TLS == nil || *c.Backend.TLS != want {
		t.Errorf("TLS %+v, want the service's own, whole: %+v", c.Backend.TLS, want)
	}
	if want := []wire.Metadata{{Key: "x-api-key", Value: "k"}, {Key: "x-caller", Value: "haproxy"}}; !slices.Equal(c.Call.Metadata, want) {
		t.Errorf("metadata %v, want %v", c.Call.Metadata, want)
	}
	if want := (checkmodel.Timing{InterMS: 500, Rise: 2, Fall: 2}); c.Backend.Timing != want {
		t.Errorf("timing %+v, want %+v", c.Backend.Timing, want)
	}
}

func TestBuildWholeServerFromDefaults(t *testing.T) {
	f := strings.Replace(file(`[haproxycheck.v1.grpc_health] {}`), `options { go_package: "example.com/svc" }`,
		`options { go_package: "example.com/svc" [haproxycheck.v1.defaults] {whole_server: true} }`, 1)
	files, err := build(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if c := files[0].Checks[0]; c.HealthServiceName != "" || len(c.Call.Request.Bytes) != 0 {
		t.Errorf("health service name %q, request %x; want the whole server's, \"\" and the empty message", c.HealthServiceName, c.Call.Request.Bytes)
	}
}

func TestBuildSendsTimeoutAndUserAgent(t *testing.T) {
	f := file("", rpc("Check", `expected_response: 'status: "OK"' check: {timing: {inter_ms: 1500}}`))
	for _, tc := range []struct {
		opts checkmodel.Options
		want []hpack.HeaderField
	}{
		{checkmodel.Options{}, nil},
		{checkmodel.Options{GRPCTimeout: true, UserAgent: "protoc-gen-haproxycheck/v9"},
			[]hpack.HeaderField{{Name: "grpc-timeout", Value: "1500m"}, {Name: "user-agent", Value: "protoc-gen-haproxycheck/v9"}}},
	} {
		files, err := checkmodel.Build(protogentest.Plugin(t, "", f), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		c := files[0].Checks[0]
		fields, err := hpack.NewDecoder(4096, nil).DecodeFull(c.Call.Encoded.Headers[9:]) // past the frame header
		if err != nil {
			t.Fatal(err)
		}
		if got := fields[6:]; !slices.Equal(got, tc.want) {
			t.Errorf("options %+v: headers after te %v, want %v", tc.opts, got, tc.want)
		}
	}
}

// TestBuildNotServing checks what not serving means for each kind of check
// and each value of check.not_serving: grpc.health.v1 and a health RPC with
// a not_serving_response drain by default; NOT_SERVING_DOWN fails instead;
// a health RPC without a not-serving response has nothing to drain on.
func TestBuildNotServing(t *testing.T) {
	ok := `expected_response: 'status: "OK"'`
	for _, tc := range []struct {
		name, file string
		drains     bool
	}{
		{"grpc.health.v1", file(`[haproxycheck.v1.grpc_health] {}`), true},
		{"grpc.health.v1, drain", file(`[haproxycheck.v1.grpc_health] {check: {not_serving: NOT_SERVING_DRAIN}}`), true},
		{"grpc.health.v1, down", file(`[haproxycheck.v1.grpc_health] {check: {not_serving: NOT_SERVING_DOWN}}`), false},
		{"health RPC with a not-serving response", file("", rpc("Check", ok+` not_serving_response: 'status: "DRAINING"'`)), true},
		{"health RPC with a not-serving response, down", file("", rpc("Check", ok+` not_serving_response: 'status: "DRAINING"' check: {not_serving: NOT_SERVING_DOWN}`)), false},
		{"health RPC without a not-serving response", file("", rpc("Check", ok)), false},
	} {
		files, err := build(t, tc.file)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := files[0].Checks[0].Answers.Drains(); got != tc.drains {
			t.Errorf("%s: drains %t, want %t", tc.name, got, tc.drains)
		}
	}
}

// TestDrainTime checks how long a server waits, once it says it is not
// serving, before HAProxy sends it no new connections: one check interval
// and one check timeout when it is drained at its first check; fall checks,
// the later ones fastinter apart, when it is failed.
func TestDrainTime(t *testing.T) {
	for _, tc := range []struct {
		opt  string
		want time.Duration
	}{
		{`check: {}`, 4 * time.Second}, // inter 2s + timeout (inter) 2s
		{`check: {timing: {inter_ms: 1000 timeout_ms: 300}}`, 1300 * time.Millisecond},
		{`check: {not_serving: NOT_SERVING_DOWN}`, 12 * time.Second}, // 4s + 2 × (2s + 2s)
		{`check: {not_serving: NOT_SERVING_DOWN timing: {inter_ms: 1000 fastinter_ms: 100 fall: 3 timeout_ms: 300}}`,
			1300*time.Millisecond + 2*400*time.Millisecond},
	} {
		files, err := build(t, file(`[haproxycheck.v1.grpc_health] {`+tc.opt+`}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.opt, err)
		}
		if got := files[0].Checks[0].DrainTime(); got != tc.want {
			t.Errorf("%s: drain time %v, want %v", tc.opt, got, tc.want)
		}
	}
}

// TestBuildMinHAProxy checks that the oldest HAProxy of the build's
// options reaches every check's backend.
func TestBuildMinHAProxy(t *testing.T) {
	files, err := checkmodel.Build(protogentest.Plugin(t, "", file(`[haproxycheck.v1.grpc_health] {}`)), checkmodel.Options{MinHAProxy: checkmodel.HAProxy32})
	if err != nil {
		t.Fatal(err)
	}
	if got := files[0].Checks[0].Backend.MinHAProxy; got != checkmodel.HAProxy32 || !got.AtLeast(3, 1) || got.AtLeast(3, 3) {
		t.Errorf("oldest HAProxy %v, want 3.2", got)
	}
}

// TestHealthMessagesAsGRPC checks that the grpc.health.v1 messages of a
// check, which the model serializes without gRPC's library, are the bytes
// that grpc-go's generated messages serialize to.
func TestHealthMessagesAsGRPC(t *testing.T) {
	for _, tc := range []struct {
		opt  string
		want proto.Message
	}{
		{`[haproxycheck.v1.grpc_health] {}`, &grpc_health_v1.HealthCheckRequest{Service: "svc.Svc"}},
		{`[haproxycheck.v1.grpc_health] {service_name: ""}`, &grpc_health_v1.HealthCheckRequest{}},
	} {
		files, err := build(t, file(tc.opt))
		if err != nil {
			t.Fatal(err)
		}
		c := files[0].Checks[0]
		for _, m := range []struct {
			got  checkmodel.Message
			want proto.Message
		}{
			{c.Call.Request, tc.want},
			{c.Answers.Healthy, &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}},
			{c.Answers.NotServing, &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_NOT_SERVING}},
		} {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.want)
			if err != nil {
				t.Fatal(err)
			}
			if name := string(m.want.ProtoReflect().Descriptor().FullName()); m.got.Type != name || !bytes.Equal(m.got.Bytes, want) || !bytes.Equal(m.got.GRPC, wire.Message(want)) {
				t.Errorf("%s: %s %x, want %s %x", tc.opt, m.got.Type, m.got.Bytes, name, want)
			}
		}
	}
}
