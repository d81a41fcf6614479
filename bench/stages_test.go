package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/gocode"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
)

// stageRepeats is how many times the driver runs the plugin's stages; the
// results are medians.
const stageRepeats = 5

// Whose code a stage of the plugin runs.
const (
	ours       = "this plugin"
	protobufGo = "protobuf-go"
	goRuntime  = "the Go runtime"
)

// pluginStages are the stages of one run of protoc-gen-haproxycheck, in
// order: what each does, and whose code it runs.
var pluginStages = []struct{ what, whose string }{
	{"start the process and the Go runtime (`protoc-gen-haproxycheck --version`)", goRuntime},
	{"decode protoc's request (`proto.Unmarshal`)", protobufGo},
	{"build protogen's view of the files (`protogen.Options.New`; every protogen plugin does this)", protobufGo},
	{"build and validate the checks (`checkmodel.Build`: read the options, parse the annotations' text, serialize messages, encode the wire bytes)", ours},
	{"render the HAProxy fragments (`fragment.Render`)", ours},
	{"emit the Go code (`gocode.Generate`)", ours},
	{"format every generated Go file (protogen's `Response` runs go/format on each)", protobufGo},
	{"encode the response (`proto.Marshal`)", protobufGo},
}

// measureStages times the stages of the plugin on the request protoc sent
// it, and reports their shares, beside the plugin's wall time under
// protoc. Each
// run is a new process, as the plugin is: this test binary, told by
// stagesEnv to run the stages and print their times.
func measureStages(t *testing.T, r *report, plugin string, request []byte, wall time.Duration) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	requestFile := filepath.Join(t.TempDir(), "request.pb")
	if err := os.WriteFile(requestFile, request, 0o644); err != nil {
		t.Fatal(err)
	}
	times := make([][]time.Duration, len(pluginStages))
	for range stageRepeats {
		start := time.Now()
		testenv.Run(t, ".", time.Minute, plugin, "--version")
		times[0] = append(times[0], time.Since(start))
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), stagesEnv+"="+requestFile)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("timing the plugin's stages: %v\n%s", err, out)
		}
		var stages []time.Duration
		if err := json.Unmarshal(out, &stages); err != nil || len(stages) != len(pluginStages)-1 {
			t.Fatalf("timing the plugin's stages: %v: %s", err, out)
		}
		for i, d := range stages {
			times[i+1] = append(times[i+1], d)
		}
	}
	var staged time.Duration
	medians := make([]time.Duration, len(pluginStages))
	shares := map[string]time.Duration{}
	for i, stage := range pluginStages {
		medians[i] = median(times[i])
		staged += medians[i]
		shares[stage.whose] += medians[i]
	}
	r.heading("Where the plugin's time goes")
	r.para("The plugin's stages, run %d times on the request protoc sent the plugin for the schema above (%s, with source info, as "+
		"protoc sends it), each run in a new process as the plugin is, each stage timed on its own; medians. Together they take %s; the "+
		"plugin's median wall time under protoc was %s, which adds reading and writing protoc's pipes, and waiting for a CPU while other "+
		"work runs on the machine (see the load average). The Go benchmarks below time the same stages on the schema without source info.",
		stageRepeats, mib(int64(len(request))), ms(staged), ms(wall))
	var rows [][]string
	for i, stage := range pluginStages {
		rows = append(rows, []string{stage.what, stage.whose, ms(medians[i]), percent(medians[i], staged)})
	}
	r.table([]string{"stage", "code", "time", "share"}, rows)
	r.summarize("**Where the plugin's time goes:** %s in its own stages (checks, fragments, Go code); %s in protobuf-go, as in "+
		"protoc-gen-go (decoding the request, building protogen's descriptors, go/format of the generated Go, encoding the response); %s "+
		"in starting the process.", percent(shares[ours], staged), percent(shares[protobufGo], staged), percent(shares[goRuntime], staged))
}

// printStageTimes runs the plugin's stages on the request in requestFile
// and prints how long each took, as JSON, for measureStages. It returns
// the exit code.
func printStageTimes(requestFile string) int {
	request, err := os.ReadFile(requestFile)
	if err == nil {
		var times []time.Duration
		if times, err = runStages(request); err == nil {
			err = json.NewEncoder(os.Stdout).Encode(times)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// runStages runs the plugin's stages after its start once, as the plugin
// does, and returns how long each took. It builds the checks with
// checkmodel's zero Options, where the plugin by default also adds a
// user-agent and a grpc-timeout header to each check: a few bytes more of
// the same work.
func runStages(request []byte) ([]time.Duration, error) {
	var times []time.Duration
	start := time.Now()
	lap := func() {
		now := time.Now()
		times = append(times, now.Sub(start))
		start = now
	}
	var req pluginpb.CodeGeneratorRequest
	if err := proto.Unmarshal(request, &req); err != nil {
		return nil, err
	}
	lap()
	gen, err := protogen.Options{}.New(&req)
	if err != nil {
		return nil, err
	}
	lap()
	files, err := checkmodel.Build(gen, plugin.DefaultParams.BuildOptions(version.Version))
	if err != nil {
		return nil, err
	}
	lap()
	for _, f := range files {
		for _, c := range f.Checks {
			g := gen.NewGeneratedFile("haproxy/"+fragment.FileName(c.Service.Name), "")
			if _, err := g.Write(fragment.Render(f.Source, version.Version, c)); err != nil {
				return nil, err
			}
		}
	}
	lap()
	for _, f := range files {
		gocode.Generate(gen, version.Version, f)
	}
	lap()
	resp := gen.Response()
	if resp.GetError() != "" {
		return nil, errors.New(resp.GetError())
	}
	lap()
	if _, err := proto.Marshal(resp); err != nil {
		return nil, err
	}
	lap()
	return times, nil
}

// percent formats part as a percentage of whole.
func percent(part, whole time.Duration) string {
	return fmt.Sprintf("%.0f%%", 100*float64(part)/float64(whole))
}
