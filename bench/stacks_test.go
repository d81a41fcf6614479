package bench

import (
	"fmt"
	"net"
	"testing"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
)

// stackResult is what the driver measured on one gRPC stack.
type stackResult struct {
	// ran is whether the stack's measurements ran; a stack whose runtime
	// is missing is skipped.
	ran bool
	// variants are the answers to each request variant, by its name.
	variants map[string]checkOutcome
	// cpu is the server's CPU per check, by the check's backend.
	cpu map[string]cpuResult
	// timing is how fast HAProxy failed its checks, by the check's backend.
	timing map[string]*timingResult
}

// variantCell is the results table's cell for the answer to a request
// variant.
func (s *stackResult) variantCell(variant string) string {
	switch o := s.variants[variant]; {
	case !s.ran:
		return "not run"
	case o.healthy:
		return "healthy"
	default:
		return o.answer
	}
}

// measureStacks runs, on each stack's servers, the request variants of
// probed, the server CPU per check and HAProxy's timing, each stack in turn
// on its own loopback addresses 127.0.6N.*.
func measureStacks(t *testing.T, checks []generated, probed generated) map[stacktest.Stack]*stackResult {
	results := map[stacktest.Stack]*stackResult{}
	for i, stack := range stacktest.Stacks {
		res := &stackResult{}
		results[stack] = res
		t.Run(string(stack), func(t *testing.T) {
			subnet := fmt.Sprintf("127.0.%d.", 60+i)
			listen := subnet + "1:0"
			s := stacktest.Start(t, stack, stacktest.Options{Addr: listen})
			res.variants = variantOutcomes(t, s.Addr, probed)
			res.cpu = map[string]cpuResult{}
			pid := pidWithArg(t, listen)
			for _, g := range checks {
				res.cpu[g.backend] = serverCPU(t, pid, s.Addr, g)
			}
			s.Stop(t)
			res.timing = haproxyTiming(t, stack, subnet, checks)
			res.ran = true
		})
	}
	return results
}

// port returns the port of the address addr.
func port(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
