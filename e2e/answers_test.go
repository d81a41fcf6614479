package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/h2answer"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// answersSubnet holds the answer servers' addresses: 127.0.90.(1+i) serve
// answer i whole, 127.0.90.(splitBase+i) split.
const (
	answersSubnet = "127.0.90."
	splitBase     = 128
)

// answersGroupSize is how many answers one HAProxy checks: each DNS answer
// then fits HAProxy's default accepted_payload_size of 512 bytes.
const answersGroupSize = 22

// answersInter is the checks' interval and answersTimeout their timeout;
// splitWithin bounds the pauses of a split answer: some 200 of them, which
// take from 0.2 s to over 1 s on a busy machine, leaving much of the
// timeout for an answer that ends the call to be judged. judgeSlack is how
// long after its answer's last byte HAProxy may take to judge it.
const (
	answersInter   = time.Second
	answersTimeout = 3 * time.Second
	splitWithin    = 200 * time.Millisecond
	judgeSlack     = 500 * time.Millisecond
)

// answersProtos are the services of both kinds of check, with short
// timing: a grpc.health.v1 check, which drains on NOT_SERVING, and a
// health RPC with a not-serving response of its own.
const answersProtos = `syntax = "proto3";
package answers;
import "haproxycheck/v1/haproxycheck.proto";
option (haproxycheck.v1.defaults) = {
  timing: {inter_ms: %[1]d timeout_ms: %[2]d rise: 2 fall: 2}
  servers: {count: %[3]d}
};
message Empty {}
message CheckRequest {}
message CheckResponse { string status = 1; }
service Greeter {
  option (haproxycheck.v1.grpc_health) = {check: {backend: "answers_health"}};
  rpc Hello(Empty) returns (Empty);
}
service Status {
  rpc Check(CheckRequest) returns (CheckResponse) {
    option (haproxycheck.v1.health_rpc) = {
      expected_response: 'status: "MagicResponseCodeOK"'
      not_serving_response: 'status: "Draining"'
      check: {backend: "answers_rpc"}
    };
  }
}
`

// answerKind is one kind of check, its fragment, and the messages its
// answers carry.
type answerKind struct {
	name, backend, envVar, file string
	port                        string
	f                           *probe.Fragment
	msgs                        h2answer.Messages
}

// answerCase is one answer, whole or split, served to both kinds of
// check on one address each.
type answerCase struct {
	answer h2answer.Answer
	exotic bool
	split  bool
	ip     string
	// results are by kind.
	results []*answerResult
}

// answerResult is what HAProxy's first check and the probe made of an
// answer.
type answerResult struct {
	haproxy  string
	duration time.Duration
	probe    *probe.Result
	// written is how long the server took to write the answer to its
	// first connection, HAProxy's first check, or to find that the check
	// had closed the connection before the answer's end.
	mu      sync.Mutex
	written time.Duration
	writes  int
}

// wrote records how long the server took to write the answer once.
func (r *answerResult) wrote(took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writes == 0 {
		r.written = took
	}
	r.writes++
}

func (c *answerCase) mode() string {
	if c.split {
		return "split"
	}
	return "whole"
}

// TestEveryAnswerHAProxyAndProbeAgree serves every answer of h2answer's
// catalog and its exotic ones, whole and split at every byte where a
// check decides, to the generated fragments of both kinds of check, in
// real HAProxy and in the probe. Both must give every answer the same
// status; a healthy call must pass (L7OK), a not-serving one drain
// (L7OKC), and a failed one never pass; an answer that ends the call must
// be judged once it has arrived (within judgeSlack of its last byte), not
// at the check's timeout. Exotic answers, which the checks need not read
// as a gRPC client does, must only get the same status from both and never
// pass a failed call. Where the status is what a gRPC client makes of the
// answer, the probe must not report that it reads the answer otherwise.
// It prints a table of the statuses.
func TestEveryAnswerHAProxyAndProbeAgree(t *testing.T) {
	kinds := answerKinds(t)
	var cases []*answerCase
	for _, split := range []bool{false, true} {
		base := 1
		if split {
			base = splitBase
		}
		i := 0
		for _, set := range []struct {
			answers []h2answer.Answer
			exotic  bool
		}{{h2answer.Catalog(), false}, {h2answer.Exotic(), true}} {
			for _, a := range set.answers {
				cases = append(cases, &answerCase{answer: a, exotic: set.exotic, split: split,
					ip: fmt.Sprintf("%s%d", answersSubnet, base+i)})
				i++
			}
		}
		if base+i > 255 || !split && i >= splitBase {
			t.Fatalf("%d answers do not fit in %s0/24", i, answersSubnet)
		}
	}
	var ips []string
	for _, c := range cases {
		ips = append(ips, c.ip)
	}
	for i := range kinds {
		for {
			kinds[i].port = testenv.FreePort(t, ips)
			if i == 0 || kinds[i].port != kinds[0].port {
				break
			}
		}
	}
	for _, c := range cases {
		for _, k := range kinds {
			r := &answerResult{}
			c.results = append(c.results, r)
			h2answer.Serve(t, c.answer, k.msgs, h2answer.ServeOptions{
				Addr: net.JoinHostPort(c.ip, k.port), Split: c.split, Within: splitWithin, Written: r.wrote,
			})
		}
	}

	// One HAProxy checks each group of answers; all run at once, each
	// finding its servers through its own DNS server.
	start := time.Now()
	var wg sync.WaitGroup
	for g := range slices.Chunk(cases, answersGroupSize) {
		hap := startAnswersHAProxy(t, kinds, g)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := firstAnswerChecks(hap, kinds, g, 20*time.Second); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	t.Logf("HAProxy's first checks of %d answers took %v", len(cases)*len(kinds), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	probeAnswers(t, kinds, cases, 16)
	t.Logf("the probes took %v", time.Since(start).Round(time.Millisecond))

	for _, c := range cases {
		for i, k := range kinds {
			judgeAnswer(t, k, c, c.results[i])
		}
	}
	t.Logf("HAProxy's status / the probe's, HAProxy's check duration:\n%s", answersTable(kinds, cases))
	// The probe says what the rules cannot see where its reading of the
	// answer as a gRPC client differs from the status.
	var unseen, offhand []string
	for _, c := range cases {
		for i, k := range kinds {
			r := c.results[i]
			if r.probe == nil || r.probe.Verdict.Unseen == "" {
				continue
			}
			line := fmt.Sprintf("%s, %s, %s: %s: %s", c.answer.Name, k.name, c.mode(), r.probe.Verdict.HAProxy, r.probe.Verdict.Unseen)
			if statusMeans(r.probe.Verdict.HAProxy.String()) == c.answer.Want {
				offhand = append(offhand, line)
			} else {
				unseen = append(unseen, line)
			}
		}
	}
	if len(unseen) > 0 {
		t.Logf("where the checks judge otherwise than a gRPC client, the probe explains:\n%s", strings.Join(unseen, "\n"))
	}
	if len(offhand) > 0 {
		t.Errorf("the probe reports a difference from a gRPC client where the status agrees with the client's verdict:\n%s", strings.Join(offhand, "\n"))
	}
}

// statusMeans is the verdict of a gRPC client that a check status stands
// for.
func statusMeans(status string) h2answer.Verdict {
	switch status {
	case "L7OK":
		return h2answer.Healthy
	case "L7OKC":
		return h2answer.NotServing
	}
	return h2answer.Failed
}

// answerKinds generates both kinds of check with real protoc and the
// plugin, and reads their fragments.
func answerKinds(t *testing.T) []answerKind {
	t.Helper()
	source := fmt.Sprintf(answersProtos, answersInter.Milliseconds(), answersTimeout.Milliseconds(), answersGroupSize)
	out := generateProtos(t, testenv.BuildPlugin(t), "", map[string]string{"answers/answers.proto": source})
	kinds := []answerKind{
		{name: "grpc.health.v1", backend: "answers_health", envVar: "ANSWERS_HEALTH_SERVERS", file: "answers.Greeter.cfg"},
		{name: "health RPC", backend: "answers_rpc", envVar: "ANSWERS_RPC_SERVERS", file: "answers.Status.cfg"},
	}
	for i := range kinds {
		k := &kinds[i]
		k.file = filepath.Join(out, "haproxy", k.file)
		text, err := os.ReadFile(k.file)
		if err != nil {
			t.Fatal(err)
		}
		k.f = parseFragment(t, text)
		if k.f.Contract == nil || k.f.Contract.NotServing == nil || !k.f.Contract.NotServingDrains {
			t.Fatalf("%s: the fragment's contract line names no not-serving response that drains: %+v", k.file, k.f.Contract)
		}
		k.msgs = h2answer.Messages{Healthy: k.f.Contract.Healthy, NotServing: k.f.Contract.NotServing}
	}
	return kinds
}

// startAnswersHAProxy runs HAProxy on both kinds' fragments, with a DNS
// server that resolves their servers' name to the group's addresses.
func startAnswersHAProxy(t *testing.T, kinds []answerKind, group []*answerCase) *haproxytest.HAProxy {
	t.Helper()
	const name = "answers.test"
	dns := dnstest.Start(t)
	var ips []net.IP
	for _, c := range group {
		ips = append(ips, net.ParseIP(c.ip))
	}
	dns.Set(name, ips...)
	var fragments, env []string
	for _, k := range kinds {
		fragments = append(fragments, k.file)
		env = append(env, k.envVar+"="+net.JoinHostPort(name, k.port))
	}
	return haproxytest.Run(t, dns.Addr, "", fragments, env)
}

// firstAnswerChecks waits, at most timeout, until HAProxy has completed a
// check of every server of the group with each kind, and records each
// one's first status and duration.
func firstAnswerChecks(hap *haproxytest.HAProxy, kinds []answerKind, group []*answerCase, timeout time.Duration) error {
	type slot struct {
		c    *answerCase
		kind int
	}
	pending := map[string]slot{} // by backend and address
	for _, c := range group {
		for i, k := range kinds {
			pending[k.backend+" "+net.JoinHostPort(c.ip, k.port)] = slot{c, i}
		}
	}
	deadline := time.Now().Add(timeout)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			var missing []string
			for key, s := range pending {
				missing = append(missing, fmt.Sprintf("%s (%s, %s)", key, s.c.answer.Name, s.c.mode()))
			}
			slices.Sort(missing)
			return fmt.Errorf("HAProxy did not complete a check within %v of %s", timeout, strings.Join(missing, ", "))
		}
		for _, k := range kinds {
			servers, err := hap.Servers(k.backend)
			if err != nil {
				return err
			}
			for _, s := range servers {
				key := k.backend + " " + s.Addr
				sl, ok := pending[key]
				if !ok || !strings.HasPrefix(s.CheckStatus, "L") && s.CheckStatus != "SOCKERR" {
					continue
				}
				sl.c.results[sl.kind].haproxy = s.CheckStatus
				sl.c.results[sl.kind].duration = s.CheckDuration
				delete(pending, key)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return nil
}

// probeAnswers probes every case with each kind's fragment, workers at a
// time.
func probeAnswers(t *testing.T, kinds []answerKind, cases []*answerCase, workers int) {
	type job struct {
		c    *answerCase
		kind int
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				k := kinds[j.kind]
				res, err := probe.Run(context.Background(), k.f, net.JoinHostPort(j.c.ip, k.port), probe.Options{})
				if err != nil {
					t.Errorf("%s, %s, %s: the probe could not run: %v", j.c.answer.Name, k.name, j.c.mode(), err)
					continue
				}
				j.c.results[j.kind].probe = res
			}
		}()
	}
	for _, c := range cases {
		for i := range kinds {
			jobs <- job{c, i}
		}
	}
	close(jobs)
	wg.Wait()
}

// judgeAnswer checks what HAProxy and the probe made of one answer with
// one kind of check.
func judgeAnswer(t *testing.T, k answerKind, c *answerCase, r *answerResult) {
	t.Helper()
	if r.haproxy == "" || r.probe == nil {
		return // reported already
	}
	name := fmt.Sprintf("%s, %s, %s", c.answer.Name, k.name, c.mode())
	if c.exotic {
		name = "exotic " + name
	}
	probeStatus := r.probe.Verdict.HAProxy.String()
	var problems []string
	if r.haproxy != probeStatus {
		problems = append(problems, "HAProxy and the probe disagree")
	}
	for _, status := range []string{r.haproxy, probeStatus} {
		switch want := c.answer.Want; {
		case want == h2answer.Failed && (status == "L7OK" || status == "L7OKC"):
			problems = append(problems, fmt.Sprintf("%s passes a failed call", status))
		case c.exotic:
		case want == h2answer.Healthy && status != "L7OK":
			problems = append(problems, fmt.Sprintf("%s for a healthy call, want L7OK", status))
		case want == h2answer.NotServing && status != "L7OKC":
			problems = append(problems, fmt.Sprintf("%s for a not-serving call, want L7OKC (drain)", status))
		case c.answer.EndsCall && status == "L7TOUT":
			problems = append(problems, "L7TOUT for an answer that ends the call")
		}
	}
	r.mu.Lock()
	written := r.written
	r.mu.Unlock()
	if !c.exotic && c.answer.EndsCall && r.duration > written+judgeSlack {
		problems = append(problems, fmt.Sprintf("HAProxy took %v to judge an answer that ends the call, written in %v, with a timeout of %v", r.duration, written, answersTimeout))
	}
	if len(problems) == 0 {
		return
	}
	slices.Sort(problems)
	problems = slices.Compact(problems)
	answer := c.answer.Bytes(k.msgs)
	shown := hex.EncodeToString(answer[:min(len(answer), 512)])
	if len(answer) > 512 {
		shown += fmt.Sprintf("... (%d bytes)", len(answer))
	}
	var rules []string
	for _, rr := range r.probe.Rules {
		rules = append(rules, fmt.Sprintf("%s: %.80s", rr.Outcome, rr.Rule))
	}
	t.Errorf("%s: %s\n  HAProxy %s in %v (the answer written in %v); probe %s in %.1fms (%s: %s)\n  unseen: %s\n  answer: %s\n  probe's rules:\n    %s",
		name, strings.Join(problems, "; "), r.haproxy, r.duration, written, probeStatus, r.probe.DurationMS,
		r.probe.Verdict.Class, r.probe.Verdict.Reason, r.probe.Verdict.Unseen, shown, strings.Join(rules, "\n    "))
}

// answersTable prints HAProxy's and the probe's status of every answer
// with each kind of check, whole and split.
func answersTable(kinds []answerKind, cases []*answerCase) string {
	type key struct {
		name  string
		split bool
	}
	byKey := map[key]*answerCase{}
	var names []*answerCase
	for _, c := range cases {
		byKey[key{c.answer.Name, c.split}] = c
		if !c.split {
			names = append(names, c)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-56s %-13s", "answer", "want")
	for _, k := range kinds {
		for _, mode := range []string{"whole", "split"} {
			fmt.Fprintf(&b, " %-22s", k.name+" "+mode)
		}
	}
	b.WriteString("\n")
	for _, c := range names {
		want := c.answer.Want.String()
		if !c.answer.EndsCall {
			want += ", open"
		}
		name := c.answer.Name
		if c.exotic {
			name += " (exotic)"
		}
		fmt.Fprintf(&b, "%-56s %-13s", name, want)
		for i := range kinds {
			for _, split := range []bool{false, true} {
				r := byKey[key{c.answer.Name, split}].results[i]
				probeStatus := "-"
				if r.probe != nil {
					probeStatus = r.probe.Verdict.HAProxy.String()
				}
				fmt.Fprintf(&b, " %-22s", fmt.Sprintf("%s/%s %dms", r.haproxy, probeStatus, r.duration.Milliseconds()))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
