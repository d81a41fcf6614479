package h2answer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// Catalog returns every answer a check must judge as a gRPC client does:
// healthy calls in every framing and encoding that servers and proxies
// send or that HTTP/2 allows them to, not-serving calls, failed calls of
// every kind seen in front of gRPC servers, and answers that leave the
// call open.
func Catalog() []Answer {
	return slices.Concat(healthyFramings(), healthyStatusLiterals(), healthySizes(), healthyInterleavings(),
		notServing(), failedCalls(), failedNonGRPC(), hanging())
}

// Exotic returns answers that no measured server or proxy sends, which a
// check may or may not support: legal framings of a healthy call, and
// illegal answers that hold every byte a check looks for.
func Exotic() []Answer {
	return []Answer{
		healthy("padded-data", "padded DATA: the message in a DATA frame with PADDED (flags 0x08) and 16 bytes of padding (RFC 9113, section 6.1)",
			func(b *builder, m Messages) {
				b.serverPreface().response().
					frame(func(fr *http2.Framer) error {
						return fr.WriteDataPadded(wire.StreamID, false, m.Healthy, make([]byte, 16))
					}).
					trailers("0", "")
			}),
		healthy("trailers-unused-flags", "trailers in HEADERS with every unused flag set besides END_STREAM|END_HEADERS (flags 0xD7); receivers must ignore unused flags (RFC 9113, section 4.1)",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false)
				block := b.fields(trailerFields("0", "")...)
				b.frame(func(fr *http2.Framer) error {
					return fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersEndStream|http2.FlagHeadersEndHeaders|0xD2, wire.StreamID, block)
				})
			}),
		healthy("data-unused-flags", "the message in DATA with every unused flag set (flags 0xF6); receivers must ignore unused flags (RFC 9113, section 4.1)",
			func(b *builder, m Messages) {
				b.serverPreface().response().
					frame(func(fr *http2.Framer) error { return fr.WriteRawFrame(http2.FrameData, 0xF6, wire.StreamID, m.Healthy) }).
					trailers("0", "")
			}),
		healthy("headers-priority-status-like", "response HEADERS with PRIORITY (flags 0x24) whose stream dependency, 0x4e826c02, reads like a :status 500 literal to whoever skips the priority fields too early",
			func(b *builder, m Messages) {
				b.serverPreface().headersParam(b.fields(responseFields()...), false,
					http2.HeadersFrameParam{Priority: http2.PriorityParam{StreamDep: 0x4e826c02, Weight: 15}}).
					data(m.Healthy, false).trailers("0", "")
			}),
		failed("headers-short-priority", "response headers in a HEADERS frame with PRIORITY (flags 0x24) of 4 bytes, shorter than its 5 bytes of priority fields: a connection error (RFC 9113, section 6.2); then the healthy message and trailers",
			func(b *builder, m Messages) {
				b.serverPreface().
					frame(func(fr *http2.Framer) error {
						return fr.WriteRawFrame(http2.FrameHeaders, http2.FlagHeadersPriority|http2.FlagHeadersEndHeaders, wire.StreamID, []byte{0, 0, 0, 0})
					}).
					data(m.Healthy, false).trailers("0", "")
			}),
		failed("no-server-settings", "a healthy call without the server's SETTINGS first: a client fails the connection (RFC 9113, section 3.4), though every byte a check looks for is there",
			func(b *builder, m Messages) { b.response().data(m.Healthy, false).trailers("0", "") }),
		closing(failed("garbage-with-message", "not HTTP/2, yet it holds the healthy message and a trailers frame header; then the server closes",
			func(b *builder, m Messages) {
				b.raw([]byte("\xff\xff\xffnot HTTP/2 "))
				b.raw(m.Healthy)
				b.raw([]byte{0, 0, 0, byte(http2.FrameHeaders), byte(http2.FlagHeadersEndStream | http2.FlagHeadersEndHeaders), 0, 0, 0, wire.StreamID})
			})),
		failed("garbage-kept-open", "bytes that are not HTTP/2 on a connection the server keeps open, as a server of another protocol does: a client fails the connection at once",
			func(b *builder, m Messages) { b.raw(garbage) }),
	}
}

// healthy returns an answer with a successful call whose message is the
// healthy one.
func healthy(name, note string, write func(*builder, Messages)) Answer {
	return Answer{Name: name, Want: Healthy, EndsCall: true, Note: note, Build: build(write)}
}

// failed returns an answer that ends a call that failed.
func failed(name, note string, write func(*builder, Messages)) Answer {
	return Answer{Name: name, Want: Failed, EndsCall: true, Note: note, Build: build(write)}
}

// closing returns a with the connection closed after it.
func closing(a Answer) Answer {
	a.Close = true
	return a
}

// healthyFramings are healthy calls framed in each way HTTP/2 allows.
func healthyFramings() []Answer {
	padded := http2.HeadersFrameParam{PadLength: 16}
	priority := http2.HeadersFrameParam{Priority: http2.PriorityParam{StreamDep: 0, Weight: 15}}
	both := http2.HeadersFrameParam{PadLength: 16, Priority: priority.Priority}
	responseWith := func(p http2.HeadersFrameParam) func(*builder, Messages) {
		return func(b *builder, m Messages) {
			b.serverPreface().headersParam(b.fields(responseFields()...), false, p).data(m.Healthy, false).trailers("0", "")
		}
	}
	trailersWith := func(p http2.HeadersFrameParam) func(*builder, Messages) {
		return func(b *builder, m Messages) {
			b.serverPreface().response().data(m.Healthy, false).headersParam(b.fields(trailerFields("0", "")...), true, p)
		}
	}
	return []Answer{
		healthy("split-message", "the message over two DATA frames, as nginx forwards a message whose bytes reach it in two reads",
			func(b *builder, m Messages) {
				half := len(m.Healthy) / 2
				b.serverPreface().response().data(m.Healthy[:half], false).data(m.Healthy[half:], false).trailers("0", "")
			}),
		healthy("split-message-every-byte", "the message one byte per DATA frame, with a PING and an empty DATA frame between two of them, as a proxy forwards a message that reaches it a byte at a time",
			func(b *builder, m Messages) {
				b.serverPreface().response()
				for i, c := range m.Healthy {
					if i == 2 {
						b.frame(func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) }).data(nil, false)
					}
					b.data([]byte{c}, false)
				}
				b.trailers("0", "")
			}),
		healthy("plain", "grpc-go's framing: SETTINGS, SETTINGS ACK, HEADERS (END_HEADERS), DATA, trailers in HEADERS (END_STREAM|END_HEADERS)",
			func(b *builder, m Messages) { b.call(m.Healthy) }),
		healthy("trailers-continuation", "trailers in HEADERS (END_STREAM, flags 0x01) and one CONTINUATION (END_HEADERS)",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false)
				block := b.fields(trailerFields("0", "")...)
				b.headersCut(block, true, len(block)/2)
			}),
		healthy("trailers-continuations", "trailers in HEADERS (END_STREAM) and three CONTINUATION frames",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false)
				block := b.fields(trailerFields("0", "")...)
				b.headersCut(block, true, len(block)/4, len(block)/2, 3*len(block)/4)
			}),
		healthy("grpc-status-split", "trailers in HEADERS and CONTINUATION cut through the middle of the grpc-status field",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false)
				status := b.fields(pairs("grpc-status", "0")...)
				message := b.fields(pairs("grpc-message", "")...)
				b.headersCut(slices.Concat(status, message), true, len(status)/2)
			}),
		healthy("headers-continuation", "response headers in HEADERS and one CONTINUATION (END_HEADERS)",
			func(b *builder, m Messages) {
				block := b.fields(responseFields()...)
				b.serverPreface().headersCut(block, false, len(block)/2).data(m.Healthy, false).trailers("0", "")
			}),
		healthy("headers-continuations", "response headers in HEADERS and a CONTINUATION for every 4 bytes of the block",
			func(b *builder, m Messages) {
				block := b.fields(responseFields()...)
				var cuts []int
				for cut := 4; cut < len(block); cut += 4 {
					cuts = append(cuts, cut)
				}
				b.serverPreface().headersCut(block, false, cuts...).data(m.Healthy, false).trailers("0", "")
			}),
		healthy("headers-padded", "response HEADERS with PADDED (flags 0x0C) and 16 bytes of padding", responseWith(padded)),
		healthy("headers-priority", "response HEADERS with PRIORITY (flags 0x24)", responseWith(priority)),
		healthy("headers-padded-priority", "response HEADERS with PADDED and PRIORITY (flags 0x2C)", responseWith(both)),
		healthy("trailers-padded", "trailers in HEADERS with PADDED (flags 0x0D) and 16 bytes of padding", trailersWith(padded)),
		healthy("trailers-priority", "trailers in HEADERS with PRIORITY (flags 0x25)", trailersWith(priority)),
		healthy("trailers-padded-priority", "trailers in HEADERS with PADDED and PRIORITY (flags 0x2D)", trailersWith(both)),
		healthy("dynamic-table-size-update", "a dynamic table size update to 2048 at the start of the response header block (RFC 7541, section 6.3)",
			func(b *builder, m Messages) {
				b.enc.SetMaxDynamicTableSize(2048)
				b.call(m.Healthy)
			}),
		healthy("dynamic-table-size-updates", "two dynamic table size updates, to 0 and back to 4096, at the start of the response header block (RFC 7541, section 4.2)",
			func(b *builder, m Messages) {
				b.enc.SetMaxDynamicTableSize(0)
				b.enc.SetMaxDynamicTableSize(4096)
				b.call(m.Healthy)
			}),
		healthy("status-200-literal", ":status 200 as a literal without indexing with the indexed name :status (08 03 '200') rather than the indexed field 0x88",
			func(b *builder, m Messages) {
				block := slices.Concat(statusLiteral(false), b.fields(pairs("content-type", "application/grpc")...))
				b.serverPreface().headers(block, false).data(m.Healthy, false).trailers("0", "")
			}),
		healthy("status-200-literal-huffman", ":status 200 as a literal without indexing, its value Huffman-coded (08 82 1001)",
			func(b *builder, m Messages) {
				block := slices.Concat(statusLiteral(true), b.fields(pairs("content-type", "application/grpc")...))
				b.serverPreface().headers(block, false).data(m.Healthy, false).trailers("0", "")
			}),
	}
}

// statusLiteral is ":status: 200" as a literal header field without
// indexing whose name is the static table's :status, index 8 (RFC 7541,
// section 6.2.2). Without indexing, the decoder's dynamic table stays as
// the builder's encoder knows it.
func statusLiteral(huffman bool) []byte {
	return appendString(appendPrefixInt(nil, literalWithoutIndexing, 4, 8), "200", huffman)
}

// healthyStatusLiterals are healthy calls whose grpc-status 0 is in each
// literal representation of RFC 7541, name and value each raw or
// Huffman-coded.
func healthyStatusLiterals() []Answer {
	forms := []struct {
		name string
		form byte
	}{
		{"incremental", literalIncrementalIndexing},
		{"without-indexing", literalWithoutIndexing},
		{"never-indexed", literalNeverIndexed},
	}
	coding := map[bool]string{false: "raw", true: "huffman"}
	var answers []Answer
	for _, f := range forms {
		for _, nameHuffman := range []bool{false, true} {
			for _, valueHuffman := range []bool{false, true} {
				field := LiteralField(f.form, "grpc-status", nameHuffman, "0", valueHuffman)
				answers = append(answers, healthy(
					fmt.Sprintf("grpc-status-%s-name-%s-value-%s", f.name, coding[nameHuffman], coding[valueHuffman]),
					fmt.Sprintf("grpc-status 0 as a literal %s with a new name, name %s, value %s (RFC 7541, section 6.2): % x",
						strings.ReplaceAll(f.name, "-", " "), coding[nameHuffman], coding[valueHuffman], field),
					func(b *builder, m Messages) {
						b.serverPreface().response().data(m.Healthy, false)
						// The hand-assembled field comes last: see literalField.
						b.headers(slices.Concat(b.fields(pairs("grpc-message", "")...), field), true)
					}))
			}
		}
	}
	return answers
}

// metadataKey is the name of the custom metadata that makes answers large.
const metadataKey = "x-metadata"

// metadata is custom metadata whose value is n bytes. 'X' has an 8-bit
// Huffman code, so the encoder sends the value raw, n bytes on the wire.
func metadata(n int) hpack.HeaderField {
	return hpack.HeaderField{Name: metadataKey, Value: strings.Repeat("X", n)}
}

// HAProxy limits that sized answers sit at.
const (
	// checkBufferSize is HAProxy's tune.bufsize, the size of a check's
	// receive buffer: what does not fit is never read.
	checkBufferSize = 16384
	// rbinaryVisible is how many bytes of the buffer an `expect rbinary`
	// rule sees: HAProxy matches the regex against the buffer dumped as hex
	// into a chunk of tune.bufsize, and only its first 16383 characters.
	rbinaryVisible = (checkBufferSize - 1) / 2
)

// withMetadata writes a healthy call with n bytes of metadata in the
// response headers.
func withMetadata(n int) func(*builder, Messages) {
	return func(b *builder, m Messages) {
		b.serverPreface().response(metadata(n)).data(m.Healthy, false).trailers("0", "")
	}
}

// healthySizes are healthy calls made large by metadata.
func healthySizes() []Answer {
	return []Answer{
		healthy("metadata-5000", "5,000 bytes of metadata in the response headers", withMetadata(5000)),
		healthy("metadata-5500", "5,500 bytes of metadata in the response headers", withMetadata(5500)),
		healthy("metadata-12k", "12 KiB of metadata in the response headers; C-core clients refuse some answers over 8 KiB of metadata and all over 16 KiB, grpc-go none", withMetadata(12<<10)),
		healthy("trailers-metadata-12k", "12 KiB of metadata in the trailers",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false).trailers("0", "", metadata(12<<10))
			}),
		{
			Name: "size-16382", Want: Healthy, EndsCall: true,
			Note: fmt.Sprintf("metadata in the response headers and the trailers, each under C-core's limit of 16 KiB, that make the whole answer %d bytes, just under HAProxy's check buffer (tune.bufsize %d)", checkBufferSize-2, checkBufferSize),
			Build: func(m Messages) []byte {
				return fit(checkBufferSize-2, func(n int) ([]byte, int) {
					answer := build(func(b *builder, m Messages) {
						b.serverPreface().response(metadata(n/2)).data(m.Healthy, false).trailers("0", "", metadata(n-n/2))
					})(m)
					return answer, len(answer)
				})
			},
		},
		trailersAt(rbinaryVisible, "the last byte HAProxy's expect rbinary sees whole"),
		trailersAt(rbinaryVisible+1, "one byte past what HAProxy's expect rbinary sees"),
	}
}

// trailersAt returns a healthy answer whose metadata put the last byte of
// the trailers' frame header at byte end of the answer (counted from 1).
func trailersAt(end int, why string) Answer {
	return Answer{
		Name: fmt.Sprintf("trailers-at-%d", end), Want: Healthy, EndsCall: true,
		Note: fmt.Sprintf("metadata that put the last byte of the trailers' frame header at byte %d of the answer, %s", end, why),
		Build: func(m Messages) []byte {
			return fit(end, func(n int) ([]byte, int) {
				b := newBuilder()
				withMetadata(n)(b, m)
				trailers := b.frameStarts[len(b.frameStarts)-1]
				return b.bytes(), trailers + wire.FrameHeaderLen
			})
		},
	}
}

// healthyInterleavings are healthy calls with other frames between theirs.
func healthyInterleavings() []Answer {
	between := func(extra func(*builder)) func(*builder, Messages) {
		return func(b *builder, m Messages) {
			b.serverPreface().response()
			extra(b)
			b.data(m.Healthy, false).trailers("0", "")
		}
	}
	unknownFrame := func(stream uint32, flags http2.Flags) func(*builder) {
		return func(b *builder) {
			b.frame(func(fr *http2.Framer) error { return fr.WriteRawFrame(0xFA, flags, stream, []byte("h2answer")) })
		}
	}
	return []Answer{
		healthy("ping", "a PING between the response headers and the DATA, as grpc-go's BDP estimator sends one",
			between(func(b *builder) {
				b.frame(func(fr *http2.Framer) error {
					return fr.WritePing(false, [8]byte{'h', '2', 'a', 'n', 's', 'w', 'e', 'r'})
				})
			})),
		healthy("window-update-stream-0", "a WINDOW_UPDATE for the connection between the response headers and the DATA",
			between(func(b *builder) {
				b.frame(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 983041) })
			})),
		healthy("window-update-stream-1", "a WINDOW_UPDATE on stream 1 between the response headers and the DATA",
			between(func(b *builder) {
				b.frame(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(wire.StreamID, 65535) })
			})),
		healthy("settings-ack-late", "the server's SETTINGS ACK between the response headers and the DATA rather than before them",
			func(b *builder, m Messages) {
				b.settings().response().settingsAck().data(m.Healthy, false).trailers("0", "")
			}),
		healthy("settings-update", "a second SETTINGS from the server (SETTINGS_MAX_CONCURRENT_STREAMS 100) between the response headers and the DATA",
			between(func(b *builder) {
				b.frame(func(fr *http2.Framer) error {
					return fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
				})
			})),
		healthy("unknown-frame-stream-0", "a frame of unknown type 0xFA on stream 0, which a client ignores (RFC 9113, section 5.5)",
			between(unknownFrame(0, 0))),
		healthy("unknown-frame-stream-1", "a frame of unknown type 0xFA on stream 1", between(unknownFrame(wire.StreamID, 0))),
		healthy("unknown-frame-end-flags", "a frame of unknown type 0xFA on stream 1 whose flags (0x05) read like END_STREAM|END_HEADERS",
			between(unknownFrame(wire.StreamID, http2.FlagHeadersEndStream|http2.FlagHeadersEndHeaders))),
		healthy("priority-frame", "a PRIORITY frame on stream 1 between the response headers and the DATA",
			between(func(b *builder) {
				b.frame(func(fr *http2.Framer) error {
					return fr.WritePriority(wire.StreamID, http2.PriorityParam{StreamDep: 0, Weight: 15})
				})
			})),
		healthy("empty-data-before", "an empty DATA frame on stream 1 before the message",
			between(func(b *builder) { b.data(nil, false) })),
		healthy("empty-data-after", "an empty DATA frame on stream 1 between the message and the trailers",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false).data(nil, false).trailers("0", "")
			}),
		closing(healthy("goaway-after-trailers", "GOAWAY NO_ERROR with last-stream-id 1 after the trailers, then the close, as a server that stops gracefully",
			func(b *builder, m Messages) {
				b.call(m.Healthy).frame(func(fr *http2.Framer) error { return fr.WriteGoAway(wire.StreamID, http2.ErrCodeNo, nil) })
			})),
		healthy("rst-no-error-after-trailers", "RST_STREAM NO_ERROR on stream 1 after the trailers, which servers may send to a client that has not ended its stream (RFC 9113, section 8.1)",
			func(b *builder, m Messages) {
				b.call(m.Healthy).frame(func(fr *http2.Framer) error { return fr.WriteRSTStream(wire.StreamID, http2.ErrCodeNo) })
			}),
	}
}

// notServing are successful calls whose message is the not-serving one.
func notServing() []Answer {
	notServing := func(name, note string, write func(*builder, Messages)) Answer {
		return Answer{Name: name, Want: NotServing, EndsCall: true, Note: note, Build: build(write)}
	}
	return []Answer{
		notServing("not-serving-plain", "the not-serving message in grpc-go's framing",
			func(b *builder, m Messages) { b.call(m.NotServing) }),
		notServing("not-serving-trailers-continuation", "the not-serving message, trailers in HEADERS and CONTINUATION",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.NotServing, false)
				block := b.fields(trailerFields("0", "")...)
				b.headersCut(block, true, len(block)/2)
			}),
	}
}

// failedCalls are gRPC answers in which the call fails.
func failedCalls() []Answer {
	withStatus := func(status, message string) func(*builder, Messages) {
		return func(b *builder, m Messages) {
			b.serverPreface().response().data(m.Healthy, false).trailers(status, message)
		}
	}
	trailersOnly := func(status, message string) func(*builder, Messages) {
		return func(b *builder, m Messages) {
			b.serverPreface().headers(b.fields(append(responseFields(), trailerFields(status, message)...)...), true)
		}
	}
	return []Answer{
		failed("grpc-status-13", "the healthy message, then trailers with grpc-status 13 (Internal)", withStatus("13", "internal error")),
		failed("no-grpc-status", "the healthy message, then trailers without grpc-status",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false).headers(b.fields(pairs("grpc-message", "")...), true)
			}),
		failed("grpc-status-word", `the healthy message, then grpc-status "OK", not a number`, withStatus("OK", "")),
		failed("grpc-status-minus-one", `the healthy message, then grpc-status "-1"`, withStatus("-1", "")),
		failed("grpc-status-23-digits", "the healthy message, then a grpc-status of 23 digits, beyond any integer a client parses",
			withStatus("1"+strings.Repeat("0", 22), "")),
		failed("grpc-status-empty", "the healthy message, then an empty grpc-status", withStatus("", "")),
		failed("grpc-status-space", `the healthy message, then grpc-status " "`, withStatus(" ", "")),
		failed("two-messages-one-data", "two healthy messages in one DATA frame: a unary call has one response message",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(slices.Concat(m.Healthy, m.Healthy), false).trailers("0", "")
			}),
		failed("two-messages-two-data", "two healthy messages, each in its DATA frame",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false).data(m.Healthy, false).trailers("0", "")
			}),
		failed("trailers-only-14", "Trailers-Only: one HEADERS (END_STREAM|END_HEADERS) with grpc-status 14 (Unavailable)", trailersOnly("14", "not serving")),
		failed("trailers-only-12", "Trailers-Only with grpc-status 12 (Unimplemented), as a server of another service answers", trailersOnly("12", "unknown service")),
		failed("trailers-only-status-space", `Trailers-Only with grpc-status " "`, trailersOnly(" ", "")),
		failed("rst-before-headers", "RST_STREAM REFUSED_STREAM on stream 1 before any response headers",
			func(b *builder, m Messages) {
				b.serverPreface().frame(func(fr *http2.Framer) error { return fr.WriteRSTStream(wire.StreamID, http2.ErrCodeRefusedStream) })
			}),
		failed("rst-after-headers", "RST_STREAM INTERNAL_ERROR on stream 1 after the response headers",
			func(b *builder, m Messages) {
				b.serverPreface().response().frame(func(fr *http2.Framer) error { return fr.WriteRSTStream(wire.StreamID, http2.ErrCodeInternal) })
			}),
		failed("rst-after-message", "the healthy message, then RST_STREAM INTERNAL_ERROR on stream 1 instead of trailers",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy, false).
					frame(func(fr *http2.Framer) error { return fr.WriteRSTStream(wire.StreamID, http2.ErrCodeInternal) })
			}),
		closing(failed("goaway-refused", "GOAWAY ENHANCE_YOUR_CALM with last-stream-id 0, refusing stream 1, then the close",
			func(b *builder, m Messages) {
				b.serverPreface().frame(func(fr *http2.Framer) error {
					return fr.WriteGoAway(0, http2.ErrCodeEnhanceYourCalm, []byte("too_many_pings"))
				})
			})),
		failed("data-end-stream", "the healthy message in DATA with END_STREAM, and no trailers",
			func(b *builder, m Messages) { b.serverPreface().response().data(m.Healthy, true) }),
		failed("compressed-message", "the healthy message gzip-compressed (Compressed-Flag 1, grpc-encoding gzip) with grpc-status 0, which the check never asks for",
			func(b *builder, m Messages) {
				b.serverPreface().response(pairs("grpc-encoding", "gzip")...).data(compressed(m.Healthy), false).trailers("0", "")
			}),
		failed("truncated-message", "DATA holding the healthy message but its last byte, then trailers with grpc-status 0",
			func(b *builder, m Messages) {
				b.serverPreface().response().data(m.Healthy[:len(m.Healthy)-1], false).trailers("0", "")
			}),
		failed("grpc-message-10k", "the healthy message, then trailers with grpc-status 13 and a grpc-message of 10 KiB",
			withStatus("13", strings.Repeat("X", 10<<10))),
		failed("metadata-20k", fmt.Sprintf("20 KiB of metadata in the response headers (HEADERS and CONTINUATION), then the healthy call: larger than HAProxy's check buffer (%d bytes) and C-core's limit of 16 KiB of metadata", checkBufferSize),
			func(b *builder, m Messages) {
				b.serverPreface().response(metadata(20<<10)).data(m.Healthy, false).trailers("0", "")
			}),
	}
}

// compressed returns msg's serialized message gzip-compressed as a
// Length-Prefixed-Message with Compressed-Flag 1.
func compressed(msg []byte) []byte {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if _, err := w.Write(msg[wire.MessagePrefixLen:]); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	out := wire.Message(z.Bytes())
	out[0] = 1
	return out
}

// garbage is bytes that are not HTTP/2: read as a frame header, their
// length is beyond any maximum frame size.
var garbage = []byte("\xff\xff\xff\xff\x00garbage, not HTTP/2\r\n")

// Bodies of the error pages proxies answer when the gRPC server behind
// them is down.
const (
	nginx502Body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
	haproxy503   = "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"
	notGRPCBody  = "not a gRPC server\n"
)

// failedNonGRPC are answers of servers and proxies that are not, or no
// longer reach, a gRPC server.
func failedNonGRPC() []Answer {
	page := func(status, contentType, body string, extra ...string) func(*builder, Messages) {
		return func(b *builder, m Messages) {
			fields := slices.Concat(pairs(":status", status), pairs(extra...),
				pairs("content-type", contentType, "content-length", strconv.Itoa(len(body))))
			b.serverPreface().headers(b.fields(fields...), false).data([]byte(body), true)
		}
	}
	return []Answer{
		failed("nginx-502", "nginx's answer when its gRPC upstream is down: :status 502, text/html, the page in DATA with END_STREAM",
			page("502", "text/html", nginx502Body, "server", "nginx/1.22.1", "date", "Mon, 06 Jan 2025 10:00:00 GMT")),
		failed("haproxy-503", "HAProxy's answer in mode http when no server is available: :status 503, text/html, the page in DATA with END_STREAM",
			page("503", "text/html", haproxy503, "cache-control", "no-cache")),
		failed("caddy-502", "Caddy's answer when its upstream is down: one HEADERS (END_STREAM|END_HEADERS) with only :status 502",
			func(b *builder, m Messages) { b.serverPreface().headers(b.fields(pairs(":status", "502")...), true) }),
		failed("http2-not-grpc", "an HTTP/2 web server: :status 200, text/plain, the body in DATA with END_STREAM",
			page("200", "text/plain; charset=utf-8", notGRPCBody, "date", "Mon, 06 Jan 2025 10:00:00 GMT")),
		closing(failed("http1-400", "an HTTP/1 server's answer to the HTTP/2 preface, then the close",
			func(b *builder, m Messages) {
				b.raw([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"))
			})),
		closing(failed("garbage", "bytes that are not HTTP/2, then the close",
			func(b *builder, m Messages) { b.raw(garbage) })),
	}
}

// hanging are answers that leave the call and the connection open.
func hanging() []Answer {
	hangs := func(name, note string, write func(*builder, Messages)) Answer {
		return Answer{Name: name, Want: Failed, EndsCall: false, Note: note, Build: build(write)}
	}
	return []Answer{
		hangs("no-trailers", "the healthy message, then nothing: no trailers, the connection kept open",
			func(b *builder, m Messages) { b.serverPreface().response().data(m.Healthy, false) }),
		hangs("headers-only", "only the response headers",
			func(b *builder, m Messages) { b.serverPreface().response() }),
		hangs("settings-only", "only the server's SETTINGS and its SETTINGS ACK",
			func(b *builder, m Messages) { b.serverPreface() }),
	}
}
