package bench

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/benchschema"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
)

// blogRequestBytes is the length of the request blob of the blog post that
// started this project, captured by hand from a gRPC client (PRODUCT.md):
// the reference for the bytes a check sends.
const blogRequestBytes = 339

// requestVariant is the generated request, or the request without one of
// its parts, to find which parts every server needs.
type requestVariant struct {
	name    string
	request []byte
}

// requestVariants returns g's request as generated, then without the
// SETTINGS frame, then without each header field but :method and :path,
// which every HTTP/2 request needs (RFC 9113, section 8.3.1).
func requestVariants(g generated) []requestVariant {
	variants := []requestVariant{{"as generated", g.request}, {"without the SETTINGS frame", g.without("")}}
	for _, f := range g.fields {
		if f.Name != ":method" && f.Name != ":path" {
			variants = append(variants, requestVariant{"without " + f.Name, g.without(f.Name)})
		}
	}
	return variants
}

// variantOutcomes sends every request variant of g to addr once.
func variantOutcomes(t *testing.T, addr string, g generated) map[string]checkOutcome {
	outcomes := map[string]checkOutcome{}
	for _, v := range requestVariants(g) {
		o, err := check(addr, v.request, g.healthy)
		if err != nil {
			t.Fatalf("%s to %s: %v", v.name, addr, err)
		}
		outcomes[v.name] = o
	}
	return outcomes
}

// writeBytes reports the bytes each kind of check sends against the blog
// post's request, where they go, and which parts each stack needs.
func writeBytes(r *report, examples, schema []generated, probed generated, stacks map[stacktest.Stack]*stackResult) {
	r.heading("Bytes on the wire per check")
	r.para("What one check sends, read back from the `send-binary` rules of the fragments the plugin generated under real protoc, "+
		"against the %d-byte request blob of the blog post, which also sent `grpc-accept-encoding`, a user agent and a second DATA frame "+
		"after END_STREAM. The example's checks, then every check of the %d-service schema by kind.", blogRequestBytes, benchschema.Services)
	row := func(name string, g generated) []string {
		return []string{name, g.kind(), fmt.Sprint(len(g.preface)), fmt.Sprint(len(g.headers)), fmt.Sprint(len(g.data)),
			fmt.Sprint(len(g.request)), ratio(len(g.request), blogRequestBytes)}
	}
	var rows [][]string
	for _, g := range examples {
		rows = append(rows, row(g.backend+" (example)", g))
	}
	byKind := map[string][]generated{}
	for _, g := range schema {
		byKind[g.kind()] = append(byKind[g.kind()], g)
	}
	for _, kind := range slices.Sorted(maps.Keys(byKind)) {
		checks := byKind[kind]
		slices.SortFunc(checks, func(a, b generated) int { return len(a.request) - len(b.request) })
		for _, q := range []struct {
			name string
			at   int
		}{{"smallest", 0}, {"median", len(checks) / 2}, {"largest", len(checks) - 1}} {
			rows = append(rows, row(fmt.Sprintf("schema, %s of %d", q.name, len(checks)), checks[q.at]))
		}
	}
	r.table([]string{"check", "kind", "preface + SETTINGS", "HEADERS", "DATA", "total bytes", fmt.Sprintf("against %d B", blogRequestBytes)}, rows)

	r.para("Where the bytes of the %s check's HEADERS frame go (9-byte frame header, then HPACK: static-table indexes, Huffman-coded "+
		"literals, no dynamic-table references since the connection is new):", probed.backend)
	var fieldRows [][]string
	for _, f := range probed.fields {
		var block bytes.Buffer
		_ = hpack.NewEncoder(&block).WriteField(f) // writing to a bytes.Buffer cannot fail
		fieldRows = append(fieldRows, []string{fmt.Sprintf("`%s: %s`", f.Name, f.Value), fmt.Sprint(block.Len())})
	}
	r.table([]string{"header field", "bytes"}, fieldRows)

	r.para("Which parts every server needs: the driver's own check client (see server CPU below) sent the %s check's request once as "+
		"generated and once without each part that is not `:method` or `:path`, to each stack; a cell is the answer, `healthy` when the "+
		"server ended the call with the healthy response.", probed.backend)
	header := []string{"request", "bytes"}
	for _, s := range stacktest.Stacks {
		header = append(header, string(s))
	}
	var variantRows [][]string
	var needed, unneeded []string
	for i, v := range requestVariants(probed) {
		cells := []string{v.name, fmt.Sprint(len(v.request))}
		var refused []string
		for _, st := range stacktest.Stacks {
			s := stacks[st]
			cells = append(cells, s.variantCell(v.name))
			if s.ran && !s.variants[v.name].healthy {
				refused = append(refused, string(st))
			}
		}
		variantRows = append(variantRows, cells)
		part := strings.TrimPrefix(v.name, "without ")
		switch {
		case i == 0:
		case len(refused) > 0:
			needed = append(needed, fmt.Sprintf("%s (%s)", part, strings.Join(refused, ", ")))
		default:
			unneeded = append(unneeded, part)
		}
	}
	r.table(header, variantRows)

	totals := each(slices.Concat(examples, schema), func(g generated) int { return len(g.request) })
	minTotal, maxTotal := slices.Min(totals), slices.Max(totals)
	line := fmt.Sprintf("**Bytes per check:** %d to %d bytes, %s to %s of the blog post's %d-byte request. Left out one at a time, these parts "+
		"each made a stack refuse the call: %s", minTotal, maxTotal, ratio(minTotal, blogRequestBytes), ratio(maxTotal, blogRequestBytes),
		blogRequestBytes, strings.Join(needed, "; "))
	if len(unneeded) > 0 {
		line += fmt.Sprintf("; no stack needed %s", strings.Join(unneeded, ", "))
	}
	r.summarize("%s.", line)
}
