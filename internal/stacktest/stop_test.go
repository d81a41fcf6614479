package stacktest

import (
	"syscall"
	"testing"
	"time"
)

// TestSecondSIGTERM stops a draining server with a second SIGTERM, which
// must stop it at once and cleanly.
func TestSecondSIGTERM(t *testing.T) {
	for _, stack := range Stacks {
		t.Run(string(stack), func(t *testing.T) {
			t.Parallel()
			s := Start(t, stack, Options{DrainTime: time.Minute})
			s.Terminate(t)
			start := time.Now()
			if err := s.proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			s.WaitExit(t, 10*time.Second)
			t.Logf("exited %v after the second SIGTERM", time.Since(start))
		})
	}
}
