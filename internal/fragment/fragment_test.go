package fragment_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/golden"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
)

func goldenChecks(t *testing.T) []checkmodel.File {
	t.Helper()
	files, err := checkmodel.Build(protogentest.Plugin(t, "", protogentest.GoldenFiles...), protogentest.GoldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGolden(t *testing.T) {
	for _, f := range goldenChecks(t) {
		for _, c := range f.Checks {
			golden.Check(t, filepath.Join("testdata", fragment.FileName(c.Service.Name)), fragment.Render(f.Source, "v0.0.0-test", c))
		}
	}
}

// TestFragmentsLoadInHAProxy validates every golden fragment, and one at
// the size limits, with haproxy -c beside a minimal main configuration.
func TestFragmentsLoadInHAProxy(t *testing.T) {
	dir := t.TempDir()
	// The golden files' custom resolvers section.
	write(t, filepath.Join(dir, "resolvers.cfg"), []byte("resolvers dns\n    nameserver local 127.0.0.1:53\n"))
	var env []string
	for _, f := range goldenChecks(t) {
		for _, c := range f.Checks {
			write(t, filepath.Join(dir, fragment.FileName(c.Service.Name)), fragment.Render(f.Source, "v0.0.0-test", c))
			if c.Backend.Servers.EnvVar != "" {
				env = append(env, c.Backend.Servers.EnvVar+"=svc.example.internal:50051")
			}
		}
	}
	limits := limitsCheck(t)
	rendered := fragment.Render("limits.proto", "v0.0.0-test", limits)
	write(t, filepath.Join(dir, fragment.FileName(limits.Service.Name)), rendered)
	env = append(env, limits.Backend.Servers.EnvVar+"=svc.example.internal:50051")
	if n := strings.Count(string(rendered), "tcp-check send-binary"); n < 30 {
		t.Errorf("largest request on %d send-binary lines, want it split over 30 or more", n)
	}
	haproxytest.Validate(t, env, dir)
}

// write writes b to the file at path.
func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// limitsCheck is a check with the largest request and expected response
// the model accepts and the longest names.
func limitsCheck(t *testing.T) checkmodel.Check {
	t.Helper()
	long := strings.Repeat("x", 16370)
	expected := strings.Repeat("y", 696)
	file := `name: "limits.proto" package: "limits" syntax: "proto3"
dependency: "haproxycheck/v1/haproxycheck.proto"
options { go_package: "example.com/limits" }
message_type { name: "M" field { name: "s" json_name: "s" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
service { name: "` + strings.Repeat("S", 200) + `" method { name: "Check" input_type: ".limits.M" output_type: ".limits.M"
  options { [haproxycheck.v1.health_rpc] { request: 's: "` + long + `"' expected_response: 's: "` + expected + `"'
    check: {backend: "` + strings.Repeat("b", 100) + `"} } } } }`
	files, err := checkmodel.Build(protogentest.Plugin(t, "", file), protogentest.GoldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	return files[0].Checks[0]
}

// TestRenderFor renders one check for the oldest HAProxy of each LTS
// line, and with not serving drained or failed: servers start DOWN until a
// check passes from 3.2 on (init-state, which 2.6 to 3.0 do not know),
// and the not-serving rule ends the check with L7OKC only when it drains.
func TestRenderFor(t *testing.T) {
	file := func(notServing string) string {
		return `name: "s/s.proto" package: "s" syntax: "proto3"
dependency: "haproxycheck/v1/haproxycheck.proto"
options { go_package: "example.com/s" }
service { name: "S" options { [haproxycheck.v1.grpc_health] {check: {not_serving: ` + notServing + `}} } }`
	}
	for _, v := range checkmodel.HAProxyVersions {
		for _, notServing := range []string{"NOT_SERVING_DRAIN", "NOT_SERVING_DOWN"} {
			opts := protogentest.GoldenOptions
			opts.MinHAProxy = v
			files, err := checkmodel.Build(protogentest.Plugin(t, "", file(notServing)), opts)
			if err != nil {
				t.Fatal(err)
			}
			text := string(fragment.Render("s/s.proto", "v0.0.0-test", files[0].Checks[0]))
			if got, want := strings.Contains(text, " init-state down"), v.AtLeast(3, 1); got != want {
				t.Errorf("HAProxy %v: init-state down %t, want %t", v, got, want)
			}
			if got, want := strings.Contains(text, " error-status L7OKC "), notServing == "NOT_SERVING_DRAIN"; got != want {
				t.Errorf("%s: error-status L7OKC %t, want %t", notServing, got, want)
			}
		}
	}
}
