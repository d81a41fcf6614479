package fragment

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// The check's expect rules match the server's answer with PCRE2 regular
// expressions (tcp-check expect rstring), which HAProxy runs on the bytes
// received so far: up to tune.bufsize less one (16383 bytes by default).
// A regular expression cannot count, but PCRE2's subroutine calls can:
// a frame header's 24-bit length (RFC 9113, section 4.1) is read one nibble
// at a time, and each nibble's subroutine consumes its share of the payload
// after the nibbles below it have consumed theirs. So the patterns walk the
// answer frame by frame from its first byte, as an HTTP/2 client reads it,
// and nothing inside a payload is ever taken for a frame header.
//
// Every pattern starts with (?s) (a dot matches every byte) and \A, and
// every match consumes at least one byte; the subpatterns a pattern calls
// are defined in a (?(DEFINE)...) group at its end.
// Frames longer than 16639 bytes (0x40FF) do not match: a server may not
// send more than 16384 bytes of payload in one frame to a client that has
// not raised SETTINGS_MAX_FRAME_SIZE, and the check never does.

// subpattern is a named PCRE2 subpattern, defined once in a pattern's
// DEFINE group and called with (?&Name).
type subpattern struct {
	name string
	// body is the subpattern's regular expression; uses are the names of
	// the subpatterns it calls.
	body string
	uses []string
}

// maxLengthHigh is the highest second byte of a frame length the patterns
// read: lengths up to 0x40FF cover the largest frame (16384 bytes) a
// server may send.
const maxLengthHigh = 0x40

// Flags of a HEADERS frame (RFC 9113, section 6.2), in the combinations a
// server may send: END_STREAM, END_HEADERS, PADDED and PRIORITY.
var (
	headersFlags          = flagCombinations(http2.FlagHeadersEndStream, http2.FlagHeadersEndHeaders, http2.FlagHeadersPadded, http2.FlagHeadersPriority)
	endStreamFlags        = withFlag(headersFlags, http2.FlagHeadersEndStream, true)
	openStreamFlags       = withFlag(headersFlags, http2.FlagHeadersEndStream, false)
	plainHeadersFlags     = withFlag(withFlag(headersFlags, http2.FlagHeadersPadded, false), http2.FlagHeadersPriority, false)
	dataEndStreamFlags    = []byte{byte(http2.FlagDataEndStream), byte(http2.FlagDataEndStream | http2.FlagDataPadded)}
	continuationMoreFlags = []byte{0}
	continuationEndFlags  = []byte{byte(http2.FlagContinuationEndHeaders)}
)

// headersFields are the fields that start a HEADERS frame's payload before
// its header block fragment (RFC 9113, section 6.2), by the flags that
// announce them: a frame shorter than its fields is a connection error.
var headersFields = []struct {
	flags []byte
	size  int
}{
	{withFlag(withFlag(headersFlags, http2.FlagHeadersPadded, true), http2.FlagHeadersPriority, false), 1},
	{withFlag(withFlag(headersFlags, http2.FlagHeadersPadded, false), http2.FlagHeadersPriority, true), 5},
	{withFlag(withFlag(headersFlags, http2.FlagHeadersPadded, true), http2.FlagHeadersPriority, true), 6},
}

// flagCombinations returns every combination of flags, in increasing order.
func flagCombinations(flags ...http2.Flags) []byte {
	out := []byte{0}
	for _, f := range flags {
		for _, b := range out {
			out = append(out, b|byte(f))
		}
	}
	slices.Sort(out)
	return out
}

// withFlag returns the combinations in set that have flag set, or unset.
func withFlag(set []byte, flag http2.Flags, on bool) []byte {
	var out []byte
	for _, b := range set {
		if (b&byte(flag) != 0) == on {
			out = append(out, b)
		}
	}
	return out
}

// literal escapes b for a pattern, one \xHH per byte.
func literal(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, `\x%02x`, c)
	}
	return s.String()
}

// class is a character class of the bytes bs.
func class(bs []byte) string {
	if len(bs) == 1 {
		return literal(bs)
	}
	return "[" + literal(bs) + "]"
}

// byteRange is the character class of the bytes from lo to hi.
func byteRange(lo, hi byte) string {
	return fmt.Sprintf(`[\x%02x-\x%02x]`, lo, hi)
}

// streamID is the 4 bytes of a frame header's stream identifier.
func streamID(id uint32) string {
	return literal([]byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)})
}

// header matches the 9-byte header of a frame of type typ, with flags in
// flags (any flags when nil), on stream id, and of any length the patterns
// read.
func header(typ http2.FrameType, flags []byte, id uint32) string {
	f := "."
	if flags != nil {
		f = class(flags)
	}
	return `\x00` + byteRange(0, maxLengthHigh) + "." + literal([]byte{byte(typ)}) + f + streamID(id)
}

// skip consumes n bytes, in repeats of at most 65535, PCRE2's largest.
func skip(n int) string {
	switch {
	case n == 0:
		return ""
	case n == 1:
		return "."
	case n <= 65535:
		return fmt.Sprintf(".{%d}", n)
	}
	panic(fmt.Sprintf("skip(%d): more than a frame", n))
}

// frameSubpatterns define F, a complete frame of any type. F reads the
// length's second byte as its high nibble (F1, by a lookahead on a range
// of bytes) and its low nibble (F2, which consumes the byte), then the
// third byte the same way (F3, F4), then the rest of the header (FT);
// each level consumes its nibble's share of the payload after the levels
// below it have returned, so that F consumes exactly the frame.
func frameSubpatterns() []subpattern {
	var f1, f2, f3, f4 []string
	for hi := 0; hi <= maxLengthHigh>>4; hi++ {
		lo := byte(hi<<4 | 0x0f)
		if hi == maxLengthHigh>>4 {
			lo = maxLengthHigh
		}
		f1 = append(f1, fmt.Sprintf("(?=%s)(?&F2)%s", byteRange(byte(hi<<4), lo), skip(hi<<12)))
	}
	for lo := 0; lo < 16; lo++ {
		var values []byte
		for hi := 0; hi<<4|lo <= maxLengthHigh; hi++ {
			values = append(values, byte(hi<<4|lo))
		}
		f2 = append(f2, class(values)+"(?&F3)"+skip(lo<<8))
	}
	for hi := 0; hi < 16; hi++ {
		f3 = append(f3, fmt.Sprintf("(?=%s)(?&F4)%s", byteRange(byte(hi<<4), byte(hi<<4|0x0f)), skip(hi<<4)))
	}
	for lo := 0; lo < 16; lo++ {
		var values []byte
		for hi := 0; hi < 16; hi++ {
			values = append(values, byte(hi<<4|lo))
		}
		f4 = append(f4, class(values)+"(?&FT)"+skip(lo))
	}
	return []subpattern{
		{name: "F", body: `\x00(?&F1)`, uses: []string{"F1"}},
		{name: "F1", body: strings.Join(f1, "|"), uses: []string{"F2"}},
		{name: "F2", body: strings.Join(f2, "|"), uses: []string{"F3"}},
		{name: "F3", body: strings.Join(f3, "|"), uses: []string{"F4"}},
		{name: "F4", body: strings.Join(f4, "|"), uses: []string{"FT"}},
		{name: "FT", body: ".{6}"},
	}
}

// statusField matches a complete :status header field (RFC 7541, section
// 6): indexed (static table entries 8 to 14), or a literal whose name is
// one of those entries and whose value is three digits, raw or
// Huffman-coded. statusOK matches the forms of :status 200.
var (
	statusLiteral = class(append(append(rangeBytes(0x08, 0x0e), rangeBytes(0x18, 0x1e)...), rangeBytes(0x48, 0x4e)...))
	statusOK      = `\x88|` + statusLiteral + "(?:" + literal([]byte("\x03200")) + "|" + literal(append([]byte{0x82}, hpack.AppendHuffmanString(nil, "200")...)) + ")"
	statusAny     = byteRange(0x88, 0x8e) + "|" + statusLiteral + `(?:\x03.{3}|\x82.{2}|\x83.{3})`
)

// rangeBytes returns the bytes from lo to hi.
func rangeBytes(lo, hi byte) []byte {
	var out []byte
	for b := int(lo); b <= int(hi); b++ {
		out = append(out, byte(b))
	}
	return out
}

// blockSubpatterns define what the patterns read in header blocks.
func blockSubpatterns() []subpattern {
	k := header(http2.FrameContinuation, append(continuationMoreFlags, continuationEndFlags...), wire.StreamID)
	return []subpattern{
		// P skips the start of a HEADERS frame's payload that is not
		// header block: the pad length when PADDED, the priority fields
		// when PRIORITY (RFC 9113, section 6.2), read from the flags 5
		// bytes back and the length 9 bytes back. It fails on a frame too
		// short to hold them, which HTTP/2 makes a connection error.
		{name: "P", body: headersFieldsSkip()},
		// U is a dynamic table size update (RFC 7541, section 6.3),
		// which may start a header block.
		{name: "U", body: `[\x20-\x3e]|\x3f[\x80-\xff]*+[\x00-\x7f]`},
		// C is the CONTINUATION frames that end a header block.
		{name: "C", body: "(?:(?=" + header(http2.FrameContinuation, continuationMoreFlags, wire.StreamID) + ")(?&F))*+" +
			"(?=" + header(http2.FrameContinuation, continuationEndFlags, wire.StreamID) + ")(?&F)", uses: []string{"F"}},
		// K is the header of a CONTINUATION frame, which may split a
		// header field anywhere.
		{name: "K", body: k},
	}
}

// headersFieldsSkip returns the body of P.
func headersFieldsSkip() string {
	alts := []string{"(?<=" + class(plainHeadersFlags) + ".{4})"}
	for _, f := range headersFields {
		// A frame length of at least f.size.
		length := `\x00(?:` + byteRange(1, maxLengthHigh) + "." + `|\x00` + byteRange(byte(f.size), 0xff) + ")"
		alts = append(alts, "(?<="+length+"."+class(f.flags)+".{4})"+skip(f.size))
	}
	return "(?>" + strings.Join(alts, "|") + ")"
}

// shortHeaders matches the header of a HEADERS frame on stream 1 shorter
// than the fields its flags announce.
func shortHeaders() string {
	alts := make([]string, len(headersFields))
	for i, f := range headersFields {
		alts[i] = `\x00\x00` + byteRange(0, byte(f.size-1)) + literal([]byte{byte(http2.FrameHeaders)}) + class(f.flags)
	}
	return "(?:" + strings.Join(alts, "|") + ")" + streamID(wire.StreamID)
}

// endHeaders returns the flags in set with END_HEADERS set, or unset.
func endHeaders(set []byte, on bool) []byte {
	return withFlag(set, http2.FlagHeadersEndHeaders, on)
}

// headerBlock matches a complete header block on stream 1 that starts
// with a HEADERS frame whose flags are in set: the frame, and when it
// lacks END_HEADERS, its CONTINUATION frames.
func headerBlock(set []byte) string {
	return "(?=" + header(http2.FrameHeaders, endHeaders(set, true), wire.StreamID) + ")(?&F)" +
		"|(?=" + header(http2.FrameHeaders, endHeaders(set, false), wire.StreamID) + ")(?&F)(?&C)"
}

// EndOfCallPattern is the pattern of the check's first expect rule, which
// waits until the server has ended the call, or until its answer can
// never be a healthy one, so that the rules after it judge a whole
// answer: at a frame boundary, a complete header block that ends stream 1
// (trailers, or a Trailers-Only answer), DATA that ends stream 1, a
// RST_STREAM of stream 1, a GOAWAY that refuses stream 1, response
// headers with a :status other than 200, a HEADERS or CONTINUATION frame
// of stream 1 with flags that HTTP/2 does not define, a HEADERS frame of
// stream 1 too short for the fields its flags announce, or bytes that
// cannot start a frame; or an answer that does not start with a SETTINGS
// frame, and so is not HTTP/2 at all.
func EndOfCallPattern() string {
	stop := []string{
		"(?:" + headerBlock(endStreamFlags) + ")",
		header(http2.FrameData, dataEndStreamFlags, wire.StreamID),
		`\x00\x00\x04` + literal([]byte{byte(http2.FrameRSTStream)}) + "." + streamID(wire.StreamID),
		header(http2.FrameGoAway, nil, 0) + `[\x00\x80]\x00\x00\x00`,
		"(?=" + header(http2.FrameHeaders, headersFlags, wire.StreamID) + ").{9}(?&P)(?&U)*+(?!" + statusOK + ")(?:" + statusAny + ")",
		`(?!\x00(?:` + byteRange(0, maxLengthHigh) + `|\z)).`,
		shortHeaders(),
		// Flags that HTTP/2 does not define, which a server must not send,
		// on a frame that the patterns read.
		`\x00` + byteRange(0, maxLengthHigh) + ".(?:" + literal([]byte{byte(http2.FrameHeaders)}) + "[^" + literal(headersFlags) + "]" +
			"|" + literal([]byte{byte(http2.FrameContinuation)}) + "[^" + literal(append(continuationMoreFlags, continuationEndFlags...)) + "])" + streamID(wire.StreamID),
	}
	defs := append(frameSubpatterns(), blockSubpatterns()...)
	defs = append(defs, subpattern{name: "S", body: strings.Join(stop, "|"), uses: []string{"F", "C", "P", "U"}})
	body := `(?!` + `\x00` + byteRange(0, maxLengthHigh) + "." + literal([]byte{byte(http2.FrameSettings)}) + ").{4}" +
		"|(?:(?!(?&S))(?&F))*+(?&S)"
	return compose(body, defs, "S", "F")
}

// CallPattern is the pattern of a successful call whose only message is
// message, a gRPC Length-Prefixed-Message: after the server's SETTINGS,
// response headers with :status 200, the message in DATA frames without
// flags, and a whole block of trailers with grpc-status 0, on stream 1;
// frames of other streams, and of types that do not carry the call, may
// come between them, and empty DATA frames around the message. A proxy
// may split the message over DATA frames wherever its reads end, so the
// pattern reads the message byte by byte, and takes a DATA frame header,
// after frames that do not carry the call, between any two of its bytes;
// the frames must end where the message does.
func CallPattern(message []byte) string {
	dataHeader := header(http2.FrameData, []byte{0}, wire.StreamID)
	empty := literal([]byte{0, 0, 0, byte(http2.FrameData), 0}) + streamID(wire.StreamID)
	parts := make([]string, len(message))
	for i, c := range message {
		parts[i] = literal([]byte{c})
	}
	defs := append(frameSubpatterns(), blockSubpatterns()...)
	defs = append(defs,
		// O is a frame that does not carry the call: any frame but DATA,
		// HEADERS, CONTINUATION and RST_STREAM on stream 1.
		subpattern{name: "O", body: `(?!\x00` + byteRange(0, maxLengthHigh) + "." +
			class([]byte{byte(http2.FrameData), byte(http2.FrameHeaders), byte(http2.FrameRSTStream), byte(http2.FrameContinuation)}) +
			"." + streamID(wire.StreamID) + ")(?&F)", uses: []string{"F"}},
		// E is O, or an empty DATA frame on stream 1.
		subpattern{name: "E", body: "(?&O)|" + empty, uses: []string{"O"}},
		// Y is where one DATA frame of the message ends and the next
		// begins: frames that do not carry the call, and a DATA frame
		// header without flags.
		subpattern{name: "Y", body: "(?&E)*+" + dataHeader, uses: []string{"E"}},
		// R is the response headers: a header block on stream 1 that does
		// not end it and starts with :status 200.
		subpattern{name: "R", body: "(?=.{9}(?&P)(?&U)*+(?:" + statusOK + "))(?:" + headerBlock(openStreamFlags) + ")", uses: []string{"P", "U", "F", "C"}},
		// G is the header field grpc-status: 0 as a literal without an
		// indexed name (RFC 7541, section 6.2), in every form: with
		// incremental indexing, without indexing or never indexed, name
		// and value each raw or Huffman-coded, and split anywhere by
		// CONTINUATION frame headers.
		subpattern{name: "G", body: grpcStatusZero(), uses: []string{"K"}},
	)
	// The trailers must hold the fields their flags announce, must not
	// start with a :status, as the end-of-call rule reads any HEADERS frame
	// that does as response headers, and must hold G: the block is captured
	// whole, and what follows it as rest, so that a G that ends before rest
	// starts is one of the block's.
	//
	// The message is read byte by byte, but the frames it comes in must
	// end where the message ends: the frames from the first DATA frame on,
	// walked by their lengths, are captured as frames, and the message's
	// reading must end where they do.
	body := "(?=" + header(http2.FrameSettings, nil, 0) + ")(?&O)*+(?&R)(?&E)*+" +
		"(?=(?:(?&E)|(?=" + dataHeader + ")(?&F))*+(?<frames>.*+))" +
		dataHeader + strings.Join(parts, "(?&Y)?") + "(?&E)*+(?=\\k<frames>\\z)" +
		"(?=(?:" + headerBlock(endStreamFlags) + ")(?<rest>.*+))(?=.{9}(?&P)(?!(?&U)*+(?:" + statusAny + ")))" +
		".{9}(?=.*?(?&G)(?=.*\\k<rest>\\z))"
	return compose(body, defs, "O", "E", "Y", "R", "G", "F", "C")
}

// grpcStatusZero returns the body of G.
func grpcStatusZero() string {
	split := func(b []byte) string {
		parts := make([]string, len(b))
		for i, c := range b {
			parts[i] = literal([]byte{c})
		}
		return strings.Join(parts, "(?&K)?")
	}
	name := "(?:" + split(append([]byte{byte(len("grpc-status"))}, "grpc-status"...)) +
		"|" + split(append([]byte{0x80 | byte(hpack.HuffmanEncodeLength("grpc-status"))}, hpack.AppendHuffmanString(nil, "grpc-status")...)) + ")"
	value := "(?:" + split([]byte("\x010")) + "|" + split(append([]byte{0x81}, hpack.AppendHuffmanString(nil, "0")...)) + ")"
	return `[\x00\x10\x40](?&K)?` + name + "(?&K)?" + value
}

// compose returns the pattern of body, with the DEFINE group of the
// subpatterns among defs that roots call, directly or not.
func compose(body string, defs []subpattern, roots ...string) string {
	byName := map[string]subpattern{}
	for _, d := range defs {
		byName[d.name] = d
	}
	used := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if used[name] {
			return
		}
		used[name] = true
		for _, u := range byName[name].uses {
			visit(u)
		}
	}
	for _, r := range roots {
		visit(r)
	}
	var s strings.Builder
	s.WriteString(`(?s)\A(?:` + body + `)(?(DEFINE)`)
	for _, d := range defs {
		if used[d.name] {
			fmt.Fprintf(&s, "(?<%s>%s)", d.name, d.body)
		}
	}
	s.WriteString(")")
	return s.String()
}
