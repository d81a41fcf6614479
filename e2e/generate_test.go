package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// The pinned tools, as buf.gen.yaml runs them.
const (
	toolsModfile    = "tools/go.mod"
	bufModfile      = "tools/buf/go.mod"
	protocGenGo     = "google.golang.org/protobuf/cmd/protoc-gen-go"
	protocGenGoGRPC = "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	bufCommand      = "github.com/bufbuild/buf/cmd/buf"
)

// exampleGenModule is the Go import path of the example's generated code.
const exampleGenModule = "github.com/haproxycheck/protoc-gen-haproxycheck/example/gen"

// protocVersionLine matches the line of protoc-gen-go's and
// protoc-gen-go-grpc's header that names the compiler's version: protoc
// names its own, buf names none ("(unknown)").
var protocVersionLine = regexp.MustCompile(`(?m)^(//[ \t]+-?[ \t]*protoc[ \t]+)\S+$`)

// withoutProtocVersion returns generated Go code with the compiler version
// in its header replaced by buf's "(unknown)".
func withoutProtocVersion(b []byte) []byte {
	return protocVersionLine.ReplaceAll(b, []byte("${1}(unknown)"))
}

// TestProtocOutputIsCommitted fails when the committed example/gen differs
// from what real protoc generates with protoc-gen-go, protoc-gen-go-grpc
// and this plugin, given paths=source_relative or module=, apart from the
// compiler version that protoc-gen-go writes in its header.
func TestProtocOutputIsCommitted(t *testing.T) {
	plugins := map[string]string{
		"go":           testenv.BuildTool(t, toolsModfile, protocGenGo),
		"go-grpc":      testenv.BuildTool(t, toolsModfile, protocGenGoGRPC),
		"haproxycheck": testenv.BuildPlugin(t),
	}
	want := filepath.Join(testenv.RepoRoot(t), "example", "gen")
	for _, param := range []string{"paths=source_relative", "module=" + exampleGenModule} {
		t.Run(param, func(t *testing.T) {
			got := protocExample(t, param, plugins)
			assertSameTree(t, got, want, withoutProtocVersion)
		})
	}
}

// TestOptionsGoCodeIsCommitted fails when the options' committed Go code
// differs from what protoc-gen-go generates from the options proto.
func TestOptionsGoCodeIsCommitted(t *testing.T) {
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)
	out := t.TempDir()
	testenv.Run(t, root, time.Minute, protoc, "-I", "options",
		"--plugin=protoc-gen-go="+testenv.BuildTool(t, toolsModfile, protocGenGo),
		"--go_out="+out, "--go_opt=module=github.com/haproxycheck/protoc-gen-haproxycheck",
		"options/haproxycheck/v1/haproxycheck.proto")
	const file = "options/haproxycheck/v1/haproxycheck.pb.go"
	got, err := os.ReadFile(filepath.Join(out, file))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(withoutProtocVersion(got), withoutProtocVersion(want)) {
		t.Errorf("%s differs from protoc-gen-go's output; regenerate it:\n"+
			"protoc -I options --go_out=. --go_opt=module=github.com/haproxycheck/protoc-gen-haproxycheck %s", file, strings.TrimSuffix(file, ".pb.go")+".proto")
	}
}

// TestBufOutputIsCommitted fails when the committed example/gen differs in
// any byte from what real buf generates with the repository's buf.gen.yaml.
func TestBufOutputIsCommitted(t *testing.T) {
	root := testenv.RepoRoot(t)
	buf := testenv.BuildTool(t, bufModfile, bufCommand)
	out := t.TempDir()
	testenv.Run(t, root, 10*time.Minute, buf, "generate", "--output", out)
	assertSameTree(t, filepath.Join(out, "example", "gen"), filepath.Join(root, "example", "gen"), nil)
}

// TestBufLintAndBreaking runs buf lint on the workspace, and buf breaking on
// the options module against the previous commit: a change to the options
// that would break the repositories depending on them fails.
func TestBufLintAndBreaking(t *testing.T) {
	root := testenv.RepoRoot(t)
	buf := testenv.BuildTool(t, bufModfile, bufCommand)
	testenv.Run(t, root, 5*time.Minute, buf, "lint")

	against := ".git#ref=HEAD~1,subdir=options"
	if err := exec.Command("git", "-C", root, "rev-parse", "--verify", "--quiet", "HEAD~1").Run(); err != nil {
		t.Fatalf("the previous commit is not in this clone (%v): buf breaking needs it; clone without --depth 1", err)
	}
	testenv.Run(t, root, 5*time.Minute, buf, "breaking", "options", "--against", against)
}

// assertSameTree fails the test for every file that is in one of the
// directories got and want and not in the other, or that differs, after
// normalize (if not nil) is applied to both.
func assertSameTree(t *testing.T, got, want string, normalize func([]byte) []byte) {
	t.Helper()
	gotFiles, wantFiles := readTree(t, got), readTree(t, want)
	for name, g := range gotFiles {
		w, ok := wantFiles[name]
		switch {
		case !ok:
			t.Errorf("%s is generated but not committed (run scripts/example)", name)
		case normalize != nil && !bytes.Equal(normalize(g), normalize(w)), normalize == nil && !bytes.Equal(g, w):
			t.Errorf("%s differs from the committed file (run scripts/example)", name)
		}
	}
	for name := range wantFiles {
		if _, ok := gotFiles[name]; !ok {
			t.Errorf("%s is committed but no longer generated (remove it)", name)
		}
	}
}

// readTree returns the contents of every file below dir, by slash-separated
// path relative to dir.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
