// Package protogentest builds protogen plugins from proto files written in
// protobuf text format as FileDescriptorProtos, so that tests of the check
// model and of the renderers run without protoc, and gives the example's
// protos as a descriptor set.
package protogentest

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/servicestatus"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// OptionsFile is the import path of our options.
const OptionsFile = "haproxycheck/v1/haproxycheck.proto"

// Plugin returns a plugin asked to generate files, each a
// FileDescriptorProto in text format; every file may import OptionsFile.
func Plugin(t testing.TB, parameter string, files ...string) *protogen.Plugin {
	t.Helper()
	var fdps []*descriptorpb.FileDescriptorProto
	for _, text := range files {
		fdps = append(fdps, File(t, text))
	}
	return PluginOf(t, parameter, fdps...)
}

// File parses a FileDescriptorProto in text format.
func File(t testing.TB, text string) *descriptorpb.FileDescriptorProto {
	t.Helper()
	fdp := &descriptorpb.FileDescriptorProto{}
	if err := prototext.Unmarshal([]byte(text), fdp); err != nil {
		t.Fatalf("test file descriptor: %v\n%s", err, text)
	}
	return fdp
}

// PluginOf returns a plugin asked to generate files; every file may import
// OptionsFile.
func PluginOf(t testing.TB, parameter string, files ...*descriptorpb.FileDescriptorProto) *protogen.Plugin {
	t.Helper()
	plugin, err := protogen.Options{}.New(Request(t, parameter, files...))
	if err != nil {
		t.Fatal(err)
	}
	return plugin
}

// Request returns the request that asks a plugin, with parameter, to
// generate files; every file may import OptionsFile.
func Request(t testing.TB, parameter string, files ...*descriptorpb.FileDescriptorProto) *pluginpb.CodeGeneratorRequest {
	t.Helper()
	req := &pluginpb.CodeGeneratorRequest{Parameter: &parameter}
	for _, dep := range []string{"google/protobuf/descriptor.proto", OptionsFile} {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(dep)
		if err != nil {
			t.Fatal(err)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(fd))
	}
	for _, fdp := range files {
		req.ProtoFile = append(req.ProtoFile, fdp)
		req.FileToGenerate = append(req.FileToGenerate, fdp.GetName())
	}
	return req
}

// GoldenOptions are the build options of the renderers' golden tests: the
// plugin's defaults, for generator version v0.0.0-test.
var GoldenOptions = checkmodel.Options{UserAgent: "protoc-gen-haproxycheck/v0.0.0-test", GRPCTimeout: true}

// GoldenFiles are the proto files, in text format, whose generated output
// the renderers' golden tests keep: a health RPC with every setting, and
// services checked through grpc.health.v1, under file defaults (TLS,
// metadata), by their own name and as the whole server in mode http.
var GoldenFiles = []string{
	`name: "status/status.proto" package: "acme.status" syntax: "proto3"
dependency: "haproxycheck/v1/haproxycheck.proto"
options { go_package: "example.com/acme/status;status" }
message_type { name: "CheckRequest" field { name: "caller" json_name: "caller" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
message_type { name: "CheckResponse"
  field { name: "state" json_name: "state" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
  field { name: "version" json_name: "version" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL } }
service { name: "Status" method { name: "Check" input_type: ".acme.status.CheckRequest" output_type: ".acme.status.CheckResponse"
  options { [haproxycheck.v1.health_rpc] {
    request: 'caller: "haproxy"'
    expected_response: "state: \"OK\"\nversion: 2"
    not_serving_response: 'state: "DRAINING"'
    check: {
      backend: "acme-status"
      authority: "status.acme.internal:8443"
      servers: {address: "status.acme.internal:8443" count: 4 resolvers: "dns" send_proxy_v2: true}
      timing: {inter_ms: 1000 fastinter_ms: 250 downinter_ms: 5000 rise: 3 fall: 2 timeout_ms: 500}
    }
  } } } }`,
	`name: "greeter/greeter.proto" package: "acme.greeter" syntax: "proto3"
dependency: "haproxycheck/v1/haproxycheck.proto"
options { go_package: "example.com/acme/greeter;greeter"
  [haproxycheck.v1.defaults] {
    authority: "greeter.acme.internal"
    tls: {}
    metadata: {key: "x-api-key" value: "checks-only"}
  } }
message_type { name: "HelloRequest" }
service { name: "Greeter" options { [haproxycheck.v1.grpc_health] {check: {metadata: {key: "x-caller" value: "haproxy"}}} }
  method { name: "SayHello" input_type: ".acme.greeter.HelloRequest" output_type: ".acme.greeter.HelloRequest" } }
service { name: "Farewell" options { [haproxycheck.v1.grpc_health] {service_name: "" check: {
    authority: "10.0.0.1:8443" mode: MODE_HTTP tls: {insecure_skip_verify: true}} } }
  method { name: "SayBye" input_type: ".acme.greeter.HelloRequest" output_type: ".acme.greeter.HelloRequest" } }`,
}

// ExampleSet returns the example's proto files, as compiled into its
// generated Go code, as a descriptor set with their imports, after edit
// has changed the check settings of each service.
func ExampleSet(t testing.TB, edit func(service string, c *haproxycheckv1.Check)) *descriptorpb.FileDescriptorSet {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
	}
	add(helloworld.File_helloworld_greeter_proto)
	add(servicestatus.File_servicestatus_servicestatus_proto)
	if edit == nil {
		return set
	}
	for _, f := range set.File {
		for _, s := range f.Service {
			name := f.GetPackage() + "." + s.GetName()
			if proto.HasExtension(s.GetOptions(), haproxycheckv1.E_GrpcHealth) {
				opt := proto.GetExtension(s.GetOptions(), haproxycheckv1.E_GrpcHealth).(*haproxycheckv1.GrpcHealthCheck)
				opt.Check = editCheck(opt.Check, func(c *haproxycheckv1.Check) { edit(name, c) })
			}
			for _, m := range s.Method {
				if proto.HasExtension(m.GetOptions(), haproxycheckv1.E_HealthRpc) {
					opt := proto.GetExtension(m.GetOptions(), haproxycheckv1.E_HealthRpc).(*haproxycheckv1.HealthRPC)
					opt.Check = editCheck(opt.Check, func(c *haproxycheckv1.Check) { edit(name, c) })
				}
			}
		}
	}
	return set
}

// editCheck returns c, or a new Check when c is nil, after edit.
func editCheck(c *haproxycheckv1.Check, edit func(*haproxycheckv1.Check)) *haproxycheckv1.Check {
	if c == nil {
		c = &haproxycheckv1.Check{}
	}
	edit(c)
	return c
}

// The example's services, one of each kind of check.
const (
	Greeter     = "helloworld.Greeter"        // through grpc.health.v1
	HealthCheck = "servicestatus.HealthCheck" // through its health RPC
)

// Fragment returns the fragment that the plugin generates for service in
// set, with its default parameters.
func Fragment(t testing.TB, set *descriptorpb.FileDescriptorSet, service string) []byte {
	t.Helper()
	text, err := plugin.CompileFragment(set, service, "", version.Version)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// ExampleFragment returns the committed fragment of the example's service.
func ExampleFragment(t testing.TB, service string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "example", "gen", "haproxy", service+".cfg"))
	if err != nil {
		t.Fatal(err)
	}
	return text
}
