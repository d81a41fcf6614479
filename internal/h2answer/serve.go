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
	// Split writes the answer one byte at a time with a pause after each,
	// so that the client reads every prefix of it on its own. An answer of
	// 16 KB then takes about 20 s at the default pause.
	Split bool
	// Pause is the pause after each byte when Split; 1 ms when zero.
	Pause time.Duration
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
// returns the address, "127.0.0.1:port", and stops listening and closes
// every connection when the test ends.
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("h2answer: %v", err)
	}
	s := &server{t: t, answer: answer, bytes: answer.Build(msgs), opts: opts, listener: l, conns: map[net.Conn]bool{}}
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
	if err := s.write(c); err != nil {
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

// write writes the answer to c, whole or byte by byte.
func (s *server) write(c net.Conn) error {
	if !s.opts.Split {
		_, err := c.Write(s.bytes)
		return err
	}
	for i := range s.bytes {
		if _, err := c.Write(s.bytes[i : i+1]); err != nil {
			return err
		}
		time.Sleep(s.opts.Pause)
	}
	return nil
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
