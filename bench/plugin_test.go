package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/benchschema"
)

// protocRepeats is how many times protoc runs with each plugin; the
// results are medians.
const protocRepeats = 5

// protocRun is one way of running protoc on the schema.
type protocRun struct {
	// name is the plugin's name in protoc's flags (--NAME_out), or empty
	// for protoc alone, which writes a descriptor set.
	name string
	// plugin is the real plugin's executable.
	plugin string

	protocWall []time.Duration
	plugins    []usage
	files      int
	bytes      int64
	// out is the output directory of the last run.
	out string
}

func (p *protocRun) title() string {
	if p.name == "" {
		return "protoc alone (--descriptor_set_out)"
	}
	return "protoc-gen-" + p.name
}

// measurePlugins runs real protoc on the benchmark schema, alone and with
// each plugin, and reports what the plugins used against protoc-gen-go. It
// returns the median usage of protoc-gen-haproxycheck, the request protoc
// sends it, captured in one more run, and the checks it generated.
func measurePlugins(t *testing.T, r *report, protoc string, bins binaries) (usage, []byte, []generated) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	names, err := benchschema.WriteSources(src, benchschema.Files(benchschema.Services))
	if err != nil {
		t.Fatal(err)
	}
	runs := []*protocRun{{}, {name: "go", plugin: bins.protocGenGo}, {name: "haproxycheck", plugin: bins.plugin}}
	for range protocRepeats {
		for _, run := range runs {
			runProtoc(t, protoc, self, src, names, bins.options, run)
		}
	}
	requestFile := filepath.Join(t.TempDir(), "request.pb")
	runProtoc(t, protoc, self, src, names, bins.options, &protocRun{name: "haproxycheck", plugin: bins.plugin}, wrapRequestEnv+"="+requestFile)
	request, err := os.ReadFile(requestFile)
	if err != nil {
		t.Fatal(err)
	}

	r.heading(fmt.Sprintf("Plugin time and memory on %d services", benchschema.Services))
	r.para("Real `protoc` compiles a generated schema of %d services (`internal/benchschema`: one proto file and package each, an enum, "+
		"five or six messages and three or four RPCs; half checked through grpc.health.v1, half through a health RPC) once alone and once "+
		"with each plugin, %d times each, interleaved; the table gives medians. protoc runs the plugin through a wrapper (this package's "+
		"test binary) that times the plugin alone and reads its `getrusage` after `wait4`: wall time from exec to exit, user+system CPU, "+
		"and peak resident set size (`ru_maxrss`). protoc's own wall time includes parsing the schema and writing the output.",
		benchschema.Services, protocRepeats)
	var rows [][]string
	for _, run := range runs {
		row := []string{run.title(), ms(median(run.protocWall)), "", "", "", fmt.Sprint(run.files), mib(run.bytes)}
		if run.name != "" {
			m := run.median()
			row[2], row[3], row[4] = ms(m.Wall), ms(m.CPU), mib(m.MaxRSS)
		}
		rows = append(rows, row)
	}
	r.table([]string{"run", "protoc wall", "plugin wall", "plugin CPU", "plugin peak RSS", "files written", "bytes written"}, rows)
	ours, theirs := runs[2].median(), runs[1].median()
	r.summarize("**Plugin:** %s wall, %s CPU, %s peak RSS for %d services under real protoc: %s, %s and %s of protoc-gen-go on the same input.",
		ms(ours.Wall), ms(ours.CPU), mib(ours.MaxRSS), benchschema.Services,
		ratio(ours.Wall, theirs.Wall), ratio(ours.CPU, theirs.CPU), ratio(ours.MaxRSS, theirs.MaxRSS))
	r.para("**protoc-gen-haproxycheck against protoc-gen-go, same input, same run:** plugin wall %s, plugin CPU %s, plugin peak RSS %s; whole protoc run %s.",
		ratio(ours.Wall, theirs.Wall), ratio(ours.CPU, theirs.CPU), ratio(ours.MaxRSS, theirs.MaxRSS),
		ratio(median(runs[2].protocWall), median(runs[1].protocWall)))
	return ours, request, readFragments(t, runs[2].out)
}

// median returns the median of each measure of the plugin's runs.
func (p *protocRun) median() usage {
	return usage{
		Wall:   median(each(p.plugins, func(u usage) time.Duration { return u.Wall })),
		CPU:    median(each(p.plugins, func(u usage) time.Duration { return u.CPU })),
		MaxRSS: median(each(p.plugins, func(u usage) int64 { return u.MaxRSS })),
	}
}

// runProtoc runs protoc once as run says, into a new output directory,
// with env added to its environment, and records the times and what the
// plugin used and wrote.
func runProtoc(t *testing.T, protoc, self, src string, names []string, options string, run *protocRun, env ...string) {
	out := t.TempDir()
	usageFile := filepath.Join(out, "plugin-usage.json")
	args := []string{"-I", options, "-I", src}
	if run.name == "" {
		args = append(args, "--descriptor_set_out="+filepath.Join(out, "set.pb"))
	} else {
		args = append(args,
			fmt.Sprintf("--plugin=protoc-gen-%s=%s", run.name, self),
			fmt.Sprintf("--%s_out=%s", run.name, out),
			fmt.Sprintf("--%s_opt=paths=source_relative", run.name))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, protoc, append(args, names...)...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), wrapPluginEnv+"="+run.plugin, wrapUsageEnv+"="+usageFile)
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", run.title(), err, output)
	}
	run.protocWall = append(run.protocWall, time.Since(start))
	if run.name != "" {
		raw, err := os.ReadFile(usageFile)
		if err != nil {
			t.Fatalf("%s: the plugin's usage: %v", run.title(), err)
		}
		var u usage
		if err := json.Unmarshal(raw, &u); err != nil {
			t.Fatal(err)
		}
		run.plugins = append(run.plugins, u)
		if err := os.Remove(usageFile); err != nil {
			t.Fatal(err)
		}
	}
	run.out, run.files, run.bytes = out, 0, 0
	err := filepath.WalkDir(out, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		run.files++
		run.bytes += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// each returns f of every element of xs.
func each[E, T any](xs []E, f func(E) T) []T {
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}
