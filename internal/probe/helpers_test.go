package probe_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/protogentest"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/stacktest"
)

func TestMain(m *testing.M) {
	os.Exit(stacktest.Main(m))
}

// The example's services, one of each kind of check.
const (
	greeter     = protogentest.Greeter     // through grpc.health.v1
	healthCheck = protogentest.HealthCheck // through its health RPC
)

// parse reads a fragment's text.
func parse(t testing.TB, text []byte) *probe.Fragment {
	t.Helper()
	f, err := probe.ParseFragment(text)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return f
}

// run probes addr with f, bounded by timeout, and fails the test if the
// probe cannot run.
func run(t testing.TB, f *probe.Fragment, addr string, opts probe.Options) *probe.Result {
	t.Helper()
	res, err := probe.Run(context.Background(), f, addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantVerdict fails the test unless res has the class and HAProxy status,
// and its reason holds every one of reasons.
func wantVerdict(t testing.TB, res *probe.Result, class probe.Class, status probe.Status, reasons ...string) {
	t.Helper()
	v := res.Verdict
	ok := v.Class == class && v.HAProxy == status
	for _, r := range reasons {
		ok = ok && strings.Contains(squeeze(v.Reason), squeeze(r))
	}
	if !ok {
		t.Errorf("verdict %s (%s): %s\nwant %s (%s) with %q\nrules: %+v\nreceived: %+v", v.Class, v.HAProxy, v.Reason, class, status, reasons, res.Rules, res.Received)
	}
}

// squeeze removes white space, which protobuf text format varies on
// purpose.
func squeeze(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// answer builds a server's HTTP/2 answer with x/net/http2's Framer,
// starting with the server's SETTINGS.
type answer struct {
	buf   bytes.Buffer
	fr    *http2.Framer
	block bytes.Buffer
	enc   *hpack.Encoder
}

// newAnswer starts an answer with the server connection preface.
func newAnswer(t testing.TB) *answer {
	a := &answer{}
	a.fr = http2.NewFramer(&a.buf, nil)
	a.enc = hpack.NewEncoder(&a.block)
	if err := a.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384}); err != nil {
		t.Fatal(err)
	}
	return a
}

// headers adds HEADERS on stream 1 with fields, name and value pairs.
func (a *answer) headers(t testing.TB, end bool, fields ...string) *answer {
	a.block.Reset()
	for i := 0; i < len(fields); i += 2 {
		if err := a.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: a.block.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	return a
}

// data adds DATA on stream 1.
func (a *answer) data(t testing.TB, end bool, payload []byte) *answer {
	if err := a.fr.WriteData(1, end, payload); err != nil {
		t.Fatal(err)
	}
	return a
}

// grpcOK adds a whole gRPC answer: response headers, the message and
// trailers with grpc-status 0.
func (a *answer) grpcOK(t testing.TB, message []byte) *answer {
	return a.headers(t, false, ":status", "200", "content-type", "application/grpc").
		data(t, false, message).
		headers(t, true, "grpc-status", "0")
}

// cannedServer answers every connection on a loopback listener with serve,
// and stops when the test ends. serve owns the connection.
func cannedServer(t testing.TB, serve func(conn net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				serve(conn)
			}()
		}
	}()
	return l.Addr().String()
}

// readRequest reads the n bytes of a check's request.
func readRequest(r io.Reader, n int) error {
	_, err := io.ReadFull(r, make([]byte, n))
	return err
}

// requestLen is the length of the request that f sends.
func requestLen(f *probe.Fragment) int {
	n := 0
	for _, r := range f.Rules {
		if r.Kind == probe.Send {
			n += len(r.Data)
		}
	}
	return n
}
