package checkmodel_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/gocode"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// fragmentLines are the only lines, other than comments, that a fragment
// may hold: whatever an annotation says, it cannot add a directive.
var fragmentLines = []*regexp.Regexp{
	regexp.MustCompile(`^backend [A-Za-z0-9][A-Za-z0-9_.-]*$`),
	regexp.MustCompile(`^    mode (tcp|http)$`),
	regexp.MustCompile(`^    option tcp-check$`),
	regexp.MustCompile(`^    retries [0-9]+$`),
	regexp.MustCompile(`^    option redispatch 1$`),
	regexp.MustCompile(`^    retry-on conn-failure empty-response$`),
	regexp.MustCompile(`^    timeout check [0-9]+ms$`),
	regexp.MustCompile(`^    tcp-check connect( send-proxy)?( ssl( sni [A-Za-z0-9.-]+)? alpn h2)? linger comment "connect to check /[A-Za-z0-9_.]+/[A-Za-z0-9_]+"$`),
	regexp.MustCompile(`^    tcp-check send-binary [0-9a-f]+ comment "HTTP/2 call [^"]+"$`),
	regexp.MustCompile(`^    tcp-check expect rstring '[^'\x00-\x1f]+' comment "[^"]+" on-error "[^"%]+"$`),
	regexp.MustCompile(`^    tcp-check expect min-recv 0( error-status L7OKC)? comment "[^"]+" on-error "[^"%]+" (! )?rstring '[^'\x00-\x1f]+'$`),
	regexp.MustCompile(`^    server-template srv [0-9]+ ("\$\{[A-Z0-9_]+\}"|[A-Za-z0-9_.:\[\]-]+) resolvers [A-Za-z0-9_.-]+ init-addr none check` +
		`( send-proxy-v2 check-send-proxy)?( proto h2( ssl alpn h2( sni str\([A-Za-z0-9.-]+\))?)?)?( verify none| verify required ca-file [A-Za-z0-9_./+@-]+)?( init-state down)?( [a-z]+ [0-9]+(ms)?)*$`),
}

// FuzzBuild gives Build arbitrary annotations of both kinds. It must never
// panic, and every check it accepts must render to a fragment made only of
// comments and the renderer's own directives, with lines HAProxy reads
// whole, and to Go code that compiles as far as gofmt can tell.
func FuzzBuild(f *testing.F) {
	f.Add(false, `name: "haproxy"`, `status: "OK"`, ``, "", "svc", "localhost", "", "", uint32(0), uint32(0), uint32(0), uint32(0),
		false, "", "", false, "", "", int32(0), false, false)
	f.Add(false, ``, `status: "OK"`, `status: "DRAINING"`, "", "b-1.x", "svc.example:8443", "svc.example:50051", "dns", uint32(4), uint32(1000), uint32(3), uint32(2),
		true, "", "/etc/haproxy/ca.pem", false, "x-api-key", "k", int32(2), true, false)
	f.Add(true, ``, ``, ``, "helloworld.Greeter", "greeter", "", "", "default", uint32(10), uint32(2000), uint32(2), uint32(3),
		true, "greeter.example", "", true, "", "", int32(1), false, true)
	f.Add(true, ``, ``, ``, "a\nbackend evil\n", "b\nserver x", "a\" #", "x:1\" check", "r r", uint32(1), uint32(1<<31), uint32(1), uint32(1),
		true, "x\" verify none", "a b", true, "X\n", "\r\n", int32(7), false, false)
	f.Add(false, `name: "\n"`, "status: \"\\x01\\x05\\x00\\x00\\x00\\x01\"", `status: "OK"`, "", "", "", "", "", uint32(0), uint32(0), uint32(0), uint32(0),
		false, "", "", false, "grpc-timeout", "1S", int32(0), false, false)
	f.Fuzz(func(t *testing.T, grpcHealth bool, request, expected, notServing, serviceName, backend, authority, address, resolvers string,
		count, inter, rise, fall uint32, tls bool, serverName, caFile string, insecure bool, metadataKey, metadataValue string, mode int32,
		sendProxy, wholeServer bool) {
		for _, s := range []string{request, expected, notServing, serviceName, backend, authority, address, resolvers, serverName, caFile, metadataKey, metadataValue} {
			if !utf8.ValidString(s) {
				t.Skip("protoc only passes valid UTF-8 strings")
			}
		}
		check := &haproxycheckv1.Check{
			Backend:     backend,
			Authority:   authority,
			Servers:     &haproxycheckv1.Servers{Address: address, Count: count, Resolvers: resolvers, SendProxyV2: sendProxy},
			Timing:      &haproxycheckv1.Timing{InterMs: inter, Rise: rise, Fall: fall},
			Mode:        haproxycheckv1.Check_Mode(mode),
			WholeServer: wholeServer,
		}
		if tls {
			check.Tls = &haproxycheckv1.TLS{ServerName: serverName, CaFile: caFile, InsecureSkipVerify: insecure}
		}
		if metadataKey != "" {
			check.Metadata = []*haproxycheckv1.Metadata{{Key: metadataKey, Value: metadataValue}}
		}
		fdp := protogentest.File(t, file("", rpc("Check", "")))
		if grpcHealth {
			opts := &descriptorpb.ServiceOptions{}
			proto.SetExtension(opts, haproxycheckv1.E_GrpcHealth, &haproxycheckv1.GrpcHealthCheck{ServiceName: &serviceName, Check: check})
			fdp.Service[0].Options = opts
		} else {
			opts := &descriptorpb.MethodOptions{}
			proto.SetExtension(opts, haproxycheckv1.E_HealthRpc, &haproxycheckv1.HealthRPC{
				Request: request, ExpectedResponse: expected, NotServingResponse: notServing, Check: check,
			})
			fdp.Service[0].Method[0].Options = opts
		}
		plugin := protogentest.PluginOf(t, "", fdp)
		files, err := checkmodel.Build(plugin, protogentest.GoldenOptions)
		if err != nil {
			if files != nil {
				t.Errorf("Build returned files with the error %v", err)
			}
			return
		}
		for _, file := range files {
			for _, c := range file.Checks {
				assertSafeFragment(t, c, string(fragment.Render(file.Source, "v0.0.0-test", c)))
			}
			gocode.Generate(plugin, "v0.0.0-test", file)
		}
		if resp := plugin.Response(); resp.GetError() != "" {
			t.Errorf("Go code: %s", resp.GetError())
		}
	})
}

// maxLine bounds a fragment's lines. HAProxy reads lines of any length
// (its parser grows its line buffer; TestFragmentsLoadInHAProxy loads the
// longest), but the longest a fragment may have, the rule of the largest
// expected response, is under this.
const maxLine = 16 << 10

// assertSafeFragment fails the test if the fragment of c has a line that
// is neither a comment nor one of fragmentLines, more than one backend, or
// a line longer than maxLine.
func assertSafeFragment(t *testing.T, c checkmodel.Check, rendered string) {
	t.Helper()
	backends := 0
	for _, line := range strings.Split(strings.TrimSuffix(rendered, "\n"), "\n") {
		if len(line) >= maxLine {
			t.Errorf("line of %d characters, longer than any the renderer writes: %.80s...", len(line), line)
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Errorf("line with a control character: %q", line)
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "backend ") {
			backends++
			if line != "backend "+c.Backend.Name {
				t.Errorf("backend line %q for backend %q", line, c.Backend.Name)
			}
		}
		matched := false
		for _, re := range fragmentLines {
			matched = matched || re.MatchString(line)
		}
		if !matched {
			t.Errorf("fragment line the renderer does not write: %q", line)
		}
	}
	if backends != 1 {
		t.Errorf("fragment has %d backend lines, want 1", backends)
	}
}
