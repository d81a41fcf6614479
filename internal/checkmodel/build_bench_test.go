package checkmodel_test

import (
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/benchschema"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
)

// BenchmarkBuild measures building the checks of the benchmark schema's
// services from protogen's view of protoc's request, as the plugin does
// once per run.
func BenchmarkBuild(b *testing.B) {
	gen, err := benchschema.Plugin(benchschema.Files(benchschema.Services))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := checkmodel.Build(gen, plugin.DefaultParams.BuildOptions(version.Version)); err != nil {
			b.Fatal(err)
		}
	}
	benchschema.ReportPerService(b)
}
