package plugin_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// TestCompileFragmentLikeThePlugin checks that the fragments compiled from
// a descriptor set that real protoc writes for the example's protos are
// the ones the plugin generated for them (example/gen/haproxy).
func TestCompileFragmentLikeThePlugin(t *testing.T) {
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	out := filepath.Join(t.TempDir(), "example.binpb")
	testenv.Run(t, filepath.Join(root, "example", "proto"), time.Minute, protoc,
		"-I", filepath.Join(root, "options"), "-I", ".", "--include_imports", "--include_source_info", "--descriptor_set_out="+out,
		"servicestatus/servicestatus.proto", "helloworld/greeter.proto")
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(raw, set); err != nil {
		t.Fatal(err)
	}
	for _, service := range []string{greeter, healthCheck} {
		if got, want := string(protogentest.Fragment(t, set, service)), string(protogentest.ExampleFragment(t, service)); got != want {
			t.Errorf("%s: compiled fragment differs from the plugin's:\n%s\nwant:\n%s", service, got, want)
		}
	}
}

// TestCompileFragmentErrors checks that a file without go_package
// compiles, that the plugin's rules on annotations apply, and that an
// unknown service, or one without a check, is named.
func TestCompileFragmentErrors(t *testing.T) {
	set := protogentest.ExampleSet(t, nil)
	for _, f := range set.File {
		if f.GetName() == "helloworld/greeter.proto" {
			f.Options.GoPackage = nil // as buf builds it outside managed mode
		}
	}
	if _, err := plugin.CompileFragment(set, greeter, "", version.Version); err != nil {
		t.Errorf("a file without go_package: %v", err)
	}
	if _, err := plugin.CompileFragment(set, "helloworld.Nope", "", version.Version); err == nil || !strings.Contains(err.Error(), "declares service helloworld.Nope") {
		t.Errorf("unknown service: %v", err)
	}
	unannotated := protogentest.ExampleSet(t, nil)
	for _, f := range unannotated.File {
		for _, svc := range f.Service {
			if svc.Options != nil {
				proto.ClearExtension(svc.Options, haproxycheckv1.E_GrpcHealth)
			}
		}
	}
	if _, err := plugin.CompileFragment(unannotated, greeter, "", version.Version); err == nil || !strings.Contains(err.Error(), "has no health check annotation") {
		t.Errorf("service without a check: %v", err)
	}
	bad := protogentest.ExampleSet(t, func(_ string, c *haproxycheckv1.Check) { c.Backend = "bad name" })
	if _, err := plugin.CompileFragment(bad, greeter, "", version.Version); err == nil || !strings.Contains(err.Error(), "is not a safe HAProxy name") {
		t.Errorf("bad backend name: %v", err)
	}
}

// The example's services, one of each kind of check.
const (
	greeter     = protogentest.Greeter     // through grpc.health.v1
	healthCheck = protogentest.HealthCheck // through its health RPC
)
