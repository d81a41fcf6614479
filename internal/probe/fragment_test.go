package probe_test

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment/contract"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// TestParseExampleFragment reads the committed grpc.health.v1 fragment of
// the example back into its check.
func TestParseExampleFragment(t *testing.T) {
	f := parse(t, protogentest.ExampleFragment(t, greeter))
	if f.Backend != "greeter" || f.Timing != (probe.Timing{Inter: 2 * time.Second, Rise: 2, Fall: 3}) || f.TimeoutCheck != 0 {
		t.Errorf("backend %q, timing %+v, timeout check %v", f.Backend, f.Timing, f.TimeoutCheck)
	}
	want := &contract.Line{
		RequestType: "grpc.health.v1.HealthCheckRequest", ResponseType: "grpc.health.v1.HealthCheckResponse",
		Healthy: serving, NotServing: notServing, NotServingDrains: true, DrainTime: 4 * time.Second,
	}
	if !reflect.DeepEqual(f.Contract, want) {
		t.Errorf("contract %+v, want %+v", f.Contract, want)
	}
	if want := (probe.Connect{Linger: true}); !reflect.DeepEqual(f.Connect, want) {
		t.Errorf("connect %+v, want %+v: plaintext with HAProxy's defaults, closed without a reset", f.Connect, want)
	}
	var kinds []probe.RuleKind
	for _, r := range f.Rules {
		kinds = append(kinds, r.Kind)
	}
	if want := []probe.RuleKind{probe.Send, probe.ExpectRString, probe.ExpectRString, probe.ExpectRString}; !slices.Equal(kinds, want) {
		t.Fatalf("rules %v, want %v", kinds, want)
	}
	if send := f.Rules[0].Data; !bytes.HasPrefix(send, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) {
		t.Errorf("sent bytes start %q, want the HTTP/2 client preface", send[:24])
	}
	end, drain, healthy := f.Rules[1], f.Rules[2], f.Rules[3]
	if end.MinRecv != -1 || end.Inverse || end.ErrorStatus != probe.L7RSP || !strings.HasPrefix(end.Pattern, `(?s)\A`) {
		t.Errorf("end-of-call rule %+v", end)
	}
	if drain.MinRecv != 0 || !drain.Inverse || drain.ErrorStatus != probe.L7OKC {
		t.Errorf("not-serving rule %+v", drain)
	}
	if healthy.MinRecv != 0 || healthy.Inverse || healthy.ErrorStatus != probe.L7RSP || !strings.HasPrefix(healthy.OnError, "not a successful call") {
		t.Errorf("healthy-response rule %+v", healthy)
	}
}

// TestParseTLSFragments reads the TLS options of rendered fragments:
// verified with a CA file and SNI, and not verified.
func TestParseTLSFragments(t *testing.T) {
	verified := parse(t, protogentest.Fragment(t, protogentest.ExampleSet(t, func(_ string, c *haproxycheckv1.Check) {
		c.Authority = "greeter.example.com"
		c.Tls = &haproxycheckv1.TLS{CaFile: "/etc/haproxy/ca.pem"}
		c.Timing = &haproxycheckv1.Timing{InterMs: 500, TimeoutMs: 300}
	}), greeter))
	// Linger is the renderer's choice, read in TestParseQuoting.
	want := probe.Connect{TLS: true, SNI: "greeter.example.com", ALPN: []string{"h2"}, CAFile: "/etc/haproxy/ca.pem", Linger: verified.Connect.Linger}
	if !reflect.DeepEqual(verified.Connect, want) {
		t.Errorf("connect %+v, want %+v", verified.Connect, want)
	}
	if verified.Timing.Inter != 500*time.Millisecond || verified.TimeoutCheck != 300*time.Millisecond {
		t.Errorf("inter %v, timeout check %v", verified.Timing.Inter, verified.TimeoutCheck)
	}
	unverified := parse(t, protogentest.Fragment(t, protogentest.ExampleSet(t, func(_ string, c *haproxycheckv1.Check) {
		c.Authority = "10.0.0.1:443"
		c.Tls = &haproxycheckv1.TLS{InsecureSkipVerify: true}
	}), healthCheck))
	want = probe.Connect{TLS: true, ALPN: []string{"h2"}, VerifyNone: true, Linger: unverified.Connect.Linger}
	if !reflect.DeepEqual(unverified.Connect, want) {
		t.Errorf("connect %+v, want %+v", unverified.Connect, want)
	}
}

// TestParseFragmentErrors checks that a text that is not a fragment, or a
// rule a probe cannot run as HAProxy does, is refused with the line.
func TestParseFragmentErrors(t *testing.T) {
	const good = "backend b\n    tcp-check connect\n    tcp-check send-binary 00\n    tcp-check expect binary 00\n"
	if _, err := probe.ParseFragment([]byte(good)); err != nil {
		t.Fatalf("minimal fragment: %v", err)
	}
	tests := []struct{ text, want string }{
		{"", "no backend section"},
		{"frontend f\n", `line 1: want "backend NAME"`},
		{good + "backend c\n", "line 5: a fragment has one backend section"},
		{"option tcp-check\n", "line 1: \"option tcp-check\" is outside a backend section"},
		{"backend b\n    tcp-check send-binary 00\n", "no tcp-check connect rule"},
		{"backend b\n    tcp-check connect\n", "sends nothing after its connect rule"},
		{"backend b\n    tcp-check connect port 80\n", `line 2: tcp-check connect option "port"`},
		{"backend b\n    tcp-check\n", "line 2: tcp-check without a rule"},
		{"backend b\n    tcp-check connect send-proxy\n    tcp-check send-binary 00\n    server s 127.0.0.1:1 check\n", "a probe cannot send the PROXY protocol version 1"},
		{"backend b\n    tcp-check connect\n    tcp-check send-binary 0g\n", "line 3: tcp-check send-binary: encoding/hex"},
		{"backend b\n    tcp-check connect\n    tcp-check send hello\n", "line 3: tcp-check send is not a rule"},
		{good + "    tcp-check expect string ok\n", "line 5: tcp-check expect has none of binary, rbinary and rstring"},
		{good + "    tcp-check expect rbinary (\n", "line 5: tcp-check expect rbinary: offset 1: missing closing parenthesis"},
		{good + "    tcp-check expect rstring (?&X)\n", "line 5: tcp-check expect rstring: offset 3: reference to non-existent subpattern"},
		{good + "    tcp-check expect error-status L9 rstring x\n", `line 5: tcp-check expect error-status: "L9" is not an HAProxy check status`},
		{"# haproxycheck-contract: v9\n" + good, "line 1: contract \"v9\": this reader knows v1 only"},
		{"# haproxycheck-contract: v1 request=a\n" + good, "line 1: contract: response is missing"},
		{good + "    tcp-check expect min-recv x binary 00\n", `line 5: tcp-check expect min-recv "x"`},
		{good + "    tcp-check expect binary 00 comment\n", "line 5: tcp-check expect comment takes a value"},
		{good + `    tcp-check expect binary 00 comment "open` + "\n", "line 5: unterminated quote"},
		{good + "    timeout check 2parsecs\n", "line 5: timeout check: \"2parsecs\" has an unknown time unit"},
		{good + "    server s 127.0.0.1:1 check verify maybe\n", `line 5: verify "maybe"`},
		{good + "    server s 127.0.0.1:1 check\n    server t 127.0.0.1:2 check\n", "line 6: a fragment has one server line"},
	}
	for _, tt := range tests {
		_, err := probe.ParseFragment([]byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseFragment(%q) = %v, want an error with %q", tt.text, err, tt.want)
		}
	}
}

// TestParseQuoting checks HAProxy's quoting rules on a rule's comment.
func TestParseQuoting(t *testing.T) {
	text := `backend b
    tcp-check connect linger comment 'single # quoted'
    tcp-check send-binary 00 comment "double \"quoted\" # too" # a real comment
    tcp-check expect binary 00 comment a\ b
`
	f := parse(t, []byte(text))
	if got := f.Rules[0].Comment; got != `double "quoted" # too` {
		t.Errorf("comment %q", got)
	}
	if got := f.Rules[1].Comment; got != "a b" {
		t.Errorf("comment %q", got)
	}
	if !f.Connect.Linger {
		t.Error("connect linger not read")
	}
}
