package deploy_test

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/dnstest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/haproxytest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/testenv"
)

// The events of a scenario, in the order they happen.
const (
	steady         = "steady load"
	rollingRestart = "rolling restart"
	scaleOut       = "scale-out"
	scaleIn        = "scale-in"
	crash          = "crash"
	// Servers that DNS adds before they are ready: measured everywhere,
	// required to cost nothing where servers start DOWN (init-state).
	scaleOutNotListening = "scale-out, in DNS before listening"
	scaleOutNotServing   = "scale-out, in DNS before serving"
)

// Bounds of a scenario's waits.
const (
	upWithin   = 20 * time.Second
	downWithin = 20 * time.Second
	// exitSlack is how long a server may take to exit after its drain
	// time: its stack's graceful shutdown, bounded by the servers'
	// default grace of 10 s.
	exitSlack = 15 * time.Second
	// settle is how long the load runs between two events.
	settle = time.Second
)

// dnsName is the name that the backend's servers are found under.
const dnsName = "greeter.deploy.test"

// event is one event of a scenario, as it happened.
type event struct {
	name string
	// start is when it began; it lasts until the next one begins.
	start time.Time
	// drains are the servers stopped gracefully in it.
	drains []drained
	// added are the servers added to the backend in it.
	added []added
	// killed is the server killed in it.
	killed *killed
	// log is the server log of the server added in it, for the events
	// that judge what it received before it was ready.
	log string
}

// drained is a server stopped gracefully.
type drained struct {
	id, addr string
	// term is when it was sent SIGTERM, and exited when it had exited.
	term, exited time.Time
}

// added is a server added to the backend.
type added struct {
	id, addr string
	// inDNS is when DNS began to resolve it, and ready when it began to
	// listen and serve.
	inDNS, ready time.Time
}

// killed is a server killed with SIGKILL.
type killed struct {
	id, addr string
	// signalled is when it was sent SIGKILL, dead when it was gone, and
	// restarted when a new server began to listen at its address.
	signalled, dead, restarted time.Time
}

// slot is one address of the scenario's subnet, and the server there.
type slot struct {
	addr   string
	server *stacktest.Server
	// id is the server's ID, which names the slot and how many servers
	// it has had, gen.
	id    string
	gen   int
	inDNS bool
}

// scenario runs the events on one stack and mode.
type scenario struct {
	t      *testing.T
	stack  stacktest.Stack
	mode   backendMode
	frag   generated
	dns    *dnstest.Server
	hap    *haproxytest.HAProxy
	watch  *stateWatch
	load   *loadClient
	slots  []*slot // slots[i] is at subnet + (i+1)
	events []*event
	// loadTo is when the load stopped.
	loadTo time.Time
}

// newScenario starts three servers of stack on subnet's first addresses,
// HAProxy with the fragment frag and a frontend on subnet's .100, waits
// until HAProxy has every server UP, and starts the load.
func newScenario(t *testing.T, stack stacktest.Stack, m backendMode, frag generated, subnet string) *scenario {
	s := &scenario{t: t, stack: stack, mode: m, frag: frag}
	ips := []string{subnet + "100"}
	for i := 1; i <= 6; i++ {
		ips = append(ips, subnet+strconv.Itoa(i))
	}
	port := testenv.FreePort(t, ips)
	for _, ip := range ips[1:] {
		s.slots = append(s.slots, &slot{addr: net.JoinHostPort(ip, port)})
	}
	for i := range 3 {
		s.start(i, false)
		s.slots[i].inDNS = true
	}
	s.dns = dnstest.Start(t)
	s.publish()
	frontend := net.JoinHostPort(ips[0], port)
	s.hap = haproxytest.Run(t, s.dns.Addr, strings.ReplaceAll(m.frontend, "{bind}", frontend), []string{frag.path},
		[]string{frag.envVar + "=" + dnsName + ":" + port})
	s.watch = watchBackend(t, s.hap, m.backend())
	for i := range 3 {
		s.hap.WaitStatus(t, m.backend(), s.slots[i].addr, "UP", upWithin)
	}
	s.load = startLoad(t, frontend)
	return s
}

// run runs the events in turn, then stops the load.
func (s *scenario) run() {
	s.begin(steady)
	time.Sleep(settle)
	s.rollingRestart()
	s.scaleOut()
	s.scaleIn()
	s.crash()
	s.scaleOutNotListening()
	s.scaleOutNotServing()
	s.loadTo = time.Now()
	s.load.stop()
	s.watch.Stop()
}

// begin starts an event.
func (s *scenario) begin(name string) *event {
	e := &event{name: name, start: time.Now()}
	s.events = append(s.events, e)
	return e
}

// start starts a new server in slot i, with an ID of its own.
func (s *scenario) start(i int, notServing bool) {
	sl := s.slots[i]
	sl.gen++
	sl.id = fmt.Sprintf("%s/%s/%d.%d", s.stack, s.mode.name, i+1, sl.gen)
	sl.server = stacktest.Start(s.t, s.stack, stacktest.Options{
		Addr: sl.addr, Services: []string{"greeter", "health"}, ID: sl.id,
		NotServing: notServing, DrainTime: s.frag.drainTime,
	})
}

// publish makes DNS resolve the slots that are in it.
func (s *scenario) publish() {
	var ips []net.IP
	for _, sl := range s.slots {
		if sl.inDNS {
			host, _, _ := net.SplitHostPort(sl.addr)
			ips = append(ips, net.ParseIP(host))
		}
	}
	s.dns.Set(dnsName, ips...)
}

// waitUp waits until HAProxy has slot i's server UP.
func (s *scenario) waitUp(i int) {
	s.hap.WaitStatus(s.t, s.mode.backend(), s.slots[i].addr, "UP", upWithin)
}

// busiest returns the slot, of those in DNS, whose server answered most
// calls in the last second.
func (s *scenario) busiest() int {
	var ids []string
	for _, sl := range s.slots {
		if sl.inDNS && sl.server != nil {
			ids = append(ids, sl.id)
		}
	}
	id := s.load.busiest(ids, time.Now().Add(-time.Second))
	return slices.IndexFunc(s.slots, func(sl *slot) bool { return sl.id == id })
}

// rollingRestart stops each of the first three servers gracefully in
// turn, starts it again on its address, and waits until HAProxy has it UP.
func (s *scenario) rollingRestart() {
	e := s.begin(rollingRestart)
	for i := range 3 {
		sl := s.slots[i]
		d := drained{id: sl.id, addr: sl.addr, term: time.Now()}
		sl.server.Terminate(s.t)
		sl.server.WaitExit(s.t, s.frag.drainTime+exitSlack)
		d.exited = time.Now()
		e.drains = append(e.drains, d)
		s.start(i, false)
		s.waitUp(i)
		time.Sleep(settle)
	}
}

// scaleOut starts a fourth server and then adds it to DNS.
func (s *scenario) scaleOut() {
	e := s.begin(scaleOut)
	const i = 3
	s.start(i, false)
	a := added{id: s.slots[i].id, addr: s.slots[i].addr, ready: time.Now()}
	s.slots[i].inDNS = true
	s.publish()
	a.inDNS = time.Now()
	e.added = append(e.added, a)
	s.waitUp(i)
	s.load.waitFirstCall(s.t, a.id, upWithin)
	time.Sleep(settle)
	e.log = s.slots[i].server.Log()
}

// scaleIn stops the busiest server gracefully and removes it from DNS once
// its drain time is over, before it exits.
func (s *scenario) scaleIn() {
	e := s.begin(scaleIn)
	i := s.busiest()
	sl := s.slots[i]
	d := drained{id: sl.id, addr: sl.addr, term: time.Now()}
	sl.server.Terminate(s.t)
	time.Sleep(time.Until(d.term.Add(s.frag.drainTime)))
	sl.inDNS = false
	s.publish()
	sl.server.WaitExit(s.t, exitSlack)
	d.exited = time.Now()
	e.drains = append(e.drains, d)
	sl.server = nil
	time.Sleep(settle)
}

// crash kills the busiest server, waits until HAProxy has it DOWN, starts
// it again and waits until HAProxy has it UP.
func (s *scenario) crash() {
	i := s.busiest()
	sl := s.slots[i]
	e := s.begin(crash)
	k := &killed{id: sl.id, addr: sl.addr, signalled: time.Now()}
	sl.server.Kill(s.t)
	k.dead = time.Now()
	e.killed = k
	s.hap.WaitStatus(s.t, s.mode.backend(), sl.addr, "DOWN", downWithin)
	k.restarted = time.Now()
	s.start(i, false)
	s.waitUp(i)
	time.Sleep(settle)
}

// notReadyFor is how long a server stays in DNS before it is ready, in the
// events that add servers early: two rounds of checks.
func (s *scenario) notReadyFor() time.Duration {
	return 2 * (s.frag.inter + s.frag.timeout)
}

// scaleOutNotListening adds a fifth address to DNS, and starts its server
// only after notReadyFor.
func (s *scenario) scaleOutNotListening() {
	e := s.begin(scaleOutNotListening)
	const i = 4
	sl := s.slots[i]
	sl.inDNS = true
	s.publish()
	a := added{addr: sl.addr, inDNS: time.Now()}
	time.Sleep(s.notReadyFor())
	s.start(i, false)
	a.id, a.ready = sl.id, time.Now()
	e.added = append(e.added, a)
	s.waitUp(i)
	s.load.waitFirstCall(s.t, a.id, upWithin)
	time.Sleep(settle)
}

// scaleOutNotServing starts a sixth server not serving, adds it to DNS,
// and makes it serving after notReadyFor.
func (s *scenario) scaleOutNotServing() {
	e := s.begin(scaleOutNotServing)
	const i = 5
	sl := s.slots[i]
	s.start(i, true)
	sl.inDNS = true
	s.publish()
	a := added{id: sl.id, addr: sl.addr, inDNS: time.Now()}
	time.Sleep(s.notReadyFor())
	sl.server.SetServing(s.t, true)
	a.ready = time.Now()
	e.added = append(e.added, a)
	s.waitUp(i)
	s.load.waitFirstCall(s.t, a.id, upWithin)
	time.Sleep(settle)
	e.log = sl.server.Log()
}

// stateWatch records the states HAProxy reports for the servers of the
// scenario's backend.
type stateWatch struct {
	*haproxytest.Watch
	backend string
}

// watchBackend polls the servers of backend every 20 ms until Stop or the
// end of the test.
func watchBackend(t *testing.T, hap *haproxytest.HAProxy, backend string) *stateWatch {
	return &stateWatch{hap.Watch(t, 20*time.Millisecond, backend), backend}
}

// firstSeen returns when the server at addr was first seen, at after or
// later, with a status that starts with prefix.
func (w *stateWatch) firstSeen(addr, prefix string, after time.Time) (time.Time, bool) {
	o, ok := w.First(w.backend, addr, after, func(s haproxytest.Server) bool { return strings.HasPrefix(s.Status, prefix) })
	return o.At, ok
}

// history returns each status of the server at addr seen from after on,
// with when it was first seen, for messages.
func (w *stateWatch) history(addr string, after time.Time) string {
	var parts []string
	last := ""
	for _, o := range w.Observations(w.backend, addr) {
		if !o.At.Before(after) && o.Status != last {
			parts = append(parts, fmt.Sprintf("%s at +%v", o.Status, o.At.Sub(after).Round(time.Millisecond)))
			last = o.Status
		}
	}
	return strings.Join(parts, ", ")
}
