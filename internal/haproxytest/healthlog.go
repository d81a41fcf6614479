package haproxytest

import (
	"regexp"
	"strconv"
	"time"
)

// HealthCheck is one check that HAProxy logged. With "option
// log-health-checks" in the backend (or the defaults it uses), HAProxy
// logs every check whose result differs from the one before and every
// check that moves the server's health: each check on the way from UP to
// DOWN or back. Without it, HAProxy logs only the changes of a server's
// state, which HealthChecks does not return.
type HealthCheck struct {
	// Backend and Server name the server.
	Backend, Server string
	// Result is "succeeded", "conditionally succeeded" or "failed".
	Result string
	// Status is the check status that the reason stands for: L7OK,
	// L7RSP, L7TOUT, L4CON...; empty for a reason not in checkReasons.
	Status string
	// Reason is HAProxy's description of the status, "Layer7 invalid
	// response", with the code HAProxy adds to some ("code: 502").
	Reason string
	// Duration is how long the check took.
	Duration time.Duration
	// Health is the server's health after the check, "1/2 UP", "0/2 DOWN".
	Health string
	// Line is the log line.
	Line string
}

// checkReasons are HAProxy's descriptions of the check statuses, as its
// logs give them.
var checkReasons = map[string]string{
	"Layer4 check passed":               "L4OK",
	"Layer4 timeout":                    "L4TOUT",
	"Layer4 connection problem":         "L4CON",
	"Layer6 check passed":               "L6OK",
	"Layer6 timeout":                    "L6TOUT",
	"Layer6 invalid response":           "L6RSP",
	"Layer7 check passed":               "L7OK",
	"Layer7 check conditionally passed": "L7OKC",
	"Layer7 timeout":                    "L7TOUT",
	"Layer7 invalid response":           "L7RSP",
	"Layer7 wrong status":               "L7STS",
	"Socket error":                      "SOCKERR",
}

// healthLine matches HAProxy's log line of a check, as the test main
// configuration logs it (on stderr, format raw), for example
//
//	Health check for server greeter/srv1 failed, reason: Layer7 invalid response, info: "...", check duration: 1ms, status: 1/2 UP.
//
// and not the copy that haproxy -db also prints with a "[WARNING]" prefix.
var healthLine = regexp.MustCompile(`(?m)^Health check for (?:backup )?server ([^/\s]+)/(\S+) (succeeded|conditionally succeeded|failed), reason: ([^,]+)(, code: \d+)?(?:, info: "(?:[^"\\]|\\.)*")?, check duration: (\d+)ms, status: (\d+/\d+ \w+)`)

// HealthChecks returns the checks of a server that HAProxy has logged so
// far, in order.
func (h *HAProxy) HealthChecks(backend, server string) []HealthCheck {
	var checks []HealthCheck
	for _, m := range healthLine.FindAllStringSubmatch(h.Log(), -1) {
		if m[1] != backend || m[2] != server {
			continue
		}
		ms, _ := strconv.Atoi(m[6])
		checks = append(checks, HealthCheck{
			Backend:  m[1],
			Server:   m[2],
			Result:   m[3],
			Status:   checkReasons[m[4]],
			Reason:   m[4] + m[5],
			Duration: time.Duration(ms) * time.Millisecond,
			Health:   m[7],
			Line:     m[0],
		})
	}
	return checks
}
