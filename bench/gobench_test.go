package bench

import (
	"bufio"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/benchschema"
)

// goBenchmark is the results of one Go benchmark over every run of it.
type goBenchmark struct {
	// name is "package.BenchmarkName/sub", without the GOMAXPROCS suffix.
	name string
	// values are the measured values by unit (ns/op, B/op, ...), one per
	// run.
	values map[string][]float64
}

// procsSuffix is the "-GOMAXPROCS" suffix of a benchmark's name.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// readGoBenchmarks reads the output of go test -bench, in the order the
// benchmarks first appear.
func readGoBenchmarks(t *testing.T, file string) []*goBenchmark {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		pkg     string
		order   []*goBenchmark
		byName  = map[string]*goBenchmark{}
		scanner = bufio.NewScanner(f)
	)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		switch {
		case len(fields) == 2 && fields[0] == "pkg:":
			pkg = path.Base(fields[1])
		case len(fields) >= 4 && strings.HasPrefix(fields[0], "Benchmark"):
			name := pkg + "." + procsSuffix.ReplaceAllString(fields[0], "")
			b := byName[name]
			if b == nil {
				b = &goBenchmark{name: name, values: map[string][]float64{}}
				byName[name] = b
				order = append(order, b)
			}
			for i := 2; i+1 < len(fields); i += 2 {
				v, err := strconv.ParseFloat(fields[i], 64)
				if err != nil {
					t.Fatalf("%s: %q: %v", file, scanner.Text(), err)
				}
				b.values[fields[i+1]] = append(b.values[fields[i+1]], v)
			}
		}
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	return order
}

// cell formats the median of unit for a table, empty when unit was not
// measured.
func (b *goBenchmark) cell(unit string) string {
	vs := b.values[unit]
	if len(vs) == 0 {
		return ""
	}
	return strconv.FormatFloat(median(vs), 'f', -1, 64)
}

// writeGoBenchmarks reports the Go benchmarks of the -gobench file.
func writeGoBenchmarks(t *testing.T, r *report) {
	r.heading("Go benchmarks of the hot paths")
	if *goBench == "" {
		r.para("Not run (the driver was not given -gobench).")
		return
	}
	benchmarks := readGoBenchmarks(t, *goBench)
	runs := 0
	var rows [][]string
	for _, b := range benchmarks {
		runs = max(runs, len(b.values["ns/op"]))
		rows = append(rows, []string{b.name, b.cell("ns/op"), b.cell("ns/service"), b.cell("B/op"), b.cell("allocs/op")})
	}
	r.para("`go test -run '^$' -bench . -benchmem -count %d` over the packages with benchmarks; medians of the %d runs. The schema "+
		"benchmarks run over the %d services of `internal/benchschema` per operation.", runs, runs, benchschema.Services)
	r.table([]string{"benchmark", "ns/op", "ns/service", "B/op", "allocs/op"}, rows)
}
