package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// TestAnotherRepository plays a repository of its own that uses the
// plugin: testdata/otherrepo vendors the options module with buf export,
// and buf generate runs protoc-gen-go, protoc-gen-go-grpc and the plugin
// from PATH, once per directory, on an Editions 2023 file and a proto3
// file; the plugin run once for all files gives the same bytes. Its
// fragments must load in HAProxy, and its Go code must build
// against this module and pass the repository's own test of the generated
// responder.
func TestAnotherRepository(t *testing.T) {
	root := testenv.RepoRoot(t)
	buf := testenv.BuildTool(t, bufModfile, bufCommand)
	bin := t.TempDir()
	for name, path := range map[string]string{
		"protoc-gen-go":           testenv.BuildTool(t, toolsModfile, protocGenGo),
		"protoc-gen-go-grpc":      testenv.BuildTool(t, toolsModfile, protocGenGoGRPC),
		"protoc-gen-haproxycheck": testenv.BuildPlugin(t),
	} {
		if err := os.Symlink(path, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	repo := t.TempDir()
	if err := os.CopyFS(repo, os.DirFS(filepath.Join(root, "testdata", "otherrepo"))); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, root, time.Minute, buf, "export", "options", "--output", filepath.Join(repo, "third_party", "haproxycheck"))
	testenv.Run(t, repo, time.Minute, buf, "lint")
	testenv.Run(t, repo, 5*time.Minute, buf, "generate")

	gen := filepath.Join(repo, "gen")
	var files []string
	for name := range readTree(t, gen) {
		if !strings.HasSuffix(name, "_test.go") {
			files = append(files, name)
		}
	}
	slices.Sort(files)
	want := []string{
		"acme/ledger/v1/ledger.pb.go",
		"acme/ledger/v1/ledger_grpc.pb.go",
		"acme/ledger/v1/ledger_haproxycheck.pb.go",
		"acme/payments/v1/payments.pb.go",
		"acme/payments/v1/payments_grpc.pb.go",
		"acme/payments/v1/payments_haproxycheck.pb.go",
		"haproxy/acme.ledger.v1.LedgerService.cfg",
		"haproxy/acme.payments.v1.PaymentService.cfg",
	}
	if !slices.Equal(files, want) {
		t.Errorf("buf generated\n%q\nwant\n%q", files, want)
	}

	// The plugin run once for all files writes the same bytes as once per
	// directory.
	all := "version: v2\nplugins:\n  - local: protoc-gen-haproxycheck\n    out: gen-all\n    opt: paths=source_relative\n    strategy: all\ninputs:\n  - directory: proto\n"
	if err := os.WriteFile(filepath.Join(repo, "buf.gen.all.yaml"), []byte(all), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, repo, 5*time.Minute, buf, "generate", "--template", "buf.gen.all.yaml")
	perDirectory := readTree(t, gen)
	for name, content := range readTree(t, filepath.Join(repo, "gen-all")) {
		if !bytes.Equal(perDirectory[name], content) {
			t.Errorf("%s differs between strategy all and strategy directory", name)
		}
	}

	haproxytest.Validate(t, []string{"PAYMENTS_SERVERS=payments.acme.internal:50051", "LEDGER_SERVERS=ledger.acme.internal:50051"},
		filepath.Join(gen, "haproxy"))

	// The go directive of this module: without one, go mod tidy takes the
	// module for a Go 1.16 one, loads the whole unpruned module graph and
	// downloads hundreds of megabytes (7 minutes on a new machine).
	ourMod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go [0-9.]+$`).Find(ourMod)
	goMod := "module example.com/acme/gen\n\n" + string(goLine) + "\n\nrequire github.com/haproxycheck/protoc-gen-haproxycheck v0.0.0\n\n" +
		"replace github.com/haproxycheck/protoc-gen-haproxycheck => " + root + "\n"
	if err := os.WriteFile(filepath.Join(gen, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Run(t, gen, 5*time.Minute, "go", "mod", "tidy")
	testenv.Run(t, gen, 5*time.Minute, "go", "vet", "./...")
	testenv.Run(t, gen, 5*time.Minute, "go", "test", "-count=1", "./...")
}
