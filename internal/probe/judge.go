package probe

import (
	"bytes"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment/contract"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// The judgement of a generated fragment's expect rules, in Go: what the
// rules' PCRE2 patterns decide, read from the answer frame by frame as the
// patterns read it. The probe judges with it where it cannot run the
// patterns, and the tests hold it to the patterns' verdict on every answer
// they make up. It reads frames as the patterns do, which is not always as
// an HTTP/2 client does; the explanation of a Result says where the two
// differ.

// maxPatternLength is the highest second byte of a frame length that the
// patterns read (lengths up to 0x40FF).
const maxPatternLength = 0x40

// The HEADERS flags the patterns take: the combinations of END_STREAM,
// END_HEADERS, PADDED and PRIORITY.
const headersFlagsMask = http2.FlagHeadersEndStream | http2.FlagHeadersEndHeaders | http2.FlagHeadersPadded | http2.FlagHeadersPriority

// frameHeader is a frame header as the patterns read it.
type frameHeader struct {
	length int
	typ    http2.FrameType
	flags  http2.Flags
	stream uint32
}

// headerAt reads the frame header at a[off:], if its 9 bytes are there and
// its length is one the patterns read.
func headerAt(a []byte, off int) (frameHeader, bool) {
	if off < 0 || len(a)-off < frameHeaderLen || a[off] != 0 || a[off+1] > maxPatternLength {
		return frameHeader{}, false
	}
	h, err := http2.ReadFrameHeader(bytes.NewReader(a[off : off+frameHeaderLen]))
	if err != nil {
		return frameHeader{}, false
	}
	// The patterns match the stream identifier with its reserved bit.
	stream := uint32(a[off+5])<<24 | uint32(a[off+6])<<16 | uint32(a[off+7])<<8 | uint32(a[off+8])
	return frameHeader{length: int(h.Length), typ: h.Type, flags: h.Flags, stream: stream}, true
}

// frameEnd returns the offset after the complete frame at a[off:].
func frameEnd(a []byte, off int) (int, bool) {
	h, ok := headerAt(a, off)
	if !ok || off+frameHeaderLen+h.length > len(a) {
		return 0, false
	}
	return off + frameHeaderLen + h.length, true
}

// legalHeadersFlags reports whether f is a combination of the flags a
// HEADERS frame defines.
func legalHeadersFlags(f http2.Flags) bool {
	return f&^headersFlagsMask == 0
}

// endOfCall reports whether the rule that waits for the end of the call
// passes on a: a ended stream 1, or can never be a healthy answer.
func endOfCall(a []byte) bool {
	if len(a) >= 4 && !(a[0] == 0 && a[1] <= maxPatternLength && http2.FrameType(a[3]) == http2.FrameSettings) {
		return true // not HTTP/2
	}
	for off := 0; ; {
		if stopsCall(a, off) {
			return true
		}
		end, ok := frameEnd(a, off)
		if !ok {
			return false
		}
		off = end
	}
}

// stopsCall reports whether what starts at a[off:], a frame boundary, ends
// the wait for the end of the call.
func stopsCall(a []byte, off int) bool {
	if off < len(a) && !(a[off] == 0 && (off+1 == len(a) || a[off+1] <= maxPatternLength)) {
		return true // not a frame
	}
	h, ok := headerAt(a, off)
	if !ok {
		return false
	}
	switch {
	case h.typ == http2.FrameHeaders && h.stream == wire.StreamID && !legalHeadersFlags(h.flags),
		h.typ == http2.FrameContinuation && h.stream == wire.StreamID && h.flags != 0 && h.flags != http2.FlagContinuationEndHeaders:
		return true // flags that HTTP/2 does not define
	case h.stream == wire.StreamID && shortHeaders(h):
		return true // a frame too short for its fields
	case h.typ == http2.FrameHeaders && h.stream == wire.StreamID:
		if _, ok := headerBlockEnd(a, off); ok && h.flags.Has(http2.FlagHeadersEndStream) {
			return true
		}
		return statusNot200(a, off)
	case h.typ == http2.FrameData && h.stream == wire.StreamID:
		return h.flags == http2.FlagDataEndStream || h.flags == http2.FlagDataEndStream|http2.FlagDataPadded
	case h.typ == http2.FrameRSTStream && h.stream == wire.StreamID:
		return h.length == 4
	case h.typ == http2.FrameGoAway && h.stream == 0:
		// The last stream identifier, without its reserved bit, is 0.
		p := off + frameHeaderLen
		return len(a) >= p+4 && a[p]&0x7f == 0 && a[p+1] == 0 && a[p+2] == 0 && a[p+3] == 0
	}
	return false
}

// headerBlockEnd returns the offset after the complete header block that
// starts with the HEADERS frame at a[off:]: the frame and, without
// END_HEADERS, CONTINUATION frames without flags and a last one with
// END_HEADERS, all on stream 1.
func headerBlockEnd(a []byte, off int) (int, bool) {
	h, _ := headerAt(a, off)
	end, ok := frameEnd(a, off)
	if !ok || h.flags.Has(http2.FlagHeadersEndHeaders) {
		return end, ok
	}
	for {
		c, ok := headerAt(a, end)
		if !ok || c.typ != http2.FrameContinuation || c.stream != wire.StreamID {
			return 0, false
		}
		next, complete := frameEnd(a, end)
		switch {
		case c.flags == 0 && complete:
			end = next
		case c.flags == http2.FlagContinuationEndHeaders && complete:
			return next, true
		default:
			return 0, false
		}
	}
}

// headersFieldsLen is the length of the fields before the header block
// fragment of a HEADERS frame with flags f: the pad length when PADDED,
// and the priority fields when PRIORITY.
func headersFieldsLen(f http2.Flags) int {
	n := 0
	if f.Has(http2.FlagHeadersPadded) {
		n++
	}
	if f.Has(http2.FlagHeadersPriority) {
		n += 5
	}
	return n
}

// shortHeaders reports whether h is a HEADERS frame too short for the
// fields its flags announce, which HTTP/2 makes a connection error.
func shortHeaders(h frameHeader) bool {
	return h.typ == http2.FrameHeaders && h.length < headersFieldsLen(h.flags)
}

// fieldsStart returns the offset of the header block fragment in the
// HEADERS frame at a[off:].
func fieldsStart(a []byte, off int) int {
	h, _ := headerAt(a, off)
	return off + frameHeaderLen + headersFieldsLen(h.flags)
}

// skipSizeUpdates returns the offset after the dynamic table size updates
// (RFC 7541, section 6.3) at a[p:].
func skipSizeUpdates(a []byte, p int) int {
	for p < len(a) {
		switch c := a[p]; {
		case c >= 0x20 && c <= 0x3e:
			p++
		case c == 0x3f:
			q := p + 1
			for q < len(a) && a[q] >= 0x80 {
				q++
			}
			if q == len(a) {
				return p
			}
			p = q + 1
		default:
			return p
		}
	}
	return p
}

// statusField classifies the :status header field at a[p:]: whether a
// complete one is there, and whether it is :status 200.
func statusField(a []byte, p int) (complete, ok200 bool) {
	if p >= len(a) {
		return false, false
	}
	c := a[p]
	if c >= 0x88 && c <= 0x8e { // indexed: static table entries 8 to 14
		return true, c == 0x88
	}
	literal := c >= 0x08 && c <= 0x0e || c >= 0x18 && c <= 0x1e || c >= 0x48 && c <= 0x4e
	if !literal || p+1 >= len(a) {
		return false, false
	}
	value := a[p+1:]
	switch {
	case bytes.HasPrefix(value, []byte("\x03200")), bytes.HasPrefix(value, append([]byte{0x82}, hpack.AppendHuffmanString(nil, "200")...)):
		return true, true
	case (value[0] == 0x03 || value[0] == 0x83) && len(value) >= 4, value[0] == 0x82 && len(value) >= 3:
		return true, false
	}
	return false, false
}

// statusNot200 reports whether the HEADERS frame at a[off:] starts with a
// complete :status other than 200.
func statusNot200(a []byte, off int) bool {
	complete, ok200 := statusField(a, skipSizeUpdates(a, fieldsStart(a, off)))
	return complete && !ok200
}

// otherFrame returns the offset after the frame at a[off:] when it is
// complete and does not carry the call: any frame but DATA, HEADERS,
// CONTINUATION and RST_STREAM on stream 1.
func otherFrame(a []byte, off int) (int, bool) {
	h, ok := headerAt(a, off)
	if !ok {
		return 0, false
	}
	switch h.typ {
	case http2.FrameData, http2.FrameHeaders, http2.FrameRSTStream, http2.FrameContinuation:
		if h.stream == wire.StreamID {
			return 0, false
		}
	}
	return frameEnd(a, off)
}

// emptyData is an empty DATA frame on stream 1, without flags.
var emptyData = []byte{0, 0, 0, byte(http2.FrameData), 0, 0, 0, 0, wire.StreamID}

// skipOthers returns the offset after the frames at a[off:] that do not
// carry the call, and, with empty, the empty DATA frames on stream 1.
func skipOthers(a []byte, off int, empty bool) int {
	for {
		if end, ok := otherFrame(a, off); ok {
			off = end
			continue
		}
		if empty && bytes.HasPrefix(a[off:], emptyData) {
			off += len(emptyData)
			continue
		}
		return off
	}
}

// successfulCall reports whether the rule of the healthy response passes
// on a: a successful call whose only message is message, a gRPC
// Length-Prefixed-Message.
func successfulCall(a, message []byte) bool {
	if s, ok := headerAt(a, 0); !ok || s.typ != http2.FrameSettings || s.stream != 0 {
		return false
	}
	off := skipOthers(a, 0, false)
	h, ok := headerAt(a, off)
	if !ok || h.typ != http2.FrameHeaders || h.stream != wire.StreamID || !legalHeadersFlags(h.flags) || shortHeaders(h) || h.flags.Has(http2.FlagHeadersEndStream) {
		return false
	}
	if complete, ok200 := statusField(a, skipSizeUpdates(a, fieldsStart(a, off))); !complete || !ok200 {
		return false
	}
	off, ok = headerBlockEnd(a, off)
	if !ok {
		return false
	}
	return messageFrom(a, skipOthers(a, off, true), message)
}

// dataHeader reports whether a DATA frame header without flags on stream
// 1, of a length the patterns read, is at a[off:].
func dataHeader(a []byte, off int) bool {
	h, ok := headerAt(a, off)
	return ok && h.typ == http2.FrameData && h.flags == 0 && h.stream == wire.StreamID
}

// messageFrom reports whether the call goes on from a[off:] with message,
// in DATA frames without flags, and whole trailers with grpc-status 0. It
// reads the message byte by byte as the pattern does: between two of its
// bytes, frames that do not carry the call and a DATA frame header may
// come, where a proxy split the message; the message must end where the
// frames from a[off:] on, walked by their lengths, end.
func messageFrom(a []byte, off int, message []byte) bool {
	if !dataHeader(a, off) {
		return false
	}
	framesEnd := skipDataFrames(a, off)
	var rest func(p, i int) bool
	rest = func(p, i int) bool {
		if i == len(message) {
			q := skipOthers(a, p, true)
			return q == framesEnd && trailersFrom(a, q)
		}
		if i > 0 {
			if q := skipOthers(a, p, true); dataHeader(a, q) && q+frameHeaderLen < len(a) &&
				a[q+frameHeaderLen] == message[i] && rest(q+frameHeaderLen+1, i+1) {
				return true
			}
		}
		return p < len(a) && a[p] == message[i] && rest(p+1, i+1)
	}
	return rest(off+frameHeaderLen, 0)
}

// skipDataFrames returns the offset after the complete frames at a[off:]
// that do not carry the call, empty DATA frames, and DATA frames without
// flags on stream 1.
func skipDataFrames(a []byte, off int) int {
	for {
		if next := skipOthers(a, off, true); next != off {
			off = next
			continue
		}
		end, ok := frameEnd(a, off)
		if !ok || !dataHeader(a, off) {
			return off
		}
		off = end
	}
}

// trailersFrom reports whether a whole block of trailers with grpc-status
// 0 starts at a[off:].
func trailersFrom(a []byte, off int) bool {
	t, ok := headerAt(a, off)
	if !ok || t.typ != http2.FrameHeaders || t.stream != wire.StreamID || !legalHeadersFlags(t.flags) || shortHeaders(t) || !t.flags.Has(http2.FlagHeadersEndStream) {
		return false
	}
	if complete, _ := statusField(a, skipSizeUpdates(a, fieldsStart(a, off))); complete {
		return false // trailers that start with :status
	}
	end, ok := headerBlockEnd(a, off)
	return ok && hasGRPCStatusZero(a[:end], off+frameHeaderLen)
}

// grpcStatusZero are the parts of the header field grpc-status: 0 as a
// literal with a new name (RFC 7541, section 6.2): the representation's
// first byte, the name, raw or Huffman-coded, and the value, raw or
// Huffman-coded.
var grpcStatusZero = struct {
	first         []byte
	names, values [][]byte
}{
	first: []byte{0x00, 0x10, 0x40},
	names: [][]byte{
		append([]byte{byte(len("grpc-status"))}, "grpc-status"...),
		append([]byte{0x80 | byte(hpack.HuffmanEncodeLength("grpc-status"))}, hpack.AppendHuffmanString(nil, "grpc-status")...),
	},
	values: [][]byte{
		[]byte("\x010"),
		append([]byte{0x80 | byte(hpack.HuffmanEncodeLength("0"))}, hpack.AppendHuffmanString(nil, "0")...),
	},
}

// hasGRPCStatusZero reports whether grpc-status: 0 is anywhere in a[from:],
// split anywhere by CONTINUATION frame headers; callers bound a to the
// header block where it must be.
func hasGRPCStatusZero(a []byte, from int) bool {
	for p := from; p < len(a); p++ {
		if bytes.IndexByte(grpcStatusZero.first, a[p]) < 0 {
			continue
		}
		for _, name := range grpcStatusZero.names {
			q, ok := matchSplit(a, skipContinuation(a, p+1), name)
			if !ok {
				continue
			}
			for _, value := range grpcStatusZero.values {
				if _, ok := matchSplit(a, skipContinuation(a, q), value); ok {
					return true
				}
			}
		}
	}
	return false
}

// matchSplit matches b at a[p:], with a CONTINUATION frame header allowed
// between any two of its bytes, and returns the offset after it.
func matchSplit(a []byte, p int, b []byte) (int, bool) {
	for i, c := range b {
		if i > 0 {
			p = skipContinuation(a, p)
		}
		if p >= len(a) || a[p] != c {
			return 0, false
		}
		p++
	}
	return p, true
}

// skipContinuation returns the offset after the CONTINUATION frame header
// at a[p:], or p when there is none.
func skipContinuation(a []byte, p int) int {
	if h, ok := headerAt(a, p); ok && h.typ == http2.FrameContinuation && h.stream == wire.StreamID &&
		(h.flags == 0 || h.flags == http2.FlagContinuationEndHeaders) {
		return p + frameHeaderLen
	}
	return p
}

// judgement is what a generated fragment's expect rules decide on
// received, the answer in HAProxy's check buffer, by the fragment's
// contract line: the status that ends the check, or StatusNone while they
// wait for more. Like HAProxy, it stops waiting once the buffer is full,
// and its patterns see the buffer less its last byte.
func judgement(l contract.Line, received []byte, lastRead bool) Status {
	lastRead = lastRead || len(received) >= bufSize
	a := received[:min(len(received), bufSize-1)]
	switch {
	case !endOfCall(a) && !lastRead:
		return StatusNone
	case !endOfCall(a):
		return L7RSP
	case l.NotServing != nil && successfulCall(a, l.NotServing) && l.NotServingDrains:
		return L7OKC
	case l.NotServing != nil && successfulCall(a, l.NotServing):
		return L7RSP
	case successfulCall(a, l.Healthy):
		return L7OK
	}
	return L7RSP
}
