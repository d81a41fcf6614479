package deploy_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/haproxycheck/protoc-gen-haproxycheck/example/gen/helloworld"
)

// The load: loadWorkers callers, each with a client connection of its
// own, each starting a call loadPace after the start of its last one, or
// at once when that took longer: several hundred calls a second in all.
// Every other caller replaces its connection every loadRenew, as clients
// come and go, so that new connections keep reaching HAProxy: in mode tcp,
// only they reach a server added to the backend.
const (
	loadWorkers = 8
	loadPace    = 25 * time.Millisecond
	loadRenew   = 500 * time.Millisecond
	// callTimeout bounds every call.
	callTimeout = 10 * time.Second
)

// callRecord is one call as the load client saw it.
type callRecord struct {
	// worker is the caller that made it.
	worker int
	// local is the client's address of the TCP connection that carried
	// the call, which names the connection; empty when the call never got
	// one. dialed is the client's address of the last connection its
	// client had dialed when the call ended, the one a call that failed
	// to get a connection waited for.
	local, dialed string
	// start and end are when the call began and ended.
	start, end time.Time
	// server is the ID of the server that answered, empty on failure.
	server string
	// code is the call's gRPC status code, and message its message.
	code    codes.Code
	message string
}

// failed reports whether the call failed.
func (c callRecord) failed() bool { return c.code != codes.OK }

// loadClient sends Greeter calls through addr until it is stopped.
type loadClient struct {
	addr    string
	stopped atomic.Bool
	wg      sync.WaitGroup

	mu    sync.Mutex
	calls []callRecord
	// first and last are when a call that a server answered first and
	// last started, by server ID.
	first, last map[string]time.Time
	changed     chan struct{} // closed and replaced on every call
}

// startLoad starts the load through addr and stops it when the test ends.
func startLoad(t *testing.T, addr string) *loadClient {
	l := &loadClient{addr: addr, first: map[string]time.Time{}, last: map[string]time.Time{}, changed: make(chan struct{})}
	for i := range loadWorkers {
		l.wg.Add(1)
		go l.work(t, i, i%2 == 1)
	}
	t.Cleanup(l.stop)
	return l
}

// stop stops the callers and waits for their last calls to end.
func (l *loadClient) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
}

// work makes calls until the load stops, on a connection of its own that
// it replaces every loadRenew when renew is set, between two calls.
func (l *loadClient) work(t *testing.T, worker int, renew bool) {
	defer l.wg.Done()
	var conn *grpc.ClientConn
	var connected time.Time
	var dialed atomic.Value // the local address of the last connection dialed
	dialer := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			dialed.Store(c.LocalAddr().String())
		}
		return c, err
	}
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	next := time.Now()
	for !l.stopped.Load() {
		if conn == nil || renew && time.Since(connected) >= loadRenew {
			if conn != nil {
				conn.Close()
			}
			var err error
			conn, err = grpc.NewClient(l.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dialer))
			if err != nil {
				t.Errorf("client of %s: %v", l.addr, err)
				return
			}
			connected = time.Now()
		}
		time.Sleep(time.Until(next))
		next = time.Now().Add(loadPace)
		c := sayHello(conn, worker)
		c.dialed, _ = dialed.Load().(string)
		l.record(c)
	}
}

// sayHello makes one call on conn.
func sayHello(conn *grpc.ClientConn, worker int) callRecord {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	var p peer.Peer
	c := callRecord{worker: worker, start: time.Now()}
	reply, err := helloworld.NewGreeterClient(conn).SayHello(ctx, &helloworld.HelloRequest{Name: "load"}, grpc.Peer(&p))
	c.end = time.Now()
	if p.LocalAddr != nil {
		c.local = p.LocalAddr.String()
	}
	if err != nil {
		st := status.Convert(err)
		c.code, c.message = st.Code(), st.Message()
		return c
	}
	_, id, ok := strings.Cut(reply.GetMessage(), " from ")
	if !ok {
		c.code, c.message = codes.Unknown, "the reply names no server: "+reply.GetMessage()
		return c
	}
	c.server = id
	return c
}

// record keeps one call.
func (l *loadClient) record(c callRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
	if c.server != "" {
		if _, ok := l.first[c.server]; !ok {
			l.first[c.server] = c.start
		}
		if c.start.After(l.last[c.server]) {
			l.last[c.server] = c.start
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// records returns the calls so far.
func (l *loadClient) records() []callRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]callRecord(nil), l.calls...)
}

// waitFirstCall waits, at most timeout, until the server id has answered a
// call, and returns when that call started.
func (l *loadClient) waitFirstCall(t *testing.T, id string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		first, ok := l.first[id]
		changed := l.changed
		l.mu.Unlock()
		if ok {
			return first
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no call reached server %s within %v", id, timeout)
		}
	}
}

// busiest returns, of ids, the server that answered most calls that
// ended since.
func (l *loadClient) busiest(ids []string, since time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	for i := len(l.calls) - 1; i >= 0 && !l.calls[i].end.Before(since); i-- {
		counts[l.calls[i].server]++
	}
	best := ids[0]
	for _, id := range ids[1:] {
		if counts[id] > counts[best] {
			best = id
		}
	}
	return best
}
