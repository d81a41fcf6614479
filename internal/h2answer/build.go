package h2answer

import (
	"bytes"
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// maxFrameSize is the largest frame payload an answer sends: the initial
// SETTINGS_MAX_FRAME_SIZE, which a check never raises (RFC 9113, section
// 6.5.2). Longer header blocks go on in CONTINUATION frames, longer DATA
// in more DATA frames.
const maxFrameSize = 16384

// builder writes the frames of one answer as a server does on one
// connection: one Framer, and one HPACK Encoder whose dynamic table follows
// every header block of the connection, as the client's decoder does.
type builder struct {
	out bytes.Buffer
	fr  *http2.Framer
	// block receives what enc encodes; fields takes it out block by block.
	block bytes.Buffer
	enc   *hpack.Encoder
	// frameStarts are the offsets in out at which each frame starts.
	frameStarts []int
}

func newBuilder() *builder {
	b := &builder{}
	b.fr = http2.NewFramer(&b.out, nil)
	b.enc = hpack.NewEncoder(&b.block)
	return b
}

// build turns a function that writes an answer's frames into an
// Answer.Build.
func build(write func(b *builder, msgs Messages)) func(Messages) []byte {
	return func(msgs Messages) []byte {
		b := newBuilder()
		write(b, msgs)
		return b.bytes()
	}
}

func (b *builder) bytes() []byte {
	return bytes.Clone(b.out.Bytes())
}

// frame records where the next frame starts and writes it with write.
func (b *builder) frame(write func(fr *http2.Framer) error) *builder {
	b.frameStarts = append(b.frameStarts, b.out.Len())
	if err := write(b.fr); err != nil {
		panic(fmt.Sprintf("h2answer: writing a frame: %v", err))
	}
	return b
}

// raw appends bytes that are not HTTP/2 frames.
func (b *builder) raw(p []byte) *builder {
	b.out.Write(p)
	return b
}

// serverPreface writes what every HTTP/2 server sends first: its SETTINGS
// (RFC 9113, section 3.4; grpc-go announces SETTINGS_MAX_FRAME_SIZE), then
// the acknowledgement of the client's SETTINGS.
func (b *builder) serverPreface() *builder {
	return b.settings().settingsAck()
}

// settings writes the server's SETTINGS frame.
func (b *builder) settings() *builder {
	return b.frame(func(fr *http2.Framer) error {
		return fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxFrameSize})
	})
}

// settingsAck writes a SETTINGS frame with ACK.
func (b *builder) settingsAck() *builder {
	return b.frame(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
}

// fields HPACK-encodes a header block with the connection's encoder.
func (b *builder) fields(fields ...hpack.HeaderField) []byte {
	for _, f := range fields {
		if err := b.enc.WriteField(f); err != nil {
			panic(fmt.Sprintf("h2answer: encoding %s: %v", f.Name, err))
		}
	}
	block := bytes.Clone(b.block.Bytes())
	b.block.Reset()
	return block
}

// pairs turns name, value, name, value... into header fields.
func pairs(nameValues ...string) []hpack.HeaderField {
	if len(nameValues)%2 != 0 {
		panic("h2answer: header names and values do not pair up")
	}
	var fields []hpack.HeaderField
	for i := 0; i < len(nameValues); i += 2 {
		fields = append(fields, hpack.HeaderField{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return fields
}

// responseFields are the fields of a gRPC server's response headers
// (gRPC PROTOCOL-HTTP2.md, "Response-Headers"), followed by extra.
func responseFields(extra ...hpack.HeaderField) []hpack.HeaderField {
	return append(pairs(":status", "200", "content-type", "application/grpc"), extra...)
}

// trailerFields are the fields of trailers with the given grpc-status and
// grpc-message, as grpc-go sends them (grpc-message even when empty),
// followed by extra.
func trailerFields(status, message string, extra ...hpack.HeaderField) []hpack.HeaderField {
	return append(pairs("grpc-status", status, "grpc-message", message), extra...)
}

// headers writes block on stream 1: one HEADERS frame, then as many
// CONTINUATION frames as the block needs at the maximum frame size.
func (b *builder) headers(block []byte, endStream bool) *builder {
	var cuts []int
	for cut := maxFrameSize; cut < len(block); cut += maxFrameSize {
		cuts = append(cuts, cut)
	}
	return b.headersCut(block, endStream, cuts...)
}

// headersCut writes block on stream 1 as a HEADERS frame holding
// block[:cuts[0]] and one CONTINUATION frame for each following piece,
// the last with END_HEADERS (RFC 9113, section 6.10).
func (b *builder) headersCut(block []byte, endStream bool, cuts ...int) *builder {
	pieces := cutAt(block, cuts)
	b.frame(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{
			StreamID:      wire.StreamID,
			BlockFragment: pieces[0],
			EndStream:     endStream,
			EndHeaders:    len(pieces) == 1,
		})
	})
	for i, piece := range pieces[1:] {
		last := i == len(pieces)-2
		b.frame(func(fr *http2.Framer) error { return fr.WriteContinuation(wire.StreamID, last, piece) })
	}
	return b
}

// headersParam writes one HEADERS frame on stream 1 with the whole block
// and the padding and priority of p.
func (b *builder) headersParam(block []byte, endStream bool, p http2.HeadersFrameParam) *builder {
	p.StreamID, p.BlockFragment, p.EndStream, p.EndHeaders = wire.StreamID, block, endStream, true
	return b.frame(func(fr *http2.Framer) error { return fr.WriteHeaders(p) })
}

// cutAt cuts b at the increasing offsets cuts.
func cutAt(b []byte, cuts []int) [][]byte {
	var pieces [][]byte
	from := 0
	for _, cut := range cuts {
		if cut <= from || cut >= len(b) {
			panic(fmt.Sprintf("h2answer: cannot cut %d bytes at %v", len(b), cuts))
		}
		pieces = append(pieces, b[from:cut])
		from = cut
	}
	return append(pieces, b[from:])
}

// response writes the response headers, with extra fields after the
// ones gRPC requires.
func (b *builder) response(extra ...hpack.HeaderField) *builder {
	return b.headers(b.fields(responseFields(extra...)...), false)
}

// trailers writes the trailers (HEADERS with END_STREAM and END_HEADERS)
// with grpc-status and grpc-message.
func (b *builder) trailers(status, message string, extra ...hpack.HeaderField) *builder {
	return b.headers(b.fields(trailerFields(status, message, extra...)...), true)
}

// data writes p as DATA on stream 1, in as many frames as the maximum
// frame size needs, END_STREAM on the last when endStream.
func (b *builder) data(p []byte, endStream bool) *builder {
	for {
		n := min(len(p), maxFrameSize)
		chunk, last := p[:n], n == len(p)
		b.frame(func(fr *http2.Framer) error { return fr.WriteData(wire.StreamID, endStream && last, chunk) })
		if last {
			return b
		}
		p = p[n:]
	}
}

// call writes the whole answer of a gRPC server to a unary call: its
// preface, the response headers, message in DATA, and trailers with
// grpc-status 0.
func (b *builder) call(message []byte) *builder {
	return b.serverPreface().response().data(message, false).trailers("0", "")
}

// HPACK literal header field representations with a new (literal) name
// (RFC 7541, section 6.2): the first byte's pattern and the length of the
// index prefix that follows it, which is 0 for a new name.
const (
	literalIncrementalIndexing = 0x40 // section 6.2.1, 6-bit index prefix
	literalWithoutIndexing     = 0x00 // section 6.2.2, 4-bit index prefix
	literalNeverIndexed        = 0x10 // section 6.2.3, 4-bit index prefix
)

// LiteralForms are the first bytes of the three literal representations of
// a header field with a new name, for LiteralField.
var LiteralForms = []byte{literalIncrementalIndexing, literalWithoutIndexing, literalNeverIndexed}

// LiteralField hand-assembles one literal header field with a new name in
// the representation form (one of the literal* constants), the name and
// the value each Huffman-coded or raw (RFC 7541, section 5.2). A field with
// incremental indexing enters the decoder's dynamic table without the
// builder's encoder knowing, so it must come last in the answer's last
// header block.
func LiteralField(form byte, name string, nameHuffman bool, value string, valueHuffman bool) []byte {
	out := []byte{form}
	out = appendString(out, name, nameHuffman)
	return appendString(out, value, valueHuffman)
}

// appendString appends s as an HPACK string literal (RFC 7541, section
// 5.2): the H bit, the length as a 7-bit prefix integer, the octets.
func appendString(dst []byte, s string, huffman bool) []byte {
	if !huffman {
		dst = appendPrefixInt(dst, 0x00, 7, uint64(len(s)))
		return append(dst, s...)
	}
	dst = appendPrefixInt(dst, 0x80, 7, hpack.HuffmanEncodeLength(s))
	return hpack.AppendHuffmanString(dst, s)
}

// appendPrefixInt appends v as an HPACK integer with an n-bit prefix in a
// first byte whose other bits are high (RFC 7541, section 5.1).
func appendPrefixInt(dst []byte, high byte, n uint, v uint64) []byte {
	limit := uint64(1)<<n - 1
	if v < limit {
		return append(dst, high|byte(v))
	}
	dst = append(dst, high|byte(limit))
	for v -= limit; v >= 128; v >>= 7 {
		dst = append(dst, byte(v&0x7f)|0x80)
	}
	return append(dst, byte(v))
}

// fit returns the answer answerOf(n) for the n that brings its measure to
// want. The measure must grow by one for each n, save for a few jumps
// (a length prefix that grows, a frame header more), which the search
// steps over.
func fit(want int, answerOf func(n int) (answer []byte, measure int)) []byte {
	n := 0
	for range 16 {
		answer, got := answerOf(n)
		if got == want {
			return answer
		}
		n += want - got
		if n < 0 {
			break
		}
	}
	panic(fmt.Sprintf("h2answer: no answer measures %d", want))
}
