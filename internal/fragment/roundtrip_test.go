package fragment_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
)

// exampleChecks returns the checks of the example's protos.
func exampleChecks(t *testing.T) []checkmodel.Check {
	t.Helper()
	set := protogentest.ExampleSet(t, nil)
	var files []*descriptorpb.FileDescriptorProto
	for _, f := range set.File {
		if f.GetName() != "google/protobuf/descriptor.proto" && f.GetName() != protogentest.OptionsFile {
			files = append(files, f)
		}
	}
	built, err := checkmodel.Build(protogentest.PluginOf(t, "", files...), protogentest.GoldenOptions)
	if err != nil {
		t.Fatal(err)
	}
	var checks []checkmodel.Check
	for _, f := range built {
		checks = append(checks, f.Checks...)
	}
	return checks
}

// TestRoundTrip renders every golden check, the example's and the one at
// the limits, reads each fragment back with the probe's parser, and
// requires what the reader finds to be what the check says: the bytes sent,
// the answers judged and what not serving means, the connection and its
// TLS, the timing, and the message types. The renderer writes, and the
// probe reads, through the fragment's directives and its contract line
// only.
func TestRoundTrip(t *testing.T) {
	checks := exampleChecks(t)
	if len(checks) != 2 {
		t.Fatalf("%d checks in the example, want its 2", len(checks))
	}
	for _, f := range goldenChecks(t) {
		checks = append(checks, f.Checks...)
	}
	checks = append(checks, limitsCheck(t))
	for _, c := range checks {
		f, err := probe.ParseFragment(fragment.Render("roundtrip.proto", "v0.0.0-test", c))
		if err != nil {
			t.Errorf("%s: %v", c.Service.Name, err)
			continue
		}
		var sent []byte
		for _, r := range f.Rules {
			if r.Kind == probe.Send {
				sent = append(sent, r.Data...)
			}
		}
		if !bytes.Equal(sent, c.Call.Encoded.Bytes()) {
			t.Errorf("%s: sends %x, want %x", c.Service.Name, sent, c.Call.Encoded.Bytes())
		}
		if f.Backend != c.Backend.Name {
			t.Errorf("%s: backend %q, want %q", c.Service.Name, f.Backend, c.Backend.Name)
		}

		l := f.Contract
		switch {
		case l == nil:
			t.Errorf("%s: no contract line", c.Service.Name)
			continue
		case l.RequestType != c.Call.Request.Type || l.ResponseType != c.Answers.Healthy.Type:
			t.Errorf("%s: message types %q and %q, want %q and %q", c.Service.Name, l.RequestType, l.ResponseType, c.Call.Request.Type, c.Answers.Healthy.Type)
		case !bytes.Equal(l.Healthy, c.Answers.Healthy.GRPC) || !bytes.Equal(l.NotServing, c.Answers.NotServing.GRPC):
			t.Errorf("%s: answers %x and %x, want %x and %x", c.Service.Name, l.Healthy, l.NotServing, c.Answers.Healthy.GRPC, c.Answers.NotServing.GRPC)
		case l.NotServingDrains != c.Answers.Drains() || l.DrainTime != c.DrainTime():
			t.Errorf("%s: drains %t in %v, want %t in %v", c.Service.Name, l.NotServingDrains, l.DrainTime, c.Answers.Drains(), c.DrainTime())
		}

		b := c.Backend
		want := probe.Connect{Linger: true, SendProxyV2: b.Servers.SendProxyV2}
		if b.TLS != nil {
			want.TLS, want.SNI, want.ALPN = true, b.TLS.ServerName, []string{"h2"}
			want.VerifyNone, want.CAFile = b.TLS.InsecureSkipVerify, b.TLS.CAFile
		}
		if got := f.Connect; got.TLS != want.TLS || got.SNI != want.SNI || !slices.Equal(got.ALPN, want.ALPN) || got.VerifyNone != want.VerifyNone ||
			got.CAFile != want.CAFile || got.Linger != want.Linger || got.SendProxyV2 != want.SendProxyV2 {
			t.Errorf("%s: connects %+v, want %+v", c.Service.Name, got, want)
		}

		ms := func(n uint32) time.Duration { return time.Duration(n) * time.Millisecond }
		wantTiming := probe.Timing{Inter: ms(b.Timing.InterMS), Fastinter: ms(b.Timing.FastinterMS), Downinter: ms(b.Timing.DowninterMS),
			Rise: int(b.Timing.Rise), Fall: int(b.Timing.Fall)}
		if f.Timing != wantTiming || f.TimeoutCheck != ms(b.Timing.TimeoutMS) {
			t.Errorf("%s: timing %+v, timeout check %v, want %+v and %v", c.Service.Name, f.Timing, f.TimeoutCheck, wantTiming, ms(b.Timing.TimeoutMS))
		}
	}
}
