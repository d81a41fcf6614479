package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
)

// stateWatch records every state HAProxy reports for the servers of some
// backends, from when the watch starts until the test ends.
type stateWatch struct {
	*haproxytest.Watch
}

// watchBackends polls the servers of backends every 50 ms until the test
// ends.
func watchBackends(t *testing.T, hap *haproxytest.HAProxy, backends ...string) stateWatch {
	return stateWatch{hap.Watch(t, 50*time.Millisecond, backends...)}
}

// observations returns what the watch has seen of the server of backend
// at addr, after one more poll.
func (w stateWatch) observations(backend, addr string) []haproxytest.Observation {
	w.Poll()
	return w.Observations(backend, addr)
}

// firstSince returns the first state of the server of backend at addr seen
// at or after since with the status want, without polling, and reports
// whether there is one.
func (w stateWatch) firstSince(backend, addr string, since time.Time, want string) (haproxytest.Observation, bool) {
	return w.First(backend, addr, since, func(s haproxytest.Server) bool { return s.Status == want })
}

// statusesBetween returns the statuses of the server of backend at addr
// seen from one time to another, each once, in the order first seen.
func (w stateWatch) statusesBetween(backend, addr string, from, to time.Time) []string {
	var statuses []string
	for _, o := range w.observations(backend, addr) {
		if !o.At.Before(from) && !o.At.After(to) && (len(statuses) == 0 || statuses[len(statuses)-1] != o.Status) {
			statuses = append(statuses, o.Status)
		}
	}
	return statuses
}

// assertNeverPassed fails the test if a check ever passed the server of
// backend at addr, if the server never reached the status settled ("DOWN",
// or "NOLB" for a server drained), or if it was ever UP or going up after.
// (HAProxy 2.6 counts a newly resolved server UP until its first check,
// which fails or drains it at once.) A drained server may be going down
// for a while ("NOLB 1/2"): a check that timed out, which is no pass.
func (w stateWatch) assertNeverPassed(t *testing.T, backend, addr, settled string) {
	t.Helper()
	states := w.observations(backend, addr)
	reached := false
	for _, s := range states {
		if s.CheckStatus == "L7OK" {
			t.Errorf("%s server %s: a check passed (%s, %s)", backend, addr, s.Status, s.CheckStatus)
			return
		}
		switch {
		case s.Status == settled:
			reached = true
		case !reached, s.Status == "MAINT":
		case settled == "NOLB" && strings.HasPrefix(s.Status, "NOLB "):
			t.Logf("%s server %s: %s (last check %s) after it was NOLB: a check failed", backend, addr, s.Status, s.CheckStatus)
		default:
			t.Errorf("%s server %s: %s after it was %s", backend, addr, s.Status, settled)
			return
		}
	}
	if !reached {
		t.Errorf("%s server %s: never %s in %d observations", backend, addr, settled, len(states))
	}
}
