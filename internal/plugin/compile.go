package plugin

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
)

// CompileFragment returns the fragment that protoc-gen-haproxycheck version
// generates for service (its full name) from set, a FileDescriptorSet
// that holds every file it imports (buf build -o, or protoc
// --include_imports --descriptor_set_out), given the plugin's parameter
// string (the opt of buf.gen.yaml, or protoc's --haproxycheck_opt; empty
// for the defaults). It sends the plugin the request protoc would send to
// generate the file that declares service, so every rule on annotations
// and every parameter applies as in a plugin run; it asks for no Go code,
// which does not change fragments.
func CompileFragment(set *descriptorpb.FileDescriptorSet, service, parameter, version string) ([]byte, error) {
	req := &pluginpb.CodeGeneratorRequest{ProtoFile: set.GetFile()}
	for _, f := range set.GetFile() {
		for _, s := range f.GetService() {
			name := s.GetName()
			if f.GetPackage() != "" {
				name = f.GetPackage() + "." + name
			}
			if name == service {
				req.FileToGenerate = append(req.FileToGenerate, f.GetName())
			}
		}
	}
	if len(req.FileToGenerate) == 0 {
		return nil, fmt.Errorf("no file of the descriptor set declares service %s", service)
	}
	params := []string{"go=false"}
	if parameter != "" {
		params = append([]string{parameter}, params...)
	}
	req.Parameter = proto.String(strings.Join(params, ","))
	resp := Generate(req, version)
	if resp.Error != nil {
		return nil, errors.New(resp.GetError())
	}
	name := fragment.FileName(service)
	for _, f := range resp.GetFile() {
		if path.Base(f.GetName()) == name {
			return []byte(f.GetContent()), nil
		}
	}
	return nil, fmt.Errorf("service %s has no health check annotation (haproxycheck.v1.grpc_health or health_rpc)", service)
}
