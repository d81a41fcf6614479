package testenv

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exitedWithin waits, at most timeout, until p has exited.
func exitedWithin(p *Process, timeout time.Duration) bool {
	select {
	case <-p.Done():
		return true
	case <-time.After(timeout):
		return false
	}
}

func TestProcessStop(t *testing.T) {
	// One that ignores the signal is killed once the grace is over.
	stubborn := exec.Command("sh", "-c", "trap '' TERM; echo ready; exec sleep 30")
	out, err := stubborn.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := StartProcess(t, "a shell that ignores SIGTERM", stubborn, syscall.SIGTERM, time.Second)
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			t.Fatalf("the shell printed %q, want ready", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shell printed nothing within 10s")
	}
	if p.Stop(syscall.SIGTERM, 200*time.Millisecond) {
		t.Error("Stop of a process that ignores SIGTERM reported it exited within the grace")
	}
	if exited, err := p.Exited(); !exited || err == nil {
		t.Errorf("after Stop: exited %t, %v; want killed", exited, err)
	}

	// One that exits on the signal does so within the grace.
	sleeper := StartProcess(t, "sleep", exec.Command("sleep", "30"), syscall.SIGTERM, time.Second)
	if !sleeper.Stop(syscall.SIGTERM, 10*time.Second) {
		t.Error("Stop of sleep on SIGTERM reported it did not exit within 10s")
	}
	if !sleeper.Stop(syscall.SIGTERM, 0) {
		t.Error("Stop of a process that has exited reported it did not exit")
	}
}

func TestProcessExited(t *testing.T) {
	ok := StartProcess(t, "true", exec.Command("true"), syscall.SIGTERM, time.Second)
	failed := StartProcess(t, "false", exec.Command("false"), syscall.SIGTERM, time.Second)
	if !exitedWithin(ok, 10*time.Second) || !exitedWithin(failed, 10*time.Second) {
		t.Fatal("true or false did not exit within 10s")
	}
	if exited, err := ok.Exited(); !exited || err != nil {
		t.Errorf("true: exited %t, %v; want status 0", exited, err)
	}
	if exited, err := failed.Exited(); !exited || err == nil {
		t.Errorf("false: exited %t, %v; want status 1", exited, err)
	}
	running := StartProcess(t, "sleep", exec.Command("sleep", "30"), syscall.SIGTERM, time.Second)
	if exited, err := running.Exited(); exited || err != nil {
		t.Errorf("sleep 30 at once: exited %t, %v; want running", exited, err)
	}
}

// TestProcessStoppedWhenTestEnds checks that a test's processes are gone
// once it has ended.
func TestProcessStoppedWhenTestEnds(t *testing.T) {
	var p *Process
	t.Run("starts sleep", func(t *testing.T) {
		p = StartProcess(t, "sleep", exec.Command("sleep", "30"), syscall.SIGTERM, 10*time.Second)
	})
	if exited, _ := p.Exited(); !exited {
		t.Error("sleep still runs after the test that started it ended")
	}
}

func TestWaitAccepting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	WaitAccepting(t, "a listener", addr, 5*time.Second)

	l.Close()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitAccepting(r, "a closed listener", addr, 200*time.Millisecond)
	}()
	<-done
	if !strings.Contains(r.fatal, "a closed listener on "+addr+" did not accept connections within 200ms") {
		t.Errorf("WaitAccepting on a closed port: fatal %q, want it to say nothing accepted", r.fatal)
	}
}
