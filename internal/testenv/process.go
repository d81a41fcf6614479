package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// killWait bounds how long Process.Wait waits for a process to be gone
// after SIGKILL.
const killWait = 5 * time.Second

// Process is a program that a test started.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // how the process exited, once done is closed
}

// StartProcess starts cmd, failing the test with what ("haproxy", "the
// grpc-js server") if it cannot, and stops it when the test ends as Stop
// does with stop and grace. Cleanups that the test registers after
// StartProcess run before that stop: one that must see the process gone
// is registered before.
func StartProcess(t testing.TB, what string, cmd *exec.Cmd, stop os.Signal, grace time.Duration) *Process {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop(stop, grace) })
	return p
}

// Done returns a channel that is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and if so how: nil for
// status 0.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends the process sig.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends the process sig, unless it has exited, and waits for it as
// Wait does.
func (p *Process) Stop(sig os.Signal, grace time.Duration) bool {
	if exited, _ := p.Exited(); exited {
		return true
	}
	_ = p.Signal(sig)
	return p.Wait(grace)
}

// Wait waits, at most timeout, until the process exits; if it has not,
// Wait kills it and waits, at most 5 s more, until it is gone. It reports
// whether the process exited within timeout.
func (p *Process) Wait(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(killWait):
	}
	return false
}

// WaitAccepting waits, at most timeout, until the TCP address addr accepts
// connections, and fails the test, naming what listens there, if it does
// not.
func WaitAccepting(t testing.TB, what, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s did not accept connections within %v: %v", what, addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Output collects what a process writes to its standard output and
// error, for a test to read while the process still writes.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns what has been written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
