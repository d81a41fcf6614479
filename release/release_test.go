package release

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
)

// The release of linux/amd64 that the test builds, named as scripts/release
// names it.
var (
	ver     = strings.TrimPrefix(version.Version, "v")
	archive = "protoc-gen-haproxycheck_" + ver + "_linux_amd64.tar.gz"
	deb     = "protoc-gen-haproxycheck_" + ver + "-1_amd64.deb"
	rpm     = "protoc-gen-haproxycheck-" + ver + "-1.x86_64.rpm"
)

// commands are the release's commands, as installed in /usr/bin.
var commands = []string{"protoc-gen-haproxycheck", "haproxycheck-probe"}

// buildTimeout bounds one run of scripts/release for one target; a first
// run on a machine with an empty build cache also builds nfpm.
const buildTimeout = 10 * time.Minute

// TestReleaseIsReproducible builds the release of HEAD for linux/amd64
// twice, each from its own extracted copy of the tree, and requires the two
// checksum files to be the same bytes and true of the artifacts beside
// them; a path, a time or a build ID that varied would change a sum. It
// then installs the .deb into a temporary root and runs the installed
// plugin under real protoc, with the options proto the package installs,
// on the example's protos as committed, and requires the committed
// fragments byte for byte.
func TestReleaseIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release twice")
	}
	bash := testenv.Tool(t, "bash")
	git := testenv.Tool(t, "git")
	testenv.Tool(t, "sha256sum")
	dpkgDeb := testenv.Tool(t, "dpkg-deb")
	protoc := testenv.Tool(t, "protoc")
	root := testenv.RepoRoot(t)

	// The commit, resolved once: HEAD may move while the test runs.
	commit := strings.TrimSpace(string(testenv.Run(t, root, time.Minute, git, "rev-parse", "--verify", "HEAD^{commit}")))
	var sums [2][]byte
	var dirs [2]string
	for i := range dirs {
		dirs[i] = t.TempDir()
		start := time.Now()
		testenv.Run(t, root, buildTimeout, bash, "scripts/release",
			"--targets", "linux/amd64", "--rev", commit, version.Version, dirs[i])
		t.Logf("release %d of linux/amd64 built in %v", i+1, time.Since(start).Round(time.Second))
		sums[i] = checkSums(t, dirs[i], []string{archive, deb, rpm})
	}
	if !bytes.Equal(sums[0], sums[1]) {
		t.Fatalf("two builds of the same revision differ:\n%s\n%s", sums[0], sums[1])
	}

	out := testenv.Run(t, root, time.Minute, git, "log", "-1", "--format=%ct", commit)
	commitTime, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("commit time %q: %v", out, err)
	}
	checkArchive(t, filepath.Join(dirs[0], archive), commitTime)

	inst := t.TempDir()
	testenv.Run(t, root, time.Minute, dpkgDeb, "-x", filepath.Join(dirs[0], deb), inst)
	for _, name := range commands {
		bin := filepath.Join(inst, "usr", "bin", name)
		checkStaticBinary(t, bin, root)
		got := string(testenv.Run(t, root, time.Minute, bin, "--version"))
		if want := name + " " + version.Version + "\n"; got != want {
			t.Errorf("installed %s --version = %q, want %q", name, got, want)
		}
	}

	// The example's protos and fragments as committed, like the plugin.
	tree := t.TempDir()
	untar(t, testenv.Run(t, root, time.Minute, git, "archive", "--format=tar", commit, "example/proto", "example/gen/haproxy"), tree)
	gen := t.TempDir()
	testenv.Run(t, tree, time.Minute, protoc,
		"-I", filepath.Join(inst, "usr", "include"), "-I", "example/proto",
		"--plugin=protoc-gen-haproxycheck="+filepath.Join(inst, "usr", "bin", "protoc-gen-haproxycheck"),
		"--haproxycheck_out="+gen, "--haproxycheck_opt=paths=source_relative",
		"example/proto/helloworld/greeter.proto", "example/proto/servicestatus/servicestatus.proto")
	want := fragments(t, filepath.Join(tree, "example", "gen", "haproxy"))
	got := fragments(t, filepath.Join(gen, "haproxy"))
	if len(want) == 0 {
		t.Fatal("example/gen/haproxy has no fragments")
	}
	for name, w := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("the installed plugin wrote no haproxy/%s", name)
		} else if !bytes.Equal(g, w) {
			t.Errorf("haproxy/%s from the installed plugin differs from example/gen:\n%s", name, g)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("the installed plugin wrote haproxy/%s, which example/gen lacks", name)
		}
	}
}

// TestReleaseRefusesAnotherVersion requires scripts/release to refuse a
// version other than internal/version.Version, which the binaries report
// and every generated file names.
func TestReleaseRefusesAnotherVersion(t *testing.T) {
	bash := testenv.Tool(t, "bash")
	testenv.Tool(t, "git")
	dir := t.TempDir()
	out, err := testenv.RunErr(testenv.RepoRoot(t), time.Minute, bash, "scripts/release",
		"--targets", "linux/amd64", "--rev", "HEAD", "v999.0.0", dir)
	if err == nil {
		t.Fatalf("scripts/release built v999.0.0 from a tree whose version is %s:\n%s", version.Version, out)
	}
	if want := `internal/version.Version is "` + version.Version + `"`; !bytes.Contains(out, []byte(want)) {
		t.Errorf("scripts/release failed without saying %s:\n%s", want, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("scripts/release left %d files after refusing", len(entries))
	}
}

// checkSums requires dir to hold exactly the artifacts and SHA256SUMS,
// which lists each with its SHA-256 as sha256sum does, and returns
// SHA256SUMS.
func checkSums(t *testing.T, dir string, artifacts []string) []byte {
	t.Helper()
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS: bad line %q", sc.Text())
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: %s has SHA-256 %x, not %s", name, h, sum)
		}
		listed = append(listed, name)
	}
	slices.Sort(artifacts)
	if !slices.Equal(listed, artifacts) {
		t.Errorf("SHA256SUMS lists %q, want %q", listed, artifacts)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(artifacts)+1 {
		t.Errorf("%s holds %d files, want the %d artifacts and SHA256SUMS", dir, len(entries), len(artifacts))
	}
	return sums
}

// checkArchive requires the release archive to hold both commands, the
// README and the options proto, owned by root, with fixed modes and the
// commit's time.
func checkArchive(t *testing.T, path string, mtime int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	top := strings.TrimSuffix(filepath.Base(path), ".tar.gz") + "/"
	want := map[string]int64{
		top: 0o755, top + "README.md": 0o644,
		top + "include/": 0o755, top + "include/haproxycheck/": 0o755, top + "include/haproxycheck/v1/": 0o755,
		top + "include/haproxycheck/v1/haproxycheck.proto": 0o644,
	}
	for _, name := range commands {
		want[top+name] = 0o755
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		mode, ok := want[hdr.Name]
		if !ok {
			t.Errorf("%s: unexpected entry %s", path, hdr.Name)
			continue
		}
		delete(want, hdr.Name)
		if hdr.Mode != mode || hdr.Uid != 0 || hdr.Gid != 0 || hdr.ModTime.Unix() != mtime {
			t.Errorf("%s: %s has mode %o, owner %d:%d, time %d; want %o, 0:0, %d (the commit's)",
				path, hdr.Name, hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime.Unix(), mode, mtime)
		}
	}
	for name := range want {
		t.Errorf("%s: no %s", path, name)
	}
}

// checkStaticBinary requires the installed binary to be an executable
// linked statically (no interpreter, no shared libraries), that names no
// directory of the machine that built it.
func checkStaticBinary(t *testing.T, bin, root string) {
	t.Helper()
	info, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o755 {
		t.Errorf("%s: mode %o, want 755", bin, info.Mode().Perm())
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (%v)", bin, p.Type)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	// Without -trimpath, the paths of the sources in GOROOT, the module
	// cache and the tree would be in the binary.
	dirs := strings.Fields(string(testenv.Run(t, root, time.Minute, "go", "env", "GOROOT", "GOMODCACHE")))
	for _, dir := range append(dirs, root) {
		if bytes.Contains(data, []byte(dir+"/")) {
			t.Errorf("%s names the build machine's directory %s", bin, dir)
		}
	}
}

// untar writes the files of the tar archive data into dir.
func untar(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fragments returns the contents of the .cfg files in dir by name.
func fragments(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string][]byte, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = data
	}
	return m
}
