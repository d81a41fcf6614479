package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// TestExampleConfigLoads validates the example's main configuration with
// its generated fragments, as the README runs them. HAProxy accepts them
// when haproxy -c exits 0 without a WARNING or ALERT line, as
// haproxytest.Validate judges (which would load its own main configuration
// first); 3.2, unlike 2.6, no longer prints "Configuration file is valid".
func TestExampleConfigLoads(t *testing.T) {
	haproxy := testenv.Tool(t, "haproxy")
	root := testenv.RepoRoot(t)
	t.Setenv("SERVICESTATUS_SERVERS", "status.example.internal:50051")
	t.Setenv("GREETER_SERVERS", "greeter.example.internal:50051")
	out, err := testenv.RunErr(root, time.Minute, haproxy, "-c", "-f", "example/haproxy/haproxy.cfg", "-f", "example/gen/haproxy/")
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "WARNING") || strings.Contains(line, "ALERT") {
			t.Errorf("haproxy -c: %s", line)
		}
	}
}

// TestProtocReportsErrors runs the plugin through real protoc on bad input:
// protoc fails with the plugin's message, naming file, line and element,
// and writes nothing.
func TestProtocReportsErrors(t *testing.T) {
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	plugin := testenv.BuildPlugin(t)
	const streaming = `syntax = "proto3";
package bad;
import "haproxycheck/v1/haproxycheck.proto";
option go_package = "example.com/bad";
message Req {}
message Resp { string status = 1; }
service Bad {
  rpc Watch(Req) returns (stream Resp) {
    option (haproxycheck.v1.health_rpc) = {expected_response: 'status: "OK"'};
  }
}
`
	for _, tc := range []struct {
		name, proto, param, want string
	}{
		{"streaming RPC", streaming, "paths=source_relative", "bad.proto:8:3: rpc bad.Bad.Watch: is a streaming RPC; a health RPC must be unary"},
		{"unknown parameter", streaming, "paths=source_relative,colour=blue", `unknown parameter "colour": protoc-gen-haproxycheck takes protogen's paths`},
		{"no Go package for go=true", strings.Replace(strings.Replace(streaming, `option go_package = "example.com/bad";`, "", 1), "stream Resp", "Resp", 1),
			"paths=source_relative,go=true", `bad.proto: has no Go package for the Go code go=true asks for`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, out := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(src, "bad.proto"), []byte(tc.proto), 0o644); err != nil {
				t.Fatal(err)
			}
			stderr, err := testenv.RunErr(src, time.Minute, protoc,
				"-I", filepath.Join(root, "options"), "-I", src,
				"--plugin=protoc-gen-haproxycheck="+plugin,
				"--haproxycheck_out="+out, "--haproxycheck_opt="+tc.param, "bad.proto")
			if err == nil {
				t.Fatalf("protoc succeeded; want it to fail with %q", tc.want)
			}
			if !strings.Contains(string(stderr), tc.want) {
				t.Errorf("protoc said:\n%s\nwant it to contain %q", stderr, tc.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("protoc wrote %d entries despite the error", len(entries))
			}
		})
	}
}

// TestPluginVersion checks that the plugin answers --version by itself.
func TestPluginVersion(t *testing.T) {
	out := testenv.Run(t, t.TempDir(), time.Minute, testenv.BuildPlugin(t), "--version")
	if !strings.HasPrefix(string(out), "protoc-gen-haproxycheck v") {
		t.Errorf("--version printed %q", out)
	}
}

// TestProtocMParameter gives a file without go_package its Go package with
// protogen's M parameter, as Bazel and other build systems do.
func TestProtocMParameter(t *testing.T) {
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	src, out := t.TempDir(), t.TempDir()
	proto := `syntax = "proto3";
package nogo;
import "haproxycheck/v1/haproxycheck.proto";
message Req {}
message Resp { string status = 1; }
service Status {
  rpc Check(Req) returns (Resp) {
    option (haproxycheck.v1.health_rpc) = {expected_response: 'status: "OK"'};
  }
}
`
	if err := os.WriteFile(filepath.Join(src, "nogo.proto"), []byte(proto), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, src, time.Minute, protoc, "-I", filepath.Join(root, "options"), "-I", src,
		"--plugin=protoc-gen-haproxycheck="+testenv.BuildPlugin(t),
		"--haproxycheck_out="+out, "--haproxycheck_opt=paths=source_relative,Mnogo.proto=example.com/gen/nogo;nogopb", "nogo.proto")
	code, err := os.ReadFile(filepath.Join(out, "nogo_haproxycheck.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(code), "\npackage nogopb\n") {
		t.Errorf("nogo_haproxycheck.pb.go is not in package nogopb:\n%s", code)
	}
	if _, err := os.Stat(filepath.Join(out, "haproxy", "nogo.Status.cfg")); err != nil {
		t.Errorf("no fragment: %v", err)
	}
}

// TestPluginDeclaresFeatures checks what the plugin tells protoc and buf it
// supports: proto3 optional, and Editions from proto2 to 2024.
func TestPluginDeclaresFeatures(t *testing.T) {
	req, err := proto.Marshal(&pluginpb.CodeGeneratorRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.BuildPlugin(t))
	cmd.Stdin = bytes.NewReader(req)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var resp pluginpb.CodeGeneratorResponse
	if err := proto.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	wantFeatures := uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL | pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)
	if resp.GetSupportedFeatures() != wantFeatures || resp.GetError() != "" {
		t.Errorf("supported features %b, error %q; want %b and no error", resp.GetSupportedFeatures(), resp.GetError(), wantFeatures)
	}
	if first, last := descriptorpb.Edition(resp.GetMinimumEdition()), descriptorpb.Edition(resp.GetMaximumEdition()); first != descriptorpb.Edition_EDITION_PROTO2 || last != descriptorpb.Edition_EDITION_2024 {
		t.Errorf("editions %v to %v, want EDITION_PROTO2 to EDITION_2024", first, last)
	}
}
