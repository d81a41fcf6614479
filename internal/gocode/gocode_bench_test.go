package gocode_test

import (
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/benchschema"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/gocode"
)

// BenchmarkGenerate measures generating the Go code of every file of the
// benchmark schema, up to protogen's response, which formats every
// generated file with go/printer. Each iteration generates into a new
// plugin, made outside the timer.
func BenchmarkGenerate(b *testing.B) {
	schema := benchschema.Files(benchschema.Services)
	files := benchschema.Checks(b, schema)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		plugin, err := benchschema.Plugin(schema)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, f := range files {
			gocode.Generate(plugin, "v0.0.0-bench", f)
		}
		if resp := plugin.Response(); resp.GetError() != "" {
			b.Fatal(resp.GetError())
		}
	}
	benchschema.ReportPerService(b)
}
