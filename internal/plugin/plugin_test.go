package plugin_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// service returns a proto file "<pkg>/<pkg>.proto" in text format with one
// service Svc whose options are opts; goPackage, when not empty, is its
// go_package.
func service(pkg, goPackage, opts string) string {
	fileOpts := ""
	if goPackage != "" {
		fileOpts = `options { go_package: "` + goPackage + `" }`
	}
	return `name: "` + pkg + `/` + pkg + `.proto" package: "` + pkg + `" syntax: "proto3"
dependency: "haproxycheck/v1/haproxycheck.proto" ` + fileOpts + `
message_type { name: "Req" }
message_type { name: "Resp" field { name: "status" json_name: "status" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
service { name: "Svc" options { ` + opts + ` }
  method { name: "Check" input_type: ".` + pkg + `.Req" output_type: ".` + pkg + `.Resp" } }`
}

const checked = `[haproxycheck.v1.grpc_health] {}`

// generate runs the plugin on files, given in text format, with parameter.
func generate(t *testing.T, parameter string, files ...string) *pluginpb.CodeGeneratorResponse {
	t.Helper()
	req := protogentest.Request(t, parameter)
	for _, f := range files {
		fdp := protogentest.File(t, f)
		req.ProtoFile = append(req.ProtoFile, fdp)
		req.FileToGenerate = append(req.FileToGenerate, fdp.GetName())
	}
	return plugin.Generate(req, "v0.0.0-test")
}

// names returns the names of the files of resp, sorted.
func names(resp *pluginpb.CodeGeneratorResponse) []string {
	var n []string
	for _, f := range resp.GetFile() {
		n = append(n, f.GetName())
	}
	slices.Sort(n)
	return n
}

func TestGoOutput(t *testing.T) {
	withGo := service("a", "example.com/a", checked)
	withoutGo := service("b", "", checked)
	for _, tc := range []struct {
		param     string
		files     []string
		wantFiles []string
		wantErr   string
	}{
		{"", []string{withGo, withoutGo}, []string{"a/a_haproxycheck.pb.go", "haproxy/a.Svc.cfg", "haproxy/b.Svc.cfg"}, ""},
		{"go=auto", []string{withoutGo}, []string{"haproxy/b.Svc.cfg"}, ""},
		{"go=false", []string{withGo, withoutGo}, []string{"haproxy/a.Svc.cfg", "haproxy/b.Svc.cfg"}, ""},
		{"go=true", []string{withGo}, []string{"a/a_haproxycheck.pb.go", "haproxy/a.Svc.cfg"}, ""},
		{"go=true", []string{withGo, withoutGo}, nil,
			"b/b.proto: has no Go package for the Go code go=true asks for; set option go_package, pass Mb/b.proto=<import path>, or generate fragments only with go=false"},
		{"Mb/b.proto=example.com/b", []string{withoutGo}, []string{"b/b_haproxycheck.pb.go", "haproxy/b.Svc.cfg"}, ""},
		{"go=maybe", []string{withGo}, nil, "parameter go=maybe: want go=auto (Go code where a file has a Go package), go=true or go=false"},
	} {
		t.Run(tc.param, func(t *testing.T) {
			resp := generate(t, strings.TrimPrefix(tc.param+",paths=source_relative", ","), tc.files...)
			if !strings.Contains(resp.GetError(), tc.wantErr) || (tc.wantErr == "") != (resp.GetError() == "") {
				t.Errorf("error %q, want %q", resp.GetError(), tc.wantErr)
			}
			if got := names(resp); !slices.Equal(got, tc.wantFiles) {
				t.Errorf("files %q, want %q", got, tc.wantFiles)
			}
		})
	}
}

// TestHealthRPCOfTypesInAnotherPackage generates a health RPC whose
// messages live in another file and Go package: its Go code imports that
// package, or, when the other file has no Go package, it is an error.
func TestHealthRPCOfTypesInAnotherPackage(t *testing.T) {
	types := `name: "types/types.proto" package: "types" syntax: "proto3" %s
message_type { name: "Req" }
message_type { name: "Resp" field { name: "status" json_name: "status" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }`
	svc := `name: "svc/svc.proto" package: "svc" syntax: "proto3"
dependency: "haproxycheck/v1/haproxycheck.proto" dependency: "types/types.proto"
options { go_package: "example.com/svc" }
service { name: "Svc" method { name: "Check" input_type: ".types.Req" output_type: ".types.Resp"
  options { [haproxycheck.v1.health_rpc] { expected_response: 'status: "OK"' } } } }`
	for _, tc := range []struct {
		typesOptions, wantErr, wantImport string
	}{
		{`options { go_package: "example.com/types" }`, "", `types "example.com/types"`},
		{"", "svc/svc.proto: the Go code of /svc.Svc/Check uses types/types.proto, whose file has no Go package; " +
			"set its go_package, pass an M parameter for it, or generate fragments only with go=false", ""},
	} {
		req := protogentest.Request(t, "paths=source_relative")
		req.ProtoFile = append(req.ProtoFile, protogentest.File(t, fmt.Sprintf(types, tc.typesOptions)), protogentest.File(t, svc))
		req.FileToGenerate = []string{"svc/svc.proto"}
		resp := plugin.Generate(req, "v0.0.0-test")
		if resp.GetError() != tc.wantErr {
			t.Errorf("%s: error %q, want %q", tc.typesOptions, resp.GetError(), tc.wantErr)
		}
		code := ""
		for _, f := range resp.GetFile() {
			if f.GetName() == "svc/svc_haproxycheck.pb.go" {
				code = f.GetContent()
			}
		}
		if tc.wantImport != "" && !strings.Contains(code, tc.wantImport) {
			t.Errorf("%s: Go code does not import %s:\n%s", tc.typesOptions, tc.wantImport, code)
		}
		if tc.wantErr != "" && len(resp.GetFile()) != 0 {
			t.Errorf("wrote %d files with the error", len(resp.GetFile()))
		}
	}
}

// TestRequireChecks is the coverage policy: with require_checks=true, an
// annotated and an opted-out service pass, and an unannotated one is an
// error that names it; without the parameter, nothing is an error.
func TestRequireChecks(t *testing.T) {
	files := []string{
		service("checked", "example.com/checked", checked),
		service("optedout", "example.com/optedout", `[haproxycheck.v1.no_check]: "admin API, not behind HAProxy"`),
		service("forgotten", "example.com/forgotten", ""),
	}
	for _, tc := range []struct {
		param, wantErr string
	}{
		{"", ""},
		{"require_checks=false", ""},
		{"require_checks=true", `forgotten/forgotten.proto: service forgotten.Svc: has no health check, and require_checks=true asks every service for one; ` +
			`annotate it with grpc_health or health_rpc, or opt out with option (haproxycheck.v1.no_check) = "<why>"`},
	} {
		resp := generate(t, tc.param, files...)
		if resp.GetError() != tc.wantErr {
			t.Errorf("%q: error %q, want %q", tc.param, resp.GetError(), tc.wantErr)
		}
		if tc.wantErr == "" && !slices.Contains(names(resp), "haproxy/checked.Svc.cfg") {
			t.Errorf("%q: files %q, want the checked service's fragment", tc.param, names(resp))
		}
	}
}

func TestUnknownParameters(t *testing.T) {
	for param, want := range map[string]string{
		"colour=blue":            `unknown parameter "colour": protoc-gen-haproxycheck takes protogen's paths, module and M, and go, require_checks, grpc_timeout, user_agent, min_haproxy`,
		"grpc_timeout=sometimes": "parameter grpc_timeout=sometimes: want true or false",
		"min_haproxy=2.4":        "parameter min_haproxy=2.4: want one of HAProxy's long-term support lines, 2.6, 2.8, 3.0, 3.2, 3.4",
	} {
		if got := generate(t, param, service("a", "example.com/a", checked)).GetError(); !strings.Contains(got, want) {
			t.Errorf("%s: error %q, want %q", param, got, want)
		}
	}
}

// TestOutputIgnoresFileOrder generates the same files in two orders and
// compares every byte of every output file.
func TestOutputIgnoresFileOrder(t *testing.T) {
	a := service("a", "example.com/a", checked)
	b := service("b", "", `[haproxycheck.v1.grpc_health] {check: {tls: {} metadata: {key: "x-k" value: "v"}}}`)
	first, second := generate(t, "paths=source_relative", a, b), generate(t, "paths=source_relative", b, a)
	contents := func(resp *pluginpb.CodeGeneratorResponse) map[string]string {
		m := map[string]string{}
		for _, f := range resp.GetFile() {
			m[f.GetName()] = f.GetContent()
		}
		return m
	}
	got, want := contents(second), contents(first)
	if len(want) != 3 || len(got) != len(want) {
		t.Fatalf("generated %d and %d files, want 3 each", len(want), len(got))
	}
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s differs between the two orders", name)
		}
	}
}

// TestREADMEListsParameters checks that the README's table of the plugin's
// parameters has a row for each of Parameters, as it describes it, and no
// other.
func TestREADMEListsParameters(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `") && strings.Contains(line, "=") && strings.Count(line, " | ") == 2 {
			rows = append(rows, line)
		}
	}
	var want []string
	for _, p := range plugin.Parameters {
		want = append(want, fmt.Sprintf("| `%s=%s` | `%s` | %s |", p.Name, strings.ReplaceAll(p.Values, "|", `\|`), p.Default, p.Doc))
	}
	if !slices.Equal(rows, want) {
		t.Errorf("README's parameters:\n%s\nwant, from plugin.Parameters:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}
