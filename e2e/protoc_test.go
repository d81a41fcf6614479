package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// TestProtocOutputIsCommitted fails when the example's committed fragments
// or Go code differ from what real protoc generates with this plugin.
func TestProtocOutputIsCommitted(t *testing.T) {
	gen := generateExample(t)
	root := testenv.RepoRoot(t)
	var generated []string
	err := filepath.WalkDir(gen, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(gen, path)
		generated = append(generated, rel)
		got, _ := os.ReadFile(path)
		want, err := os.ReadFile(filepath.Join(root, "example", "gen", rel))
		if err != nil {
			t.Errorf("example/gen/%s is not committed: %v (run scripts/example)", rel, err)
			return nil
		}
		if !bytes.Equal(got, want) {
			t.Errorf("example/gen/%s differs from protoc's output (run scripts/example)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"haproxy/greeter.cfg", "haproxy/servicestatus.cfg", "helloworld/greeter_haproxycheck.pb.go", "servicestatus/servicestatus_haproxycheck.pb.go"}
	if strings.Join(generated, " ") != strings.Join(want, " ") {
		t.Errorf("protoc generated %v, want %v", generated, want)
	}
}

// TestExampleConfigLoads validates the example's main configuration with
// its generated fragments, as the README runs them.
func TestExampleConfigLoads(t *testing.T) {
	haproxy := testenv.Tool(t, "haproxy")
	root := testenv.RepoRoot(t)
	t.Setenv("SERVICESTATUS_SERVERS", "status.example.internal:50051")
	t.Setenv("GREETER_SERVERS", "greeter.example.internal:50051")
	out, err := testenv.RunErr(root, time.Minute, haproxy, "-c", "-f", "example/haproxy/haproxy.cfg", "-f", "example/gen/haproxy/")
	if err != nil || !strings.Contains(string(out), "Configuration file is valid") {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
}

// TestProtocReportsErrors runs the plugin through real protoc on bad input:
// protoc fails with the plugin's message, naming file, line and element,
// and writes nothing.
func TestProtocReportsErrors(t *testing.T) {
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	plugin := testenv.BuildPlugin(t)
	src := t.TempDir()
	bad := `syntax = "proto3";
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
	if err := os.WriteFile(filepath.Join(src, "bad.proto"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, param, want string
	}{
		{"streaming RPC", "paths=source_relative", "bad.proto:8:3: rpc bad.Bad.Watch: is a streaming RPC; a health RPC must be unary"},
		{"unknown parameter", "paths=source_relative,colour=blue", `unknown parameter "colour": protoc-gen-haproxycheck takes only paths, module and M parameters`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
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
