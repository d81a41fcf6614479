package h2answer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// ServeOptions say how Serve writes answers.
type ServeOptions struct {
	// Addr is the loopback address to listen on, "ip:port";
	// "127.0.0.1:0" when empty.
	Addr string
	// Split writes the answer one byte at a time with a pause after each,
	// so that the client reads every prefix of it on its own. An answer of
	// 16 KB then takes about 20 s at the default pause, unless Within
	// bounds it.
	Split bool
	// Pause is the pause after each byte when Split; 1 ms when zero.
	Pause time.Duration
	// Within, when Split and not zero, bounds the pauses of an answer to
	// Within/Pause: an answer with more bytes is still written one byte
	// at a time where a client decides, around every frame header (the
	// splitMargin bytes before it, its 9 bytes and the splitMargin bytes
	// after them) and at the answer's end, but the rest of each long frame
	// payload goes in one piece. An answer that is not frames beyond the
	// bound is written in equal pieces.
	Within time.Duration
	// Written, when set, is called once the writing of each answer ends,
	// with how long it took: for a split answer, from its first piece to
	// the pause after its last, or to the write that failed because the
	// client had closed the connection. A test compares it with how long
	// the client took to judge the answer.
	Written func(took time.Duration)
	// Hold is how long a connection stays open after an answer that does
	// not close it, unless the client closes it first; 30 s when zero.
	Hold time.Duration
}

// requestTimeout bounds the wait for the client's request on each
// connection.
const requestTimeout = 5 * time.Second

// Serve listens on a loopback port and answers every connection with
// answer: it reads the client connection preface and the frames of the
// request until stream 1 ends (the DATA with END_STREAM), then writes the
// answer's bytes, and then keeps the connection open for opts.Hold, as a
// gRPC server does, or closes it when answer.Close. A connection whose
// request does not come within 5 s gets no answer and is closed. Serve
// returns the address, "ip:port" with the port it listens on, and stops
// listening and closes every connection when the test ends.
func Serve(t testing.TB, answer Answer, msgs Messages, opts ServeOptions) string {
	t.Helper()
	if err := msgs.check(); err != nil {
		t.Fatalf("h2answer: %v", err)
	}
	if opts.Pause == 0 {
		opts.Pause = time.Millisecond
	}
	if opts.Hold == 0 {
		opts.Hold = 30 * time.Second
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if host, _, err := net.SplitHostPort(opts.Addr); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("h2answer: %q is not a loopback address", opts.Addr)
	}
	l, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		t.Fatalf("h2answer: %v", err)
	}
	s := &server{t: t, answer: answer, bytes: answer.Build(msgs), opts: opts, listener: l, conns: map[net.Conn]bool{}}
	if opts.Split {
		maxPauses := 0
		if opts.Within > 0 {
			maxPauses = max(1, int(opts.Within/opts.Pause))
		}
		s.pieces = Pieces(s.bytes, maxPauses)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.stop)
	return l.Addr().String()
}

// server answers the connections of one listener.
type server struct {
	t        testing.TB
	answer   Answer
	bytes    []byte
	opts     ServeOptions
	pieces   []int // when split, the end of each piece written
	listener net.Listener
	wg       sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	conns   map[net.Conn]bool
}

func (s *server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.listener.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// stop stops listening, closes every connection and waits for their
// goroutines.
func (s *server) stop() {
	s.mu.Lock()
	s.stopped = true
	s.listener.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// serve answers one connection.
func (s *server) serve(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(requestTimeout))
	if err := readRequest(c); err != nil {
		if !s.isStopped() {
			s.t.Logf("h2answer %s: no answer to %s: %v", s.answer.Name, c.RemoteAddr(), err)
		}
		return
	}
	start := time.Now()
	err := s.write(c)
	if s.opts.Written != nil {
		s.opts.Written(time.Since(start))
	}
	if err != nil {
		return
	}
	if s.answer.Close {
		// Close our side only, and read until the client closes its own,
		// so that the close is a FIN, not a reset that could discard the
		// answer in the client's receive buffer.
		_ = c.(*net.TCPConn).CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(s.opts.Hold))
	_, _ = io.Copy(io.Discard, c)
}

func (s *server) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// write writes the answer to c, whole or piece by piece with a pause
// after each.
func (s *server) write(c net.Conn) error {
	if !s.opts.Split {
		_, err := c.Write(s.bytes)
		return err
	}
	start := 0
	for _, end := range s.pieces {
		if _, err := c.Write(s.bytes[start:end]); err != nil {
			return err
		}
		start = end
		time.Sleep(s.opts.Pause)
	}
	return nil
}

// splitMargin is how many bytes on either side of a frame header Pieces
// keeps one by one when it cannot split a whole answer at every byte.
const splitMargin = 16

// Pieces returns where a split answer's pieces end: after every byte, or,
// when that takes more than maxPauses pieces (and maxPauses is not zero),
// after every byte within splitMargin bytes of a frame header, every byte
// of the header, and every byte of the answer's last splitMargin, with the
// bytes between such runs in one piece each. Frames are read from the
// answer's start for as long as it holds whole frames; the bytes after the
// last whole frame are kept one by one up to 9+2*splitMargin of them.
// When even that takes more than maxPauses pieces, the answer is cut in
// maxPauses equal pieces.
func Pieces(answer []byte, maxPauses int) []int {
	n := len(answer)
	if maxPauses == 0 || n <= maxPauses {
		ends := make([]int, n)
		for i := range ends {
			ends[i] = i + 1
		}
		return ends
	}
	// single[i] says that byte i is written on its own.
	single := make([]bool, n)
	mark := func(from, to int) {
		for i := max(from, 0); i < min(to, n); i++ {
			single[i] = true
		}
	}
	off := 0
	for off+wire.FrameHeaderLen <= n {
		length := int(answer[off])<<16 | int(answer[off+1])<<8 | int(answer[off+2])
		mark(off-splitMargin, off+wire.FrameHeaderLen+splitMargin)
		if off+wire.FrameHeaderLen+length > n {
			break
		}
		off += wire.FrameHeaderLen + length
	}
	if off < n {
		mark(off, off+wire.FrameHeaderLen+2*splitMargin)
	}
	mark(n-splitMargin, n)
	var ends []int
	for i := range n {
		if single[i] || i+1 == n || single[i+1] {
			ends = append(ends, i+1)
		}
	}
	if len(ends) <= maxPauses {
		return ends
	}
	ends = ends[:0]
	for k := 1; k <= maxPauses; k++ {
		if end := n * k / maxPauses; len(ends) == 0 || end > ends[len(ends)-1] {
			ends = append(ends, end)
		}
	}
	return ends
}

// readRequest reads the client connection preface and the client's frames
// until stream 1 ends from the client's side (RFC 9113, section 8.1).
func readRequest(c net.Conn) error {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return fmt.Errorf("reading the client connection preface: %w", err)
	}
	if string(preface) != http2.ClientPreface {
		return fmt.Errorf("the client sent %q, not the HTTP/2 client connection preface", preface)
	}
	fr := http2.NewFramer(nil, c)
	fr.SetMaxReadFrameSize(1<<24 - 1)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("reading the request: %w", err)
		}
		h := f.Header()
		if h.StreamID != wire.StreamID {
			continue
		}
		switch h.Type {
		case http2.FrameData, http2.FrameHeaders:
			// END_STREAM is the same bit in both (RFC 9113, sections 6.1
			// and 6.2).
			if h.Flags.Has(http2.FlagDataEndStream) {
				return nil
			}
		case http2.FrameRSTStream:
			return errors.New("the client reset stream 1")
		}
	}
}
