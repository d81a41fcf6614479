package gocode_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/gocode"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/golden"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
)

func TestGolden(t *testing.T) {
	plugin := protogentest.Plugin(t, "paths=source_relative", protogentest.GoldenFiles...)
	files, err := checkmodel.Build(plugin, protogentest.GoldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		gocode.Generate(plugin, "v0.0.0-test", f)
	}
	resp := plugin.Response()
	if resp.GetError() != "" {
		t.Fatal(resp.GetError())
	}
	if len(resp.File) != len(files) {
		t.Fatalf("generated %d files for %d proto files", len(resp.File), len(files))
	}
	for _, f := range resp.File {
		if !strings.HasSuffix(f.GetName(), gocode.FileSuffix) {
			t.Errorf("generated %s, want a name ending in %s", f.GetName(), gocode.FileSuffix)
		}
		golden.Check(t, filepath.Join("testdata", strings.ReplaceAll(f.GetName(), "/", "_")+".golden"), []byte(f.GetContent()))
	}
}
