package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// grpcHealthPath is the :path of a check through grpc.health.v1.
const grpcHealthPath = "/grpc.health.v1.Health/Check"

// generated is one check as the plugin generated it, read back from its
// fragment with probe.ParseFragment, the one reader of fragment text: what
// the driver sends, matches and loads into HAProxy is exactly what users
// get.
type generated struct {
	// backend is the fragment's backend name.
	backend string
	// text is the whole fragment, and fragment what it says.
	text     string
	fragment *probe.Fragment
	// request is what the check sends: the send-binary rules' bytes.
	request []byte
	// healthy is the healthy response the check matches, as the
	// fragment's contract line names it.
	healthy []byte
	// drains reports whether the check drains a server that says it is
	// not serving (NOLB, L7OKC) rather than failing it.
	drains bool
	// interMS is the check interval the fragment sets.
	interMS int
	// preface, headers and data are the parts of request: the connection
	// preface with the SETTINGS frame, the HEADERS frame and the DATA
	// frame.
	preface, headers, data []byte
	// fields are the header fields of the HEADERS frame, decoded.
	fields []hpack.HeaderField
}

// kind names the check's annotation.
func (g generated) kind() string {
	if g.path() == grpcHealthPath {
		return "grpc_health"
	}
	return "health_rpc"
}

// path is the :path the check calls.
func (g generated) path() string {
	for _, f := range g.fields {
		if f.Name == ":path" {
			return f.Value
		}
	}
	return ""
}

// generateExample runs real protoc with the plugin on the example's protos
// and returns their checks, ordered by backend.
func generateExample(t *testing.T, protoc string, bins binaries) []generated {
	src := filepath.Join(testenv.RepoRoot(t), "example", "proto")
	protos, err := filepath.Glob(filepath.Join(src, "*", "*.proto"))
	if err != nil || len(protos) == 0 {
		t.Fatalf("no example protos in %s: %v", src, err)
	}
	out := t.TempDir()
	args := []string{"-I", bins.options, "-I", src, "--plugin=protoc-gen-haproxycheck=" + bins.plugin, "--haproxycheck_out=" + out}
	testenv.Run(t, src, time.Minute, protoc, append(args, protos...)...)
	return readFragments(t, out)
}

// readFragments reads the checks of the fragments the plugin wrote into
// out, ordered by backend.
func readFragments(t *testing.T, out string) []generated {
	paths, err := filepath.Glob(filepath.Join(out, "haproxy", "*.cfg"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fragments in %s: %v", out, err)
	}
	var checks []generated
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, readCheck(t, path, text))
	}
	slices.SortFunc(checks, func(a, b generated) int { return strings.Compare(a.backend, b.backend) })
	return checks
}

// readCheck reads the check of a generated fragment.
func readCheck(t *testing.T, path string, text []byte) generated {
	f, err := probe.ParseFragment(text)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.Contract == nil {
		t.Fatalf("%s: no contract line", path)
	}
	g := generated{
		backend:  f.Backend,
		text:     string(text),
		fragment: f,
		healthy:  f.Contract.Healthy,
		drains:   f.Contract.NotServingDrains,
		interMS:  int(f.Timing.Inter.Milliseconds()),
	}
	for _, r := range f.Rules {
		if r.Kind == probe.Send {
			g.request = append(g.request, r.Data...)
		}
	}
	g.splitRequest(t, path)
	return g
}

// splitRequest splits the request into the connection preface with the
// SETTINGS frame, the HEADERS frame and the DATA frame, as x/net/http2's
// Framer reads them, and keeps the decoded header fields.
func (g *generated) splitRequest(t *testing.T, path string) {
	rest, ok := bytes.CutPrefix(g.request, []byte(http2.ClientPreface))
	if !ok {
		t.Fatalf("%s: the request does not start with the HTTP/2 client preface", path)
	}
	g.preface = []byte(http2.ClientPreface)
	r := bytes.NewReader(rest)
	fr := http2.NewFramer(nil, r)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for r.Len() > 0 {
		start := len(rest) - r.Len()
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("%s: the request's frames: %v", path, err)
		}
		frame := rest[start : start+wire.FrameHeaderLen+int(f.Header().Length)]
		switch f := f.(type) {
		case *http2.SettingsFrame:
			g.preface = append(g.preface, frame...)
		case *http2.MetaHeadersFrame:
			g.headers, g.fields = frame, f.Fields
		case *http2.DataFrame:
			g.data = frame
		default:
			t.Fatalf("%s: unexpected %v frame in the request", path, f.Header().Type)
		}
	}
	if g.headers == nil || g.data == nil {
		t.Fatalf("%s: the request is not a preface, SETTINGS, HEADERS and DATA", path)
	}
}

// without returns the request with the header field name left out, or,
// for an empty name, without the SETTINGS frame.
func (g generated) without(name string) []byte {
	if name == "" {
		return slices.Concat([]byte(http2.ClientPreface), g.headers, g.data)
	}
	var block, frame bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range g.fields {
		if f.Name != name {
			_ = enc.WriteField(f) // writing to a bytes.Buffer cannot fail
		}
	}
	_ = http2.NewFramer(&frame, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: wire.StreamID, BlockFragment: block.Bytes(), EndHeaders: true})
	return slices.Concat(g.preface, frame.Bytes(), g.data)
}

// backendFor returns the fragment with its backend renamed to backend and
// its servers, still attached through server-template and DNS, changed to
// count servers at address (a DNS name and port that the resolvers
// section "bench" resolves), checked every interMS with the driver's rise
// and fall.
func (g generated) backendFor(backend, address string, count, interMS int) backendConfig {
	lines := strings.Split(g.text, "\n")
	for i, line := range lines {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 2 && fields[0] == "backend":
			lines[i] = "backend " + backend
		case len(fields) > 3 && fields[0] == "server-template":
			fields[2], fields[3] = strconv.Itoa(count), address
			set := map[string]string{"resolvers": resolversSection, "inter": strconv.Itoa(interMS) + "ms",
				"rise": strconv.Itoa(timingRise), "fall": strconv.Itoa(timingFall)}
			for j := 4; j+1 < len(fields); j++ {
				if v, ok := set[fields[j]]; ok {
					fields[j+1] = v
					delete(set, fields[j])
				}
			}
			for _, option := range []string{"inter", "rise", "fall"} {
				if v, ok := set[option]; ok {
					fields = append(fields, option, v)
				}
			}
			lines[i] = "    " + strings.Join(fields, " ")
		}
	}
	return backendConfig{name: backend, config: []byte(strings.Join(lines, "\n"))}
}

// TestReadFragments reads the example's committed fragments as the driver
// reads the ones it generates: each request splits into the preface with
// SETTINGS, a HEADERS frame naming the check's path and a DATA frame, and
// each fragment names its healthy response and its interval.
func TestReadFragments(t *testing.T) {
	checks := readFragments(t, filepath.Join(testenv.RepoRoot(t), "example", "gen"))
	if kinds := each(checks, generated.kind); !slices.Equal(kinds, []string{"grpc_health", "health_rpc"}) {
		t.Fatalf("kinds of the example's checks %q, want grpc_health (greeter) and health_rpc (servicestatus)", kinds)
	}
	for _, g := range checks {
		if !bytes.Equal(slices.Concat(g.preface, g.headers, g.data), g.request) {
			t.Errorf("%s: preface, HEADERS and DATA are not the request", g.backend)
		}
		if len(g.healthy) == 0 || g.interMS != 2000 || g.drains != (g.kind() == "grpc_health") {
			t.Errorf("%s: healthy %x, inter %d ms, drains %t; want a healthy response, 2000 ms, and draining only through grpc.health.v1",
				g.backend, g.healthy, g.interMS, g.drains)
		}
	}
}
