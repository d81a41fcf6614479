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
// It takes protogen's parameters (paths, module, M...) and its own, which
// plugin.Parameters lists (and the README, and --help).
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
)

// usage returns the help text.
func usage() string {
	var params strings.Builder
	for _, p := range plugin.Parameters {
		fmt.Fprintf(&params, "  %s=%s (default %s)\n", p.Name, p.Values, p.Default)
	}
	return `protoc-gen-haproxycheck is a protoc and buf plugin; run it through them:

  protoc --plugin=protoc-gen-haproxycheck --haproxycheck_out=OUT file.proto
  buf generate   (with a local plugin entry in buf.gen.yaml)

Parameters: paths, module and M as protoc-gen-go takes them, and
` + params.String() + `Flags: --version prints the version, --help this text.
`
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "--version":
			fmt.Println("protoc-gen-haproxycheck", version.Version)
		case "--help", "-h":
			fmt.Print(usage())
		default:
			fmt.Fprint(os.Stderr, usage())
			os.Exit(2)
		}
		return
	}
	if err := plugin.Run(os.Stdin, os.Stdout, version.Version); err != nil {
		fmt.Fprintln(os.Stderr, "protoc-gen-haproxycheck:", err)
		os.Exit(1)
	}
}
