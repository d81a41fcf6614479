package bench

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// grpcHealthPath is the :path of a check through grpc.health.v1.
const grpcHealthPath = "/grpc.health.v1.Health/Check"

// generated is one check as the plugin generated it, read back from its
// fragment: what the driver sends, matches and loads into HAProxy is
// exactly what users get.
type generated struct {
	// backend is the fragment's backend name.
	backend string
	// text is the whole fragment.
	text string
	// request is what the check sends: the send-binary rules' bytes.
	request []byte
	// healthy is the healthy response the check matches.
	healthy []byte
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
		checks = append(checks, parseFragment(t, path, string(text)))
	}
	slices.SortFunc(checks, func(a, b generated) int { return strings.Compare(a.backend, b.backend) })
	return checks
}

// parseFragment reads the check of a generated fragment.
func parseFragment(t *testing.T, path, text string) generated {
	g := generated{text: text}
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 2 && fields[0] == "backend":
			g.backend = fields[1]
		case len(fields) > 2 && fields[0] == "tcp-check" && fields[1] == "send-binary":
			g.request = append(g.request, decodeHex(t, path, fields[2])...)
		case len(fields) > 2 && fields[0] == "tcp-check" && fields[1] == "expect" && fields[2] == "min-recv":
			g.healthy = decodeHex(t, path, fields[len(fields)-1])
		case len(fields) > 0 && fields[0] == "server-template":
			if i := slices.Index(fields, "inter"); i > 0 && i+1 < len(fields) {
				g.interMS, _ = strconv.Atoi(strings.TrimSuffix(fields[i+1], "ms"))
			}
		}
	}
	if g.backend == "" || len(g.request) == 0 || len(g.healthy) == 0 || g.interMS == 0 {
		t.Fatalf("%s: no backend, request, healthy response or inter found", path)
	}
	g.splitRequest(t, path)
	return g
}

// decodeHex decodes a hex string of a fragment.
func decodeHex(t *testing.T, path, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// splitRequest splits the request into the connection preface with the
// SETTINGS frame, the HEADERS frame and the DATA frame, and decodes the
// header fields.
func (g *generated) splitRequest(t *testing.T, path string) {
	rest, ok := bytes.CutPrefix(g.request, []byte(http2.ClientPreface))
	if !ok {
		t.Fatalf("%s: the request does not start with the HTTP/2 client preface", path)
	}
	g.preface = []byte(http2.ClientPreface)
	for len(rest) >= frameHeaderLen {
		n := frameHeaderLen + (int(rest[0])<<16 | int(rest[1])<<8 | int(rest[2]))
		if n > len(rest) {
			break
		}
		frame := rest[:n]
		switch http2.FrameType(frame[3]) {
		case http2.FrameSettings:
			g.preface = append(g.preface, frame...)
		case http2.FrameHeaders:
			g.headers = frame
		case http2.FrameData:
			g.data = frame
		default:
			t.Fatalf("%s: unexpected %v frame in the request", path, http2.FrameType(frame[3]))
		}
		rest = rest[n:]
	}
	if len(rest) > 0 || g.headers == nil || g.data == nil {
		t.Fatalf("%s: the request is not a preface, SETTINGS, HEADERS and DATA", path)
	}
	fr := http2.NewFramer(nil, bytes.NewReader(g.headers))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("%s: the HEADERS frame: %v", path, err)
	}
	g.fields = f.(*http2.MetaHeadersFrame).Fields
}

// frameHeaderLen is the length of an HTTP/2 frame header (RFC 9113,
// section 4.1).
const frameHeaderLen = 9

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
