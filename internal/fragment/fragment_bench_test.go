package fragment_test

import (
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/benchschema"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
)

// BenchmarkRender measures rendering the fragments of every service of the
// benchmark schema.
func BenchmarkRender(b *testing.B) {
	files := benchschema.Checks(b, benchschema.Files(benchschema.Services))
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range files {
			for _, c := range f.Checks {
				fragment.Render(f.Source, "v0.0.0-bench", c)
			}
		}
	}
	benchschema.ReportPerService(b)
}
