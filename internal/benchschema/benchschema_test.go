package benchschema_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/benchschema"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// TestSourceCompilesToFiles compiles Source of a few files with real protoc
// and compares the descriptors with Files: the driver's protoc runs and the
// Go benchmarks measure the same schema.
func TestSourceCompilesToFiles(t *testing.T) {
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	files := benchschema.Files(8)
	names, err := benchschema.WriteSources(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-I", filepath.Join(root, "options"), "-I", dir, "--descriptor_set_out=" + filepath.Join(dir, "set.pb")}, names...)
	testenv.Run(t, dir, time.Minute, protoc, args...)
	raw, err := os.ReadFile(filepath.Join(dir, "set.pb"))
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.GetFile()) != len(files) {
		t.Fatalf("protoc compiled %d files, want %d", len(set.GetFile()), len(files))
	}
	for i, got := range set.GetFile() {
		for _, m := range got.GetMessageType() {
			for _, f := range m.GetField() {
				f.JsonName = nil // protoc derives it; Files leaves it to protogen
			}
		}
		if !proto.Equal(got, files[i]) {
			t.Errorf("protoc compiled %s to\n%v\nwant\n%v\nsource:\n%s", got.GetName(), got, files[i], benchschema.Source(files[i]))
		}
	}
}

// TestSchemaChecks builds the checks of the whole schema: one per service,
// half of each kind.
func TestSchemaChecks(t *testing.T) {
	files := benchschema.Checks(t, benchschema.Files(benchschema.Services))
	kinds := map[checkmodel.Kind]int{}
	for _, f := range files {
		for _, c := range f.Checks {
			kinds[c.Kind]++
		}
	}
	if len(files) != benchschema.Services || kinds[checkmodel.GRPCHealth] != benchschema.Services/2 || kinds[checkmodel.HealthRPC] != benchschema.Services/2 {
		t.Errorf("%d files with checks %v, want %d files, half of each kind", len(files), kinds, benchschema.Services)
	}
}

// BenchmarkPluginNew measures what every protogen plugin does before
// generating anything: decode protoc's request for the whole schema and
// build protogen's view of its files.
func BenchmarkPluginNew(b *testing.B) {
	raw, err := proto.Marshal(benchschema.Request(benchschema.Files(benchschema.Services)))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var req pluginpb.CodeGeneratorRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			b.Fatal(err)
		}
		if _, err := (protogen.Options{}).New(&req); err != nil {
			b.Fatal(err)
		}
	}
}
