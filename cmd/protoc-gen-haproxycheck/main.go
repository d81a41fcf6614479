// Command protoc-gen-haproxycheck is a protoc and buf plugin that generates
// HAProxy health checks for gRPC services from their proto files.
//
// For every service annotated with the options of haproxycheck.v1, it writes
// an HAProxy configuration fragment, haproxy/<package>.<Service>.cfg, whose tcp-check
// rules send one complete HTTP/2 gRPC call and accept exactly the healthy
// answer; and, beside protoc-gen-go's output, <file>_haproxycheck.pb.go with
// the Go code that gives that answer.
//
//	protoc --plugin=protoc-gen-haproxycheck --haproxycheck_out=gen greeter.proto
//
// It takes protogen's parameters (paths, module, M...) and no others.
package main

import (
	"fmt"
	"os"
	"path"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/gocode"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
)

// fragmentDir is the directory, below the output directory, that holds the
// HAProxy fragments.
const fragmentDir = "haproxy"

// The editions the plugin takes, the same range as the protoc-gen-go it is
// built with: proto2, proto3 and Editions 2023 and 2024.
const (
	firstEdition = descriptorpb.Edition_EDITION_PROTO2
	lastEdition  = descriptorpb.Edition_EDITION_2024
)

const usage = `protoc-gen-haproxycheck is a protoc and buf plugin; run it through them:

  protoc --plugin=protoc-gen-haproxycheck --haproxycheck_out=OUT file.proto
  buf generate   (with a local plugin entry in buf.gen.yaml)

Flags: --version prints the version, --help this text.
`

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "--version":
			fmt.Println("protoc-gen-haproxycheck", version.Version)
		case "--help", "-h":
			fmt.Print(usage)
		default:
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		return
	}
	protogen.Options{ParamFunc: unknownParameter}.Run(generate)
}

// unknownParameter rejects parameters that protogen does not take itself.
func unknownParameter(name, value string) error {
	return fmt.Errorf("unknown parameter %q: protoc-gen-haproxycheck takes only paths, module and M parameters", name)
}

// generate writes every fragment and Go file, or nothing if any annotation
// is invalid.
func generate(plugin *protogen.Plugin) error {
	plugin.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL |
		pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)
	plugin.SupportedEditionsMinimum = firstEdition
	plugin.SupportedEditionsMaximum = lastEdition
	files, err := checkmodel.Build(plugin)
	if err != nil {
		return err
	}
	for _, f := range files {
		for _, c := range f.Checks {
			g := plugin.NewGeneratedFile(fragmentPath(plugin, fragment.FileName(c)), "")
			if _, err := g.Write(fragment.Render(f.Source, version.Version, c)); err != nil {
				return err
			}
		}
		gocode.Generate(plugin, version.Version, f)
	}
	return nil
}

// fragmentPath returns the path of a fragment file. With the module=
// parameter, protogen strips the module from every generated path, so the
// fragment's path starts with it too.
func fragmentPath(plugin *protogen.Plugin, name string) string {
	for _, p := range strings.Split(plugin.Request.GetParameter(), ",") {
		if module, ok := strings.CutPrefix(p, "module="); ok {
			return path.Join(module, fragmentDir, name)
		}
	}
	return path.Join(fragmentDir, name)
}
