package deploy_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
)

// outcome is what the load client and HAProxy saw during one event of a
// scenario: from its start until the next event's.
type outcome struct {
	event, stack, mode string
	// calls is how many calls started during the event, and failed how
	// many of them failed, by code.
	calls  int
	failed map[codes.Code]int
	// excused is how many of the failed calls were in flight on the
	// killed server's connections when it was killed, and reconnecting how
	// many of those a client made while it reconnected after its
	// connection to the killed server broke.
	excused, reconnecting int
	// drainNOLB is, for each server drained, the time from its SIGTERM
	// until HAProxy was seen reporting it NOLB, and drainLastCall until
	// the start of the last call it answered.
	drainNOLB, drainLastCall []time.Duration
	// dnsUp is, for each server added, the time from its appearance in
	// DNS until HAProxy was seen reporting it UP, and dnsFirstCall until
	// the start of the first call it answered; readyFirstCall is from
	// when it was ready (listening and serving) until that call.
	dnsUp, dnsFirstCall, readyFirstCall []time.Duration
	// maxLatency is the longest call.
	maxLatency time.Duration
	// notes say what else was seen.
	notes []string
}

// eventOrder is the order of the table's rows within a scenario.
var eventOrder = []string{steady, rollingRestart, scaleOut, scaleIn, crash, scaleOutNotListening, scaleOutNotServing}

// required reports whether no call may fail in the event, other than
// those the crash excuses: every event but the early scale-outs, which
// must cost nothing only where servers start DOWN.
func (s *scenario) required(event string) bool {
	return s.frag.initDown || (event != scaleOutNotListening && event != scaleOutNotServing)
}

// outcomes judges the scenario from the load client's records, HAProxy's
// states and log, and the servers' logs, fails the test where a required
// outcome did not hold, and returns a row per event.
//
// A call belongs to the event during which it started. A failed call is
// excused by a crash, and counted in the crash's row, when it was in flight
// on the killed server's connections when the server was killed: it started
// before the server was gone and ended after it was sent SIGKILL, and, in
// mode tcp, where HAProxy sends a connection to one server, it was on a
// connection to the killed server: one whose calls the killed server
// answered, or that HAProxy's log shows forwarded to the killed server's
// address; or, in mode http, HAProxy sent it after the kill on a connection
// to the killed server that it had not yet seen closed. In mode tcp a
// client whose connection to the killed server
// broke (the one it had, or one HAProxy sent there in the milliseconds the
// dying process still accepted) fails its calls at once until it has
// reconnected (grpc-go's fail-fast calls during its reconnect backoff):
// those are excused too, and counted apart. Every other failed call fails
// the test, but in the early scale-outs before HAProxy 3.2, which are
// measured only.
func (s *scenario) outcomes() []outcome {
	t := s.t
	calls := s.load.records()
	conns := s.connections()
	httpCalls := s.httpCalls()
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, c := range calls {
		if c.server == "" {
			continue
		}
		if f, ok := first[c.server]; !ok || c.start.Before(f) {
			first[c.server] = c.start
		}
		if c.start.After(last[c.server]) {
			last[c.server] = c.start
		}
	}
	rows := make([]outcome, len(s.events))
	for i, e := range s.events {
		rows[i] = outcome{event: e.name, stack: string(s.stack), mode: s.mode.name, failed: map[codes.Code]int{}}
	}
	excusedBy := func(c callRecord) (int, bool) {
		for i, e := range s.events {
			if e.killed == nil {
				continue
			}
			if s.inFlightOnKilled(c, e.killed, calls, conns) || s.sentOnKilled(c, e.killed, httpCalls) {
				return i, false
			}
			if s.reconnecting(c, e.killed, calls, conns) {
				return i, true
			}
		}
		return -1, false
	}
	unexcused := make([][]callRecord, len(s.events))
	for _, c := range calls {
		i := s.eventAt(c.start)
		o := &rows[i]
		o.calls++
		o.maxLatency = max(o.maxLatency, c.end.Sub(c.start))
		if !c.failed() {
			continue
		}
		if k, reconnecting := excusedBy(c); k >= 0 {
			rows[k].failed[c.code]++
			rows[k].excused++
			if reconnecting {
				rows[k].reconnecting++
			}
			continue
		}
		o.failed[c.code]++
		unexcused[i] = append(unexcused[i], c)
	}

	for i, e := range s.events {
		o := &rows[i]
		if o.calls == 0 {
			t.Errorf("%s: no call started during the event", e.name)
		}
		if len(unexcused[i]) > 0 {
			report := t.Errorf
			if !s.required(e.name) {
				report = t.Logf
				o.notes = append(o.notes, "failures measured, not required before HAProxy 3.2")
			}
			report("%s on %s, mode %s: %d calls failed (%s):\n%s", e.name, s.stack, s.mode.name, len(unexcused[i]), codesText(o.failed),
				s.describe(unexcused[i], e, calls, conns))
		}
		for _, d := range e.drains {
			if at, ok := s.watch.firstSeen(d.addr, "NOLB", d.term); ok && at.Before(d.exited) {
				o.drainNOLB = append(o.drainNOLB, at.Sub(d.term))
			} else {
				o.notes = append(o.notes, fmt.Sprintf("%s never seen NOLB (%s)", d.id, s.watch.history(d.addr, d.term)))
			}
			l, ok := last[d.id]
			if !ok {
				t.Errorf("%s: the drained server %s answered no call, so its drain proves nothing", e.name, d.id)
				continue
			}
			o.drainLastCall = append(o.drainLastCall, l.Sub(d.term))
		}
		for _, a := range e.added {
			if at, ok := s.watch.firstSeen(a.addr, "UP", a.inDNS); ok {
				o.dnsUp = append(o.dnsUp, at.Sub(a.inDNS))
			}
			if f, ok := first[a.id]; ok {
				o.dnsFirstCall = append(o.dnsFirstCall, f.Sub(a.inDNS))
				o.readyFirstCall = append(o.readyFirstCall, f.Sub(a.ready))
			}
		}
		s.judgeEarlyCalls(o, e)
		if k := e.killed; k != nil {
			o.notes = append(o.notes, fmt.Sprintf("%d failed calls in flight on %s's connections when it was killed, %d of them while a client reconnected after its connection to it broke",
				o.excused, k.id, o.reconnecting))
			if s.mode.name == "tcp" {
				o.notes = append(o.notes, fmt.Sprintf("HAProxy sent it %d new connections after SIGKILL", len(reachedAfterKill(k, conns))))
			}
		}
	}
	return rows
}

// eventAt returns the index of the event during which at falls.
func (s *scenario) eventAt(at time.Time) int {
	i := 0
	for i+1 < len(s.events) && !at.Before(s.events[i+1].start) {
		i++
	}
	return i
}

// inFlightOnKilled reports whether the failed call c was in flight on the
// killed server's connections when it was killed (see outcomes); conns
// maps a connection's client address to the server address HAProxy sent
// it to.
func (s *scenario) inFlightOnKilled(c callRecord, k *killed, calls []callRecord, conns map[string]frontendConn) bool {
	if !c.start.Before(k.dead) || c.end.Before(k.signalled) {
		return false
	}
	if s.mode.name != "tcp" {
		return true
	}
	if c.local == "" {
		return false
	}
	if conns[c.local].server == k.addr {
		return true
	}
	for _, other := range calls {
		if other.local == c.local && other.server == k.id {
			return true
		}
	}
	return false
}

// reconnecting reports whether, in mode tcp, the failed call c ended after
// k was sent SIGKILL, a connection of its client went to the killed
// server (the one it had when k was killed, or one it dialed after:
// HAProxy sends a new connection to the dying process for the
// milliseconds it still accepts), and no call of its client succeeded on
// another server since that connection broke for it: at SIGKILL, or when
// HAProxy accepted the later one. The client was reconnecting after its
// connection to the killed server broke. (The dying process itself still
// answers calls until it is gone.)
func (s *scenario) reconnecting(c callRecord, k *killed, calls []callRecord, conns map[string]frontendConn) bool {
	if s.mode.name != "tcp" || c.end.Before(k.signalled) {
		return false
	}
	var earlier []*callRecord // the calls of the client before c
	for i := range calls {
		if o := &calls[i]; o.worker == c.worker && o.start.Before(c.start) {
			earlier = append(earlier, o)
		}
	}
	toKilled := func(local string) bool { return local != "" && conns[local].server == k.addr }
	broken, since := false, k.signalled
	brokeOn := func(local string) {
		if toKilled(local) {
			broken = true
			if accepted := conns[local].accepted; accepted.After(since) {
				since = accepted
			}
		}
	}
	brokeOn(c.local)
	brokeOn(c.dialed)
	for _, o := range earlier {
		if o.end.After(k.signalled) {
			brokeOn(o.dialed)
		}
	}
	var last *callRecord // the last call of the client before c on a connection
	for _, o := range earlier {
		if !o.failed() && o.end.After(since) && o.server != k.id {
			return false // the client had recovered
		}
		if o.local != "" && (last == nil || o.start.After(last.start)) {
			last = o
		}
	}
	return broken || last != nil && (last.server == k.id || toKilled(last.local))
}

// sentOnKilled reports whether, in mode http, HAProxy sent the failed call
// c, after k was killed, on a connection to the killed server that it had
// not yet seen closed: it answered 502 as the server hung up (state SH),
// with no time to connect (a connection it reused).
func (s *scenario) sentOnKilled(c callRecord, k *killed, logged []httpCall) bool {
	if s.mode.name != "http" || c.end.Before(k.signalled) {
		return false
	}
	// HAProxy dates a call with the time of its event loop, which may lag
	// the client's clock by a few milliseconds under load.
	const slack = 50 * time.Millisecond
	for _, l := range logged {
		if l.client == c.local && l.server == k.addr && l.status == 502 && strings.HasPrefix(l.state, "SH") &&
			!l.accepted.Before(c.start.Add(-slack)) && !l.accepted.After(c.end.Add(slack)) {
			return true
		}
	}
	return false
}

// httpCall is a call that HAProxy logged in mode http: one that did not
// end normally.
type httpCall struct {
	client, server string
	accepted       time.Time
	status         int
	state          string
}

// httpCalls reads, in mode http, HAProxy's log line of every call that did
// not end normally (see modes).
func (s *scenario) httpCalls() []httpCall {
	var logged []httpCall
	for _, line := range strings.Split(s.hap.Log(), "\n") {
		// call CLIENT server SERVER accepted UNIX.MS status STATUS state STATE
		f := strings.Fields(line)
		if len(f) != 10 || f[0] != "call" || f[2] != "server" || f[4] != "accepted" || f[6] != "status" || f[8] != "state" {
			continue
		}
		accepted, err1 := parseUnixMillis(f[5])
		status, err2 := strconv.Atoi(f[7])
		if err1 != nil || err2 != nil {
			s.t.Errorf("HAProxy's log line %q: bad date or status", line)
			continue
		}
		logged = append(logged, httpCall{client: f[1], server: f[3], accepted: accepted, status: status, state: f[9]})
	}
	return logged
}

// parseUnixMillis reads HAProxy's %Ts.%ms, seconds and milliseconds since
// the epoch.
func parseUnixMillis(s string) (time.Time, error) {
	sec, msec, _ := strings.Cut(s, ".")
	unix, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	ms, err := strconv.ParseInt(msec, 10, 64)
	return time.Unix(unix, ms*int64(time.Millisecond)), err
}

// frontendConn is a connection to HAProxy's frontend in mode tcp, as
// HAProxy logged it when it ended.
type frontendConn struct {
	// client is the client's address, server the address of the server
	// HAProxy sent the connection to (the last it tried).
	client, server string
	// accepted is when HAProxy accepted it.
	accepted time.Time
	// state is HAProxy's termination state: "--" when it ended normally,
	// "SD" when the server closed it, "SC" when no server could be
	// connected to, and so on.
	state string
}

// connections reads, in mode tcp, HAProxy's log line of every frontend
// connection (see modes), by client address.
func (s *scenario) connections() map[string]frontendConn {
	conns := map[string]frontendConn{}
	for _, line := range strings.Split(s.hap.Log(), "\n") {
		// conn CLIENT server SERVER accepted UNIX.MS state STATE
		f := strings.Fields(line)
		if len(f) != 8 || f[0] != "conn" || f[2] != "server" || f[4] != "accepted" || f[6] != "state" {
			continue
		}
		accepted, err := parseUnixMillis(f[5])
		if err != nil {
			s.t.Errorf("HAProxy's log line %q: bad accept date", line)
			continue
		}
		conns[f[1]] = frontendConn{client: f[1], server: f[3], accepted: accepted, state: f[7]}
	}
	return conns
}

// reachedAfterKill returns the frontend connections that HAProxy sent to
// the killed server's address after it was sent SIGKILL and before it was
// started again, in mode tcp.
func reachedAfterKill(k *killed, conns map[string]frontendConn) []frontendConn {
	var late []frontendConn
	for _, c := range conns {
		// HAProxy logs the accept date to the millisecond.
		if c.server == k.addr && !c.accepted.Before(k.signalled.Truncate(time.Millisecond)) && c.accepted.Before(k.restarted) {
			late = append(late, c)
		}
	}
	slices.SortFunc(late, func(a, b frontendConn) int { return a.accepted.Compare(b.accepted) })
	return late
}

// judgeEarlyCalls counts, in the log of a server that an event added, the
// calls it answered before it was ready: before HAProxy's first check of
// it, or before it began to serve. Where servers start DOWN there must be
// none.
func (s *scenario) judgeEarlyCalls(o *outcome, e *event) {
	var marker, what string
	switch e.name {
	case scaleOut:
		marker, what = `"method":"/grpc.health.v1.Health/Check"`, "before HAProxy's first check"
	case scaleOutNotServing:
		marker, what = "serving true", "before it served"
	default:
		return
	}
	early, seen := 0, false
	for _, line := range strings.Split(e.log, "\n") {
		if strings.Contains(line, marker) {
			seen = true
			break
		}
		if strings.Contains(line, `"method":"/helloworld.Greeter/SayHello"`) {
			early++
		}
	}
	if !seen {
		s.t.Errorf("%s: the added server's log has no %q:\n%s", e.name, marker, e.log)
		return
	}
	o.notes = append(o.notes, fmt.Sprintf("%d calls answered %s", early, what))
	if early > 0 && s.frag.initDown {
		s.t.Errorf("%s: the added server answered %d calls %s, though it starts DOWN (init-state down)", e.name, early, what)
	}
}

// describe lists failed calls for a message: when each started and ended
// against the event, its connection and the server HAProxy sent that to,
// its code and message, and the caller's call before it; then what
// happened to the servers in the event.
func (s *scenario) describe(failed []callRecord, e *event, calls []callRecord, conns map[string]frontendConn) string {
	var b strings.Builder
	rel := func(at time.Time) time.Duration { return at.Sub(e.start).Round(time.Millisecond) }
	for i, c := range failed {
		if i == 20 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(failed)-i)
			break
		}
		fmt.Fprintf(&b, "  worker %d on %q (to %q), dialed %q (to %q): +%v to +%v: %v: %s\n", c.worker, c.local, conns[c.local].server,
			c.dialed, conns[c.dialed].server, rel(c.start), rel(c.end), c.code, c.message)
		var before *callRecord
		for j := range calls {
			if o := &calls[j]; o.worker == c.worker && o.start.Before(c.start) && (before == nil || o.start.After(before.start)) {
				before = o
			}
		}
		if before != nil {
			fmt.Fprintf(&b, "    its call before: on %q (to %q): +%v to +%v: %v %s\n", before.local, conns[before.local].server, rel(before.start), rel(before.end), before.code, before.server)
		}
	}
	for _, d := range e.drains {
		fmt.Fprintf(&b, "  drained %s: SIGTERM at +%v, exited at +%v; HAProxy: %s\n", d.id, rel(d.term), rel(d.exited), s.watch.history(d.addr, e.start))
	}
	for _, a := range e.added {
		fmt.Fprintf(&b, "  added %s: in DNS at +%v, ready at +%v; HAProxy: %s\n", a.id, rel(a.inDNS), rel(a.ready), s.watch.history(a.addr, e.start))
	}
	if k := e.killed; k != nil {
		fmt.Fprintf(&b, "  killed %s: SIGKILL at +%v, gone at +%v\n", k.id, rel(k.signalled), rel(k.dead))
		for _, c := range reachedAfterKill(k, conns) {
			fmt.Fprintf(&b, "    HAProxy sent it a connection from %s accepted at +%v (to the ms), which ended %s\n", c.client, rel(c.accepted), c.state)
		}
	}
	if i := slices.Index(s.events, e); i+1 < len(s.events) {
		fmt.Fprintf(&b, "  next event, %s, at +%v\n", s.events[i+1].name, rel(s.events[i+1].start))
	}
	return b.String()
}

// codesText formats counts of codes as "Unavailable×3", sorted.
func codesText(counts map[codes.Code]int) string {
	var parts []string
	for code, n := range counts {
		parts = append(parts, fmt.Sprintf("%v×%d", code, n))
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// durationsText formats durations in seconds, "–" when there are none.
func durationsText(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2fs", d.Seconds()))
	}
	return strings.Join(parts, " ")
}

// String renders the table: a row per event, stack and mode.
func (r *resultTable) String() string {
	r.mu.Lock()
	rows := slices.Clone(r.rows)
	r.mu.Unlock()
	stackIndex := func(name string) int { return slices.Index(stacktest.Stacks, stacktest.Stack(name)) }
	slices.SortStableFunc(rows, func(a, b outcome) int {
		if c := slices.Index(eventOrder, a.event) - slices.Index(eventOrder, b.event); c != 0 {
			return c
		}
		if c := stackIndex(a.stack) - stackIndex(b.stack); c != 0 {
			return c
		}
		return strings.Compare(b.mode, a.mode) // tcp, then http
	})
	header := []string{"event", "stack", "mode", "calls", "failed", "drain→NOLB", "drain→last new call", "in DNS→UP", "in DNS→first call", "ready→first call", "max latency", "notes"}
	cells := [][]string{header}
	for _, o := range rows {
		failed := codesText(o.failed)
		if o.excused > 0 {
			failed += fmt.Sprintf(" (%d in flight on the killed server)", o.excused)
		}
		cells = append(cells, []string{o.event, o.stack, o.mode, fmt.Sprint(o.calls), failed,
			durationsText(o.drainNOLB), durationsText(o.drainLastCall), durationsText(o.dnsUp), durationsText(o.dnsFirstCall),
			durationsText(o.readyFirstCall), fmt.Sprintf("%.0fms", float64(o.maxLatency)/float64(time.Millisecond)), strings.Join(o.notes, "; ")})
	}
	widths := make([]int, len(header))
	for _, row := range cells {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	for _, row := range cells {
		for i, c := range row {
			if i > 0 {
				b.WriteString(" | ")
			}
			if i == len(row)-1 {
				b.WriteString(c)
				continue
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))))
		}
		b.WriteString("\n")
	}
	return b.String()
}
