package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

var (
	recordTo = flag.String("record", "", "run the benchmark driver and write its results to this Markdown file")
	goBench  = flag.String("gobench", "", "output of go test -bench -benchmem to summarize in the results")
)

// Environment variables that turn the test binary into a wrapper of a
// protoc plugin: protoc runs the binary as the plugin, and the binary runs
// the real plugin and records what it used, and the request protoc sent
// when asked.
const (
	wrapPluginEnv  = "HAPROXYCHECK_BENCH_PLUGIN"
	wrapUsageEnv   = "HAPROXYCHECK_BENCH_USAGE"
	wrapRequestEnv = "HAPROXYCHECK_BENCH_REQUEST"
)

// stagesEnv, set to a file holding a CodeGeneratorRequest, turns the test
// binary into a timer of the plugin's stages on that request
// (printStageTimes).
const stagesEnv = "HAPROXYCHECK_BENCH_STAGES"

func TestMain(m *testing.M) {
	if plugin := os.Getenv(wrapPluginEnv); plugin != "" {
		os.Exit(wrapPlugin(plugin, os.Getenv(wrapUsageEnv), os.Getenv(wrapRequestEnv)))
	}
	if request := os.Getenv(stagesEnv); request != "" {
		os.Exit(printStageTimes(request))
	}
	flag.Parse()
	if *recordTo == "" {
		os.Exit(m.Run())
	}
	os.Exit(stacktest.Main(m))
}

// recordPart runs one part of the benchmark driver alone, when it is given
// -record: it describes the machine, with the haproxy the tests run
// (testenv), runs measure, and writes the machine and what measure
// reported, under title and intro, to the file.
func recordPart(t *testing.T, title, intro string, measure func(r *report, protoc string, bins binaries)) {
	if *recordTo == "" {
		t.Skip("the benchmark driver runs only with -record FILE")
	}
	protoc := requireTool(t, "protoc")
	bins := build(t)
	var r report
	machine(t, &r, protoc, testenv.Tool(t, "haproxy"), bins)
	measure(&r, protoc, bins)
	if t.Failed() {
		t.Fatalf("a measurement failed; %s is left as it was", *recordTo)
	}
	if err := os.WriteFile(*recordTo, []byte(r.markdown(title, intro)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// usage is what one run of a process used.
type usage struct {
	// Wall is the time from its start to its exit.
	Wall time.Duration
	// CPU is its user and system time.
	CPU time.Duration
	// MaxRSS is its peak resident set size in bytes.
	MaxRSS int64
}

// wrapPlugin runs plugin with this process's standard input and output,
// as protoc ran this process, writes its usage as JSON to usageFile, and
// returns its exit code. With requestFile, it first reads the whole request
// and writes it there.
func wrapPlugin(plugin, usageFile, requestFile string) int {
	cmd := exec.Command(plugin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if requestFile != "" {
		request, err := io.ReadAll(os.Stdin)
		if err == nil {
			err = os.WriteFile(requestFile, request, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cmd.Stdin = bytes.NewReader(request)
	}
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintf(os.Stderr, "running %s: %v\n", plugin, err)
		return 1
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	u := usage{
		Wall:   wall,
		CPU:    time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		MaxRSS: ru.Maxrss * 1024, // Linux reports kilobytes
	}
	raw, _ := json.Marshal(u)
	if err := os.WriteFile(usageFile, raw, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return cmd.ProcessState.ExitCode()
}
