package haproxytest

import (
	"sync"
	"testing"
	"time"
)

// Observation is a server's state at one poll of a Watch.
type Observation struct {
	// At is when the state was read.
	At time.Time
	Server
}

// Watch records every state HAProxy reports for the servers of some
// backends, polled from when the watch starts until it stops.
type Watch struct {
	hap      *HAProxy
	backends []string
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	mu     sync.Mutex
	states map[[2]string][]Observation // by backend and address
}

// Watch polls the servers of backends every interval until Stop or the
// end of the test.
func (h *HAProxy) Watch(t testing.TB, interval time.Duration, backends ...string) *Watch {
	w := &Watch{hap: h, backends: backends, stop: make(chan struct{}), done: make(chan struct{}), states: map[[2]string][]Observation{}}
	go func() {
		defer close(w.done)
		for {
			w.Poll()
			select {
			case <-w.stop:
				return
			case <-time.After(interval):
			}
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

// Poll reads the state of every server once more.
func (w *Watch) Poll() {
	for _, b := range w.backends {
		servers, err := w.hap.Servers(b)
		if err != nil {
			continue
		}
		now := time.Now()
		w.mu.Lock()
		for _, s := range servers {
			if s.Addr != "" {
				key := [2]string{b, s.Addr}
				w.states[key] = append(w.states[key], Observation{now, s})
			}
		}
		w.mu.Unlock()
	}
}

// Stop stops the watch and waits for its last poll.
func (w *Watch) Stop() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// Observations returns what the watch has seen of the server of backend at
// addr so far, in order.
func (w *Watch) Observations(backend, addr string) []Observation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Observation(nil), w.states[[2]string{backend, addr}]...)
}

// First returns the first observation of the server of backend at addr, at
// since or later, for which match holds, and reports whether there is one.
func (w *Watch) First(backend, addr string, since time.Time, match func(Server) bool) (Observation, bool) {
	for _, o := range w.Observations(backend, addr) {
		if !o.At.Before(since) && match(o.Server) {
			return o, true
		}
	}
	return Observation{}, false
}
