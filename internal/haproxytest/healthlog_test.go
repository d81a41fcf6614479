package haproxytest

import (
	"testing"
	"time"
)

// TestHealthChecks reads checks from log lines of HAProxy 2.6 and 3.2:
// the raw lines only, of the server asked for, with the status that each
// reason stands for.
func TestHealthChecks(t *testing.T) {
	h := &HAProxy{}
	h.log.Write([]byte(`[WARNING]  (21757) : Health check for server greeter/srv12 failed, reason: Layer4 connection problem, info: "Connection refused at step 1 of tcp-check (connect) comment: 'connect'", check duration: 0ms, status: 1/2 UP.
Health check for server greeter/srv12 failed, reason: Layer4 connection problem, info: "Connection refused at step 1 of tcp-check (connect) comment: 'connect'", check duration: 0ms, status: 1/2 UP.
Health check for server greeter/srv2 failed, reason: Layer7 invalid response, info: "not a successful call, with \"quotes\"", check duration: 5ms, status: 1/2 UP.
Health check for server greeter/srv12 conditionally succeeded, reason: Layer7 check conditionally passed, code: 0, info: "draining it", check duration: 12ms, status: 2/2 UP.
Server greeter/srv12 is DOWN, reason: Layer7 timeout, check duration: 2000ms. 9 active and 0 backup servers left.
Health check for server greeter/srv12 failed, reason: Layer7 timeout, info: " at step 3 of tcp-check (expect regex)", check duration: 2000ms, status: 0/2 DOWN.
`))
	got := h.HealthChecks("greeter", "srv12")
	want := []HealthCheck{
		{Result: "failed", Status: "L4CON", Reason: "Layer4 connection problem", Duration: 0, Health: "1/2 UP"},
		{Result: "conditionally succeeded", Status: "L7OKC", Reason: "Layer7 check conditionally passed, code: 0", Duration: 12 * time.Millisecond, Health: "2/2 UP"},
		{Result: "failed", Status: "L7TOUT", Reason: "Layer7 timeout", Duration: 2 * time.Second, Health: "0/2 DOWN"},
	}
	if len(got) != len(want) {
		t.Fatalf("HealthChecks: %d checks, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		w.Backend, w.Server, w.Line = "greeter", "srv12", g.Line
		if g != w {
			t.Errorf("check %d: %+v, want %+v", i, g, w)
		}
	}
	if got := h.HealthChecks("greeter", "srv2"); len(got) != 1 || got[0].Status != "L7RSP" || got[0].Duration != 5*time.Millisecond {
		t.Errorf("HealthChecks of srv2: %+v", got)
	}
}
