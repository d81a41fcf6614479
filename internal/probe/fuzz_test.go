package probe

import (
	"bytes"
	"slices"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/h2answer"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// answerScript reads a fuzzer's bytes as choices, one byte at a time,
// zero once they run out.
type answerScript struct{ b []byte }

func (s *answerScript) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *answerScript) flag() bool { return s.next()&1 == 1 }

func (s *answerScript) take(n int) []byte {
	n = min(n, len(s.b))
	p := s.b[:n]
	s.b = s.b[n:]
	return p
}

// fuzzAnswer builds a server's answer from script: a sequence of frames
// that a server or a proxy may send, legal or not, written with
// x/net/http2's Framer and HPACK encoder (header blocks split over
// CONTINUATION frames at chosen points, grpc-status in every literal form
// or broken), or, when the first choice says so, the script's bytes as
// they are.
func fuzzAnswer(script []byte, msgs h2answer.Messages) []byte {
	s := &answerScript{b: script}
	if s.next()%4 == 0 {
		return s.b
	}
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	if !s.flag() || s.flag() {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
	}
	stream := func() uint32 {
		if s.next()%8 == 0 {
			return 3
		}
		return wire.StreamID
	}
	headers := func(fields []byte, end bool) {
		id, padded, priority := stream(), s.flag(), s.next()%4 == 0
		cut := len(fields)
		if s.flag() && len(fields) > 0 {
			cut = int(s.next()) % len(fields)
		}
		p := http2.HeadersFrameParam{StreamID: id, BlockFragment: fields[:cut], EndStream: end, EndHeaders: cut == len(fields)}
		if padded {
			p.PadLength = s.next() % 8
		}
		if priority {
			p.Priority = http2.PriorityParam{StreamDep: 0, Weight: 15}
		}
		_ = fr.WriteHeaders(p)
		if cut < len(fields) {
			_ = fr.WriteContinuation(id, true, fields[cut:])
		}
	}
	for range 12 {
		if len(s.b) == 0 {
			break
		}
		switch s.next() % 12 {
		case 0, 1: // response headers
			block.Reset()
			status := []string{"200", "200", "200", "204", "404", "502", "100"}[s.next()%7]
			if s.next()%8 == 0 {
				block.Write([]byte{0x3f, 0xe1, 0x1f}) // dynamic table size update
			}
			_ = enc.WriteField(hpack.HeaderField{Name: ":status", Value: status})
			_ = enc.WriteField(hpack.HeaderField{Name: "content-type", Value: []string{"application/grpc", "text/html"}[s.next()%2]})
			headers(bytes.Clone(block.Bytes()), s.next()%4 == 0)
		case 2, 3: // trailers
			block.Reset()
			status := []string{"0", "0", "0", "13", "14", "", " ", "OK", "-1", "00"}[s.next()%10]
			field := h2answer.LiteralField(h2answer.LiteralForms[s.next()%3], "grpc-status", s.flag(), status, s.flag())
			if s.next()%4 == 0 {
				_ = enc.WriteField(hpack.HeaderField{Name: "grpc-message", Value: string(s.take(int(s.next() % 16)))})
			}
			headers(append(bytes.Clone(block.Bytes()), field...), s.next()%8 != 0)
		case 4, 5: // a message, or other data
			payload := [][]byte{msgs.Healthy, msgs.NotServing, s.take(int(s.next() % 12)), nil}[s.next()%4]
			if s.flag() {
				_ = fr.WriteDataPadded(stream(), s.next()%8 == 0, payload, make([]byte, s.next()%4))
			} else {
				_ = fr.WriteData(stream(), s.next()%8 == 0, payload)
			}
		case 6:
			_ = fr.WriteRSTStream(stream(), http2.ErrCode(s.next()%14))
		case 7:
			_ = fr.WriteGoAway(uint32(s.next()%3), http2.ErrCode(s.next()%14), s.take(int(s.next()%8)))
		case 8:
			_ = fr.WritePing(s.flag(), [8]byte{s.next()})
		case 9:
			_ = fr.WriteWindowUpdate(uint32(s.next()%2), uint32(s.next())+1)
		case 10: // a frame of any type, flags and stream
			_ = fr.WriteRawFrame(http2.FrameType(s.next()), http2.Flags(s.next()), uint32(s.next()%4), s.take(int(s.next()%16)))
		case 11: // bytes that are not a frame
			out.Write(s.take(int(s.next() % 8)))
		}
	}
	return out.Bytes()
}

// FuzzJudge gives the probe's judgement server answers made of arbitrary
// frames, headers, trailers and bytes, arriving in segments that end where
// the fuzzer says (HAProxy judges what has arrived at the end of each
// segment). The rules of both kinds of check, run with PCRE2, and the
// judgement in Go must agree at every segment's end; a call judged healthy
// whole must not have been judged otherwise before it was whole; and
// explaining the result must never panic. TestRulesJudgeEveryAnswer runs
// every prefix of the catalog's answers.
func FuzzJudge(f *testing.F) {
	fragments := []*Fragment{readFragment(f, judgedFragments[0]), readFragment(f, judgedFragments[1])}
	for i, a := range h2answer.Catalog() {
		// The catalog's answers below 1 KiB, as they are: larger ones
		// slow every run of the fuzzer down.
		if b := a.Bytes(messagesOf(fragments[0])); len(b) < 1024 {
			f.Add(append([]byte{0}, b...), a.Close, uint16(i), uint16(len(b)-i))
		}
	}
	f.Add([]byte{1, 1, 1, 0, 0, 4, 0, 0, 2, 0, 0, 0, 0, 1, 0}, false, uint16(10), uint16(40))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 2, 1, 0, 0, 0}, true, uint16(3), uint16(9))
	f.Fuzz(func(t *testing.T, script []byte, closed bool, cut1, cut2 uint16) {
		for _, frag := range fragments {
			a := fuzzAnswer(script, messagesOf(frag))
			if len(a) == 0 {
				continue
			}
			a = a[:min(len(a), bufSize)]
			ends := []int{int(cut1)%len(a) + 1, int(cut2)%len(a) + 1, len(a)}
			slices.Sort(ends)
			first := StatusNone
			var last Status
			for _, n := range ends {
				lastRead := n == len(a) && closed || n == bufSize
				got, native := rulesStatus(frag, a[:n], lastRead), judgement(*frag.Contract, a[:n], lastRead)
				if got != native {
					t.Fatalf("%d of %d bytes %x: the rules give %q, judgement %q", n, len(a), a[:n], got, native)
				}
				if first == StatusNone {
					first = got
				}
				last = got
			}
			if last == L7OK && first != L7OK {
				t.Fatalf("answer %x: healthy whole, but judged %s at an earlier segment", a, first)
			}
			explain(frag, a, last)
		}
	})
}

// explain builds the Result of a probe that received a and ended with
// status, as Run does after the rules, so that the fuzzer reaches every
// explanation.
func explain(f *Fragment, a []byte, status Status) *Result {
	c := &check{f: f, res: &Result{Address: "127.0.0.1:1", Backend: f.Backend}, received: a, lastRead: true}
	if status == StatusNone {
		status = L7TOUT
	}
	c.res.Received = decodeExchange(a, false)
	for i := range c.res.Received.Messages {
		c.res.Received.Messages[i].decode(f.Contract.ResponseType, nil)
	}
	c.res.Call = callOf(c.res.Received)
	var failed *Rule
	if status != L7OK {
		failed = &f.Rules[len(f.Rules)-1]
	}
	c.res.Verdict = c.verdict(status, failed)
	return c.res
}
