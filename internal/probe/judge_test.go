package probe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/h2answer"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// judgedFragments are fragments of both kinds of check, whose rules the
// tests below run: the example's grpc.health.v1 check, and a health RPC
// with a not-serving response of its own.
var judgedFragments = []string{
	"example/gen/haproxy/helloworld.Greeter.cfg",
	"internal/fragment/testdata/acme.status.Status.cfg",
}

// readFragment parses the fragment at path, relative to the repository.
func readFragment(t testing.TB, path string) *Fragment {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), path))
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFragment(text)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// rulesStatus runs f's expect rules on the answer a as HAProxy does, once
// with what has arrived: the status that ends the check, or StatusNone
// while they wait for more.
func rulesStatus(f *Fragment, a []byte, lastRead bool) Status {
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Kind == Send {
			continue
		}
		switch expect(r, a, lastRead) {
		case wait:
			return StatusNone
		case fail:
			return r.ErrorStatus
		}
	}
	return L7OK
}

// messagesOf returns the messages that f's contract names.
func messagesOf(f *Fragment) h2answer.Messages {
	return h2answer.Messages{Healthy: f.Contract.Healthy, NotServing: f.Contract.NotServing}
}

// wantStatus is the status a check must end with on an answer that a gRPC
// client reads as want: drained or failed as f says for not serving.
func wantStatus(f *Fragment, want h2answer.Verdict) Status {
	switch {
	case want == h2answer.Healthy:
		return L7OK
	case want == h2answer.NotServing && f.Contract.NotServingDrains:
		return L7OKC
	}
	return L7RSP
}

// TestRulesJudgeEveryAnswer runs the rules of both kinds of check on every
// answer of h2answer's catalog, on every prefix of it as HAProxy sees the
// answer arrive split at every byte, and checks that the rules run with
// PCRE2 and judgement in Go agree on each prefix; that once they end the
// check they give the status of the whole answer, so that no answer is
// judged before it is whole; and that the status is the one a gRPC client
// implies: a healthy call passes, a not-serving one is drained or failed as
// the check says, a failed one fails, and an answer that ends the call is
// judged without waiting for the timeout. Exotic answers, which the rules
// need not read as a client does, must still agree and never pass a
// failed call.
func TestRulesJudgeEveryAnswer(t *testing.T) {
	for _, path := range judgedFragments {
		f := readFragment(t, path)
		msgs := messagesOf(f)
		for _, set := range []struct {
			answers []h2answer.Answer
			exotic  bool
		}{{h2answer.Catalog(), false}, {h2answer.Exotic(), true}} {
			for _, answer := range set.answers {
				a := answer.Bytes(msgs)
				var first Status
				firstAt := 0
				for n := 1; n <= min(len(a), bufSize); n++ {
					// HAProxy stops reading once its buffer is full.
					lastRead := n == len(a) && answer.Close || n == bufSize
					got, native := rulesStatus(f, a[:n], lastRead), judgement(*f.Contract, a[:n], lastRead)
					if got != native {
						t.Errorf("%s, %s, %d of %d bytes: the rules give %q, judgement %q", filepath.Base(path), answer.Name, n, len(a), got, native)
						break
					}
					if first == StatusNone && got != StatusNone {
						first, firstAt = got, n
					}
				}
				end := rulesStatus(f, a[:min(len(a), bufSize)], answer.Close || len(a) >= bufSize)
				if first != StatusNone && first != end {
					t.Errorf("%s, %s: judged %s at %d of %d bytes, but the whole answer gives %s", filepath.Base(path), answer.Name, first, firstAt, len(a), end)
				}
				want := wantStatus(f, answer.Want)
				switch {
				case !answer.EndsCall && end == L7OK:
					t.Errorf("%s, %s: passes an answer that does not end the call", filepath.Base(path), answer.Name)
				case !answer.EndsCall:
				case set.exotic && answer.Want == h2answer.Failed && (end == L7OK || end == L7OKC):
					t.Errorf("%s, exotic %s: %s, a failed call that a check must never pass", filepath.Base(path), answer.Name, end)
				case set.exotic:
					t.Logf("%s, exotic %s (%s): %s", filepath.Base(path), answer.Name, answer.Want, end)
				case end != want:
					t.Errorf("%s, %s: %s, want %s (a gRPC client's reading: %s)", filepath.Base(path), answer.Name, end, want, answer.Want)
				}
			}
		}
	}
}
