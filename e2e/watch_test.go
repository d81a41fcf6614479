package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
)

// stateWatch records every state HAProxy reports for the servers of some
// backends, from when the watch starts until the test asks.
type stateWatch struct {
	hap        *haproxytest.HAProxy
	backends   []string
	stop, done chan struct{}
	mu         sync.Mutex
	states     map[[2]string][]haproxytest.Server // by backend and address
}

// watchBackends polls the servers of backends every 50 ms until the test
// ends.
func watchBackends(t *testing.T, hap *haproxytest.HAProxy, backends ...string) *stateWatch {
	w := &stateWatch{hap: hap, backends: backends, stop: make(chan struct{}), done: make(chan struct{}), states: map[[2]string][]haproxytest.Server{}}
	go func() {
		defer close(w.done)
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.finish)
	return w
}

// sample records the current state of every server.
func (w *stateWatch) sample() {
	for _, b := range w.backends {
		servers, err := w.hap.Servers(b)
		if err != nil {
			continue
		}
		w.mu.Lock()
		for _, s := range servers {
			if s.Addr != "" {
				key := [2]string{b, s.Addr}
				w.states[key] = append(w.states[key], s)
			}
		}
		w.mu.Unlock()
	}
}

// finish stops the watch and waits for its last poll.
func (w *stateWatch) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// assertNeverPassed fails the test if a check ever passed the server of
// backend at addr, or if the server was UP again after its first check had
// failed. (HAProxy 2.6 counts a newly resolved server UP until its first
// check, which fails it at once.)
func (w *stateWatch) assertNeverPassed(t *testing.T, backend, addr string) {
	t.Helper()
	w.sample()
	w.mu.Lock()
	states := w.states[[2]string{backend, addr}]
	w.mu.Unlock()
	failed := false
	for _, s := range states {
		if s.CheckStatus == "L7OK" {
			t.Errorf("%s server %s: a check passed (%s, %s)", backend, addr, s.Status, s.CheckStatus)
			return
		}
		if s.Status == "DOWN" {
			failed = true
		} else if failed && s.Status != "MAINT" {
			t.Errorf("%s server %s: %s after its checks had failed", backend, addr, s.Status)
			return
		}
	}
	if !failed {
		t.Errorf("%s server %s: never DOWN in %d observations", backend, addr, len(states))
	}
}
