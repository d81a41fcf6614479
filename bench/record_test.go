package bench

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// binaries are the programs the driver builds from this checkout.
type binaries struct {
	// plugin is protoc-gen-haproxycheck.
	plugin string
	// protocGenGo is protoc-gen-go, at the version pinned in tools/go.mod.
	protocGenGo string
	// exampleServer is the example's grpc-go server.
	exampleServer string
	// options is the directory protoc imports our options from.
	options string
}

// TestRecord is the benchmark driver: it measures everything the results
// file reports and writes it to the file given with -record.
func TestRecord(t *testing.T) {
	if *recordTo == "" {
		t.Skip("the benchmark driver runs only with -record FILE; scripts/bench runs it")
	}
	protoc := requireTool(t, "protoc")
	haproxy := requireTool(t, "haproxy")
	bins := build(t)

	var r report
	machine(t, &r, protoc, haproxy, bins)
	plugin, request, schema := measurePlugins(t, &r, protoc, bins)
	measureStages(t, &r, bins.plugin, request, plugin.Wall)
	examples := generateExample(t, protoc, bins)
	i := slices.IndexFunc(examples, func(g generated) bool { return g.path() == grpcHealthPath })
	if i < 0 {
		t.Fatal("the example has no check through grpc.health.v1")
	}
	grpcHealth := examples[i]
	example := exampleServerCPU(t, bins.exampleServer, examples)
	stacks := measureStacks(t, examples, grpcHealth)
	writeBytes(&r, examples, schema, grpcHealth, stacks)
	writeTiming(&r, examples, stacks)
	writeServerCPU(&r, examples, stacks, example)
	measureHAProxyCPU(t, &r, grpcHealth)
	measureDrain(t, &r, protoc, bins)
	writeGoBenchmarks(t, &r)
	writeAnalysis(&r)
	r.machine = append(r.machine, []string{"load average at the end (1, 5, 15 min)", loadAverage(t)})
	if t.Failed() {
		t.Fatalf("a measurement failed; %s is left as it was", *recordTo)
	}

	results := r.markdown("Benchmark results", "Written by `scripts/bench`: run it again rather than edit this file. Every number is "+
		"measured in one run on the machine described below, beside a reference measured in the same run. Timings are recorded here and "+
		"in Go benchmarks, never asserted in tests.")
	if err := os.WriteFile(*recordTo, []byte(results), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("results written to %s", *recordTo)
}

// requireTool returns the path of a program the driver cannot do without.
func requireTool(t *testing.T, name string) string {
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required for the benchmarks: %v (scripts/bench installs it)", name, err)
	}
	return path
}

// build builds the plugins and the example server.
func build(t *testing.T) binaries {
	root := testenv.RepoRoot(t)
	dir := t.TempDir()
	bins := binaries{
		plugin:        testenv.BuildPlugin(t),
		protocGenGo:   filepath.Join(dir, "protoc-gen-go"),
		exampleServer: filepath.Join(dir, "example-server"),
		options:       filepath.Join(root, "options"),
	}
	testenv.Run(t, root, 5*time.Minute, "go", "build", "-modfile=tools/go.mod", "-o", bins.protocGenGo, "google.golang.org/protobuf/cmd/protoc-gen-go")
	testenv.Run(t, root, 5*time.Minute, "go", "build", "-o", bins.exampleServer, "./example/server")
	return bins
}

// machine describes the machine and the versions of what runs.
func machine(t *testing.T, r *report, protoc, haproxy string, bins binaries) {
	firstLine := func(name string, args ...string) string {
		out, err := testenv.RunErr(".", time.Minute, name, args...)
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	r.machine = [][]string{
		{"date", time.Now().UTC().Format("2006-01-02 15:04 MST")},
		{"uname -a", "`" + firstLine("uname", "-a") + "`"},
		{"CPU", cpuModel(t)},
		{"CPUs (nproc)", firstLine("nproc")},
		{"Go", runtime.Version()},
		{"HAProxy", firstLine(haproxy, "-v")},
		{"protoc", firstLine(protoc, "--version")},
		{"protoc-gen-go", firstLine(bins.protocGenGo, "--version")},
		{"protoc-gen-haproxycheck", firstLine(bins.plugin, "--version")},
		{"load average at the start (1, 5, 15 min)", loadAverage(t)},
	}
}

// loadAverage returns the load averages of /proc/loadavg: other work on
// the machine shows in the numbers (a plugin wall time well above its CPU
// time, for one).
func loadAverage(t *testing.T) string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(raw))[:3], ", ")
}

// cpuModel returns the model name of the first CPU in /proc/cpuinfo.
func cpuModel(t *testing.T) string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown"
}
