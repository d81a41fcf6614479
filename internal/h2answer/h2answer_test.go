package h2answer_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/h2answer"
)

// healthRPCMessages are the messages of a health RPC of one's own:
// servicestatus.HealthCheckResponse{Status: "MagicResponseCodeOK"} and
// {Status: "Draining"}, field 1 a string.
var healthRPCMessages = h2answer.Messages{
	Healthy:    lengthPrefixed(append([]byte{0x0a, 19}, "MagicResponseCodeOK"...)),
	NotServing: lengthPrefixed(append([]byte{0x0a, 8}, "Draining"...)),
}

// lengthPrefixed returns msg as a gRPC Length-Prefixed-Message.
func lengthPrefixed(msg []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg))), msg...)
}

var messageSets = []struct {
	name string
	msgs h2answer.Messages
}{
	{"grpc.health.v1", h2answer.HealthMessages},
	{"health-rpc", healthRPCMessages},
}

// allAnswers are the catalog's answers and the exotic ones.
func allAnswers() []h2answer.Answer {
	return slices.Concat(h2answer.Catalog(), h2answer.Exotic())
}

func TestHealthMessages(t *testing.T) {
	want := h2answer.Messages{Healthy: []byte{0, 0, 0, 0, 2, 0x08, 0x01}, NotServing: []byte{0, 0, 0, 0, 2, 0x08, 0x02}}
	if !bytes.Equal(h2answer.HealthMessages.Healthy, want.Healthy) || !bytes.Equal(h2answer.HealthMessages.NotServing, want.NotServing) {
		t.Errorf("HealthMessages = % x / % x, want % x / % x", h2answer.HealthMessages.Healthy, h2answer.HealthMessages.NotServing, want.Healthy, want.NotServing)
	}
}

var answerName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func TestAnswersAreDescribed(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range allAnswers() {
		if !answerName.MatchString(a.Name) {
			t.Errorf("answer name %q is not lower case words joined by hyphens", a.Name)
		}
		if seen[a.Name] {
			t.Errorf("two answers are named %q", a.Name)
		}
		seen[a.Name] = true
		if a.Note == "" {
			t.Errorf("%s: no Note", a.Name)
		}
		if a.Want != h2answer.Healthy && a.Want != h2answer.NotServing && a.Want != h2answer.Failed {
			t.Errorf("%s: Want is %v", a.Name, a.Want)
		}
		if !a.EndsCall && (a.Want != h2answer.Failed || a.Close) {
			t.Errorf("%s: an answer that leaves the call open must fail and keep the connection open", a.Name)
		}
		for _, set := range messageSets {
			if first, second := a.Bytes(set.msgs), a.Bytes(set.msgs); !bytes.Equal(first, second) {
				t.Errorf("%s with %s: two builds differ", a.Name, set.name)
			}
		}
	}
	for _, a := range h2answer.Exotic() {
		for _, c := range h2answer.Catalog() {
			if a.Name == c.Name {
				t.Errorf("%s is both in Catalog and Exotic", a.Name)
			}
		}
	}
}

func TestBytesRejectsBadMessages(t *testing.T) {
	for name, msgs := range map[string]h2answer.Messages{
		"short":      {Healthy: []byte{0, 0, 0}, NotServing: h2answer.HealthMessages.NotServing},
		"compressed": {Healthy: []byte{1, 0, 0, 0, 2, 0x08, 0x01}, NotServing: h2answer.HealthMessages.NotServing},
		"bad length": {Healthy: h2answer.HealthMessages.Healthy, NotServing: []byte{0, 0, 0, 0, 3, 0x08, 0x02}},
		"same":       {Healthy: h2answer.HealthMessages.Healthy, NotServing: h2answer.HealthMessages.Healthy},
	} {
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Bytes accepted messages %+v", msgs)
				}
			}()
			h2answer.Catalog()[0].Bytes(msgs)
		})
	}
}

// TestCatalogAsGRPCClient reads every answer back as a gRPC client does
// and checks that it agrees with the answer's Want and EndsCall.
func TestCatalogAsGRPCClient(t *testing.T) {
	for _, set := range messageSets {
		for _, a := range allAnswers() {
			t.Run(set.name+"/"+a.Name, func(t *testing.T) {
				got := readAsClient(a.Bytes(set.msgs), a.Close, set.msgs)
				if got.verdict != a.Want || got.ended != a.EndsCall {
					t.Errorf("a gRPC client reads %v, ended %v (%s); the answer says %v, EndsCall %v",
						got.verdict, got.ended, got.why, a.Want, a.EndsCall)
				}
				t.Logf("%v, ended %v: %s", got.verdict, got.ended, got.why)
			})
		}
	}
}

// clientReading is what a gRPC client makes of an answer.
type clientReading struct {
	verdict h2answer.Verdict
	// ended says that the client knows the call's outcome without
	// waiting for more.
	ended bool
	why   string
}

// Limits of a gRPC client, as it announces them or applies them.
const (
	// clientMaxFrameSize is the SETTINGS_MAX_FRAME_SIZE a client has not
	// raised: a larger frame is a connection error (RFC 9113, section 4.2).
	clientMaxFrameSize = 16384
	// clientMaxHeaderListSize is gRPC C-core's hard limit on received
	// metadata (grpc.absolute_max_metadata_size), 16 KiB.
	clientMaxHeaderListSize = 16 << 10
)

// readAsClient reads answer, which closes with the connection's close when
// closes, as a gRPC client reads the answer to a unary call on stream 1,
// with x/net/http2's Framer and HPACK decoder. This is the test's oracle,
// written apart from the package's code.
func readAsClient(answer []byte, closes bool, msgs h2answer.Messages) clientReading {
	failed := func(why string, args ...any) clientReading {
		return clientReading{verdict: h2answer.Failed, ended: true, why: fmt.Sprintf(why, args...)}
	}
	fr := http2.NewFramer(nil, bytes.NewReader(answer))
	fr.SetMaxReadFrameSize(clientMaxFrameSize)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = clientMaxHeaderListSize

	var response, trailers *http2.MetaHeadersFrame
	var data []byte
	for n := 0; ; n++ {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return failed("the connection fails: %v", err)
		}
		if n == 0 {
			// RFC 9113, section 3.4: the server's preface is a SETTINGS
			// frame.
			if s, ok := f.(*http2.SettingsFrame); !ok || s.IsAck() {
				return failed("the first frame is %v, not the server's SETTINGS", f.Header())
			}
		}
		if trailers != nil {
			continue // the call is over; later frames do not change it
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				return failed("HEADERS on stream %d", f.StreamID)
			}
			if f.Truncated {
				return failed("metadata over %d bytes", clientMaxHeaderListSize)
			}
			if response == nil {
				response = f
				if s := f.PseudoValue("status"); s != "200" {
					return failed(":status %q", s)
				}
				if ct := fieldValue(f, "content-type"); ct != "application/grpc" && !strings.HasPrefix(ct, "application/grpc+") && !strings.HasPrefix(ct, "application/grpc;") {
					return failed("content-type %q", ct)
				}
				if f.StreamEnded() {
					trailers = f // Trailers-Only
				}
				continue
			}
			if !f.StreamEnded() {
				return failed("a second HEADERS without END_STREAM")
			}
			trailers = f
		case *http2.DataFrame:
			if f.StreamID != 1 {
				continue
			}
			if response == nil {
				return failed("DATA before the response headers")
			}
			data = append(data, f.Data()...)
			if f.StreamEnded() {
				return failed("the stream ended on DATA, without trailers")
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return failed("RST_STREAM %v", f.ErrCode)
			}
		case *http2.GoAwayFrame:
			if f.LastStreamID < 1 {
				return failed("GOAWAY %v with last-stream-id %d", f.ErrCode, f.LastStreamID)
			}
		}
	}
	if trailers == nil {
		return clientReading{verdict: h2answer.Failed, ended: closes, why: "the call has no end"}
	}

	status, ok := fieldLookup(trailers, "grpc-status")
	if !ok {
		return failed("no grpc-status")
	}
	code, err := strconv.ParseInt(status, 10, 32)
	if err != nil {
		return failed("grpc-status %q is not a number", status)
	}
	if code != 0 {
		return failed("grpc-status %d", code)
	}
	var messages [][]byte
	for len(data) > 0 {
		if len(data) < 5 {
			return failed("the DATA ends inside a message prefix")
		}
		n := binary.BigEndian.Uint32(data[1:5])
		if uint64(len(data)-5) < uint64(n) {
			return failed("the DATA ends inside a message")
		}
		if data[0] != 0 {
			return failed("a compressed message, though the call never accepts compression")
		}
		messages = append(messages, data[:5+n])
		data = data[5+n:]
	}
	switch {
	case len(messages) != 1:
		return failed("%d messages in a unary call", len(messages))
	case bytes.Equal(messages[0], msgs.Healthy):
		return clientReading{verdict: h2answer.Healthy, ended: true, why: "grpc-status 0 and the healthy message"}
	case bytes.Equal(messages[0], msgs.NotServing):
		return clientReading{verdict: h2answer.NotServing, ended: true, why: "grpc-status 0 and the not-serving message"}
	}
	return failed("another message: % x", messages[0])
}

// fieldLookup returns the value of f's field name, and whether f has it.
func fieldLookup(f *http2.MetaHeadersFrame, name string) (string, bool) {
	for _, hf := range f.Fields {
		if hf.Name == name {
			return hf.Value, true
		}
	}
	return "", false
}

// fieldValue returns the value of f's field name, or "".
func fieldValue(f *http2.MetaHeadersFrame, name string) string {
	v, _ := fieldLookup(f, name)
	return v
}

// frameList describes the frames at the start of answer, one
// "TYPE/flags/stream" each, stopping at the first bytes that are not a
// whole frame.
func frameList(answer []byte) []string {
	var list []string
	r := bytes.NewReader(answer)
	fr := http2.NewFramer(nil, r)
	fr.SetMaxReadFrameSize(1<<24 - 1)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return list
		}
		h := f.Header()
		list = append(list, fmt.Sprintf("%v/%#02x/%d", h.Type, uint8(h.Flags), h.StreamID))
	}
}

// rawBlocks returns the header block of each HEADERS frame of answer on
// stream 1 with its CONTINUATION frames, as sent.
func rawBlocks(t *testing.T, answer []byte) [][]byte {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(answer))
	var blocks [][]byte
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return blocks
		}
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			blocks = append(blocks, bytes.Clone(f.HeaderBlockFragment()))
		case *http2.ContinuationFrame:
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], f.HeaderBlockFragment()...)
		}
	}
}

func answerNamed(t *testing.T, name string) h2answer.Answer {
	t.Helper()
	for _, a := range allAnswers() {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no answer is named %q", name)
	return h2answer.Answer{}
}

// TestFraming checks the frames that answers are named after.
func TestFraming(t *testing.T) {
	const (
		settings = "SETTINGS/0x00/0"
		ack      = "SETTINGS/0x01/0"
		headers  = "HEADERS/0x04/1"
		data     = "DATA/0x00/1"
		trailers = "HEADERS/0x05/1"
	)
	for name, want := range map[string][]string{
		"plain":                             {settings, ack, headers, data, trailers},
		"trailers-continuation":             {settings, ack, headers, data, "HEADERS/0x01/1", "CONTINUATION/0x04/1"},
		"trailers-continuations":            {settings, ack, headers, data, "HEADERS/0x01/1", "CONTINUATION/0x00/1", "CONTINUATION/0x00/1", "CONTINUATION/0x04/1"},
		"grpc-status-split":                 {settings, ack, headers, data, "HEADERS/0x01/1", "CONTINUATION/0x04/1"},
		"headers-continuation":              {settings, ack, "HEADERS/0x00/1", "CONTINUATION/0x04/1", data, trailers},
		"headers-padded":                    {settings, ack, "HEADERS/0x0c/1", data, trailers},
		"headers-priority":                  {settings, ack, "HEADERS/0x24/1", data, trailers},
		"headers-padded-priority":           {settings, ack, "HEADERS/0x2c/1", data, trailers},
		"trailers-padded":                   {settings, ack, headers, data, "HEADERS/0x0d/1"},
		"trailers-priority":                 {settings, ack, headers, data, "HEADERS/0x25/1"},
		"trailers-padded-priority":          {settings, ack, headers, data, "HEADERS/0x2d/1"},
		"ping":                              {settings, ack, headers, "PING/0x00/0", data, trailers},
		"window-update-stream-0":            {settings, ack, headers, "WINDOW_UPDATE/0x00/0", data, trailers},
		"window-update-stream-1":            {settings, ack, headers, "WINDOW_UPDATE/0x00/1", data, trailers},
		"settings-ack-late":                 {settings, headers, ack, data, trailers},
		"settings-update":                   {settings, ack, headers, settings, data, trailers},
		"unknown-frame-stream-0":            {settings, ack, headers, "UNKNOWN_FRAME_TYPE_250/0x00/0", data, trailers},
		"unknown-frame-stream-1":            {settings, ack, headers, "UNKNOWN_FRAME_TYPE_250/0x00/1", data, trailers},
		"unknown-frame-end-flags":           {settings, ack, headers, "UNKNOWN_FRAME_TYPE_250/0x05/1", data, trailers},
		"priority-frame":                    {settings, ack, headers, "PRIORITY/0x00/1", data, trailers},
		"empty-data-before":                 {settings, ack, headers, data, data, trailers},
		"empty-data-after":                  {settings, ack, headers, data, data, trailers},
		"goaway-after-trailers":             {settings, ack, headers, data, trailers, "GOAWAY/0x00/0"},
		"rst-no-error-after-trailers":       {settings, ack, headers, data, trailers, "RST_STREAM/0x00/1"},
		"metadata-12k":                      {settings, ack, headers, data, trailers},
		"metadata-20k":                      {settings, ack, "HEADERS/0x00/1", "CONTINUATION/0x04/1", data, trailers},
		"not-serving-trailers-continuation": {settings, ack, headers, data, "HEADERS/0x01/1", "CONTINUATION/0x04/1"},
		"two-messages-two-data":             {settings, ack, headers, data, data, trailers},
		"trailers-only-14":                  {settings, ack, trailers},
		"rst-before-headers":                {settings, ack, "RST_STREAM/0x00/1"},
		"rst-after-headers":                 {settings, ack, headers, "RST_STREAM/0x00/1"},
		"rst-after-message":                 {settings, ack, headers, data, "RST_STREAM/0x00/1"},
		"goaway-refused":                    {settings, ack, "GOAWAY/0x00/0"},
		"data-end-stream":                   {settings, ack, headers, "DATA/0x01/1"},
		"nginx-502":                         {settings, ack, headers, "DATA/0x01/1"},
		"haproxy-503":                       {settings, ack, headers, "DATA/0x01/1"},
		"caddy-502":                         {settings, ack, trailers},
		"http2-not-grpc":                    {settings, ack, headers, "DATA/0x01/1"},
		"no-trailers":                       {settings, ack, headers, data},
		"headers-only":                      {settings, ack, headers},
		"settings-only":                     {settings, ack},
		"split-message":                     {settings, ack, headers, data, data, trailers},
		"padded-data":                       {settings, ack, headers, "DATA/0x08/1", trailers},
		"trailers-unused-flags":             {settings, ack, headers, data, "HEADERS/0xd7/1"},
		"data-unused-flags":                 {settings, ack, headers, "DATA/0xf6/1", trailers},
		"no-server-settings":                {headers, data, trailers},
	} {
		got := frameList(answerNamed(t, name).Bytes(h2answer.HealthMessages))
		if !slices.Equal(got, want) {
			t.Errorf("%s: frames\n%v\nwant\n%v", name, got, want)
		}
	}
	headersContinuations := frameList(answerNamed(t, "headers-continuations").Bytes(h2answer.HealthMessages))
	if len(headersContinuations) < 7 || headersContinuations[2] != "HEADERS/0x00/1" || headersContinuations[3] != "CONTINUATION/0x00/1" {
		t.Errorf("headers-continuations: frames %v, want HEADERS and several CONTINUATION", headersContinuations)
	}
}

// TestGRPCStatusLiterals checks that each literal-form answer sends
// grpc-status 0 in the representation it is named after.
func TestGRPCStatusLiterals(t *testing.T) {
	huffmanName := hpack.AppendHuffmanString(nil, "grpc-status")
	names := map[string][]byte{
		"raw":     append([]byte{byte(len("grpc-status"))}, "grpc-status"...),
		"huffman": append([]byte{0x80 | byte(len(huffmanName))}, huffmanName...),
	}
	values := map[string][]byte{
		"raw":     {0x01, '0'},
		"huffman": {0x81, 0x07}, // '0' is 00000, padded with ones
	}
	forms := map[string]byte{"incremental": 0x40, "without-indexing": 0x00, "never-indexed": 0x10}
	for form, first := range forms {
		for nameCoding, name := range names {
			for valueCoding, value := range values {
				answer := answerNamed(t, fmt.Sprintf("grpc-status-%s-name-%s-value-%s", form, nameCoding, valueCoding))
				b := answer.Bytes(h2answer.HealthMessages)
				blocks := rawBlocks(t, b)
				want := slices.Concat([]byte{first}, name, value)
				if got := blocks[len(blocks)-1]; !bytes.HasSuffix(got, want) {
					t.Errorf("%s: trailers block % x does not end with % x", answer.Name, got, want)
				}
				if form == "never-indexed" {
					fields, err := hpack.NewDecoder(4096, nil).DecodeFull(blocks[len(blocks)-1])
					if err != nil || !slices.ContainsFunc(fields, func(f hpack.HeaderField) bool { return f.Name == "grpc-status" && f.Sensitive }) {
						t.Errorf("%s: trailers decode to %v, %v; want a never-indexed (sensitive) grpc-status", answer.Name, fields, err)
					}
				}
			}
		}
	}
}

// TestHeaderBlockStarts checks the first bytes of the response header
// block of the answers that are about them.
func TestHeaderBlockStarts(t *testing.T) {
	for name, want := range map[string][]byte{
		"plain":                      {0x88},                      // :status 200, indexed
		"dynamic-table-size-update":  {0x3f, 0xe1, 0x0f},          // size update to 2048
		"dynamic-table-size-updates": {0x20, 0x3f, 0xe1, 0x1f},    // to 0, then to 4096
		"status-200-literal":         {0x08, 0x03, '2', '0', '0'}, // literal without indexing, name index 8
		"status-200-literal-huffman": {0x08, 0x82, 0x10, 0x01},    // the same, value Huffman-coded
	} {
		blocks := rawBlocks(t, answerNamed(t, name).Bytes(h2answer.HealthMessages))
		if !bytes.HasPrefix(blocks[0], want) {
			t.Errorf("%s: response header block starts % x, want % x", name, blocks[0][:min(len(blocks[0]), 8)], want)
		}
	}
}

// TestSizes checks the sizes that answers are named after.
func TestSizes(t *testing.T) {
	for _, set := range messageSets {
		size := func(name string) []byte { return answerNamed(t, name).Bytes(set.msgs) }
		metadataOf := func(answer []byte) int {
			fr := http2.NewFramer(nil, bytes.NewReader(answer))
			fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			fr.MaxHeaderListSize = 1 << 20
			n := 0
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					return n
				}
				if mh, ok := f.(*http2.MetaHeadersFrame); ok {
					for _, hf := range mh.Fields {
						if hf.Name == "x-metadata" {
							n += len(hf.Value)
						}
					}
				}
			}
		}
		for name, want := range map[string]int{"metadata-5000": 5000, "metadata-5500": 5500, "metadata-12k": 12288, "trailers-metadata-12k": 12288, "metadata-20k": 20480} {
			if got := metadataOf(size(name)); got != want {
				t.Errorf("%s with %s: %d bytes of metadata, want %d", name, set.name, got, want)
			}
		}
		if got := len(size("size-16382")); got != 16382 {
			t.Errorf("size-16382 with %s: %d bytes", set.name, got)
		}
		if got := len(size("metadata-20k")); got <= 16384 {
			t.Errorf("metadata-20k with %s: %d bytes, want more than HAProxy's check buffer", set.name, got)
		}
		for _, end := range []int{8191, 8192} {
			name := fmt.Sprintf("trailers-at-%d", end)
			answer := size(name)
			tail := []byte{byte(http2.FrameHeaders), byte(http2.FlagHeadersEndStream | http2.FlagHeadersEndHeaders), 0, 0, 0, 1}
			if len(answer) < end || !bytes.Equal(answer[end-len(tail):end], tail) {
				t.Errorf("%s with %s: bytes %d to %d are not the tail of the trailers' frame header", name, set.name, end-len(tail)+1, end)
			}
			if frames := frameList(answer); frames[len(frames)-1] != "HEADERS/0x05/1" {
				t.Errorf("%s with %s: last frame %s", name, set.name, frames[len(frames)-1])
			}
		}
	}
}

// request is a minimal unary gRPC call on a new connection, built with
// x/net/http2's Framer: the preface, SETTINGS, HEADERS, then DATA with
// END_STREAM, returned apart so that a test can hold the DATA back.
func request(t *testing.T) (head, data []byte) {
	t.Helper()
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: "/grpc.health.v1.Health/Check"}, {Name: ":authority", Value: "localhost"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	} {
		if err := enc.WriteField(f); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	buf.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&buf, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	head = bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := fr.WriteData(1, true, lengthPrefixed(nil)); err != nil {
		t.Fatal(err)
	}
	return head, buf.Bytes()
}

// exchange dials addr, sends a request and reads len(want) bytes, then
// checks how the connection goes on: closed when closes, open otherwise.
// It returns how many reads the answer took.
func exchange(t *testing.T, addr string, want []byte, closes bool) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, data := request(t)
	if _, err := c.Write(append(head, data...)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, len(want))
	reads := 0
	buf := make([]byte, 64<<10)
	for len(got) < len(want) {
		n, err := c.Read(buf[:len(want)-len(got)])
		got = append(got, buf[:n]...)
		reads++
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), len(want), err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("answer\n% x\nwant\n% x", got, want)
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := c.Read(buf)
	switch {
	case closes && !errors.Is(err, io.EOF):
		t.Errorf("after the answer: %d more bytes, %v; want the close", n, err)
	case !closes && !errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("after the answer: %d more bytes, %v; want the connection kept open", n, err)
	}
	return reads
}

func TestServe(t *testing.T) {
	for _, a := range allAnswers() {
		t.Run(a.Name, func(t *testing.T) {
			t.Parallel()
			addr := h2answer.Serve(t, a, h2answer.HealthMessages, h2answer.ServeOptions{})
			want := a.Bytes(h2answer.HealthMessages)
			exchange(t, addr, want, a.Close)
			exchange(t, addr, want, a.Close) // every connection gets the answer
		})
	}
}

func TestServeSplit(t *testing.T) {
	for _, name := range []string{"plain", "http1-400", "settings-only"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := answerNamed(t, name)
			addr := h2answer.Serve(t, a, healthRPCMessages, h2answer.ServeOptions{Split: true})
			want := a.Bytes(healthRPCMessages)
			if reads := exchange(t, addr, want, a.Close); reads < 2 {
				t.Errorf("the %d bytes came in %d read, not byte by byte", len(want), reads)
			}
		})
	}
}

// TestServeAt serves on a chosen loopback address, split within a bound:
// the answer comes whole, in no more pieces than the bound allows.
func TestServeAt(t *testing.T) {
	a := answerNamed(t, "size-16382")
	written := make(chan time.Duration, 1)
	opts := h2answer.ServeOptions{Addr: "127.0.0.2:0", Split: true, Within: 100 * time.Millisecond,
		Written: func(took time.Duration) { written <- took }}
	addr := h2answer.Serve(t, a, h2answer.HealthMessages, opts)
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.2" {
		t.Fatalf("Serve at %s listens on %s", opts.Addr, addr)
	}
	start := time.Now()
	reads := exchange(t, addr, a.Bytes(h2answer.HealthMessages), a.Close)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the answer split within %v took %v", opts.Within, took)
	}
	if reads < 2 || reads > 100 {
		t.Errorf("the %d bytes came in %d reads, want between 2 and 100 pieces", len(a.Bytes(h2answer.HealthMessages)), reads)
	}
	select {
	case took := <-written:
		if took < opts.Within/2 {
			t.Errorf("Written reports %v for about 100 pauses of 1ms", took)
		}
	case <-time.After(5 * time.Second):
		t.Error("Written was not called after the answer")
	}
}

// TestPieces checks where split answers are cut: at every byte without a
// bound, and with one, at every byte of each frame header and of the
// bytes around it, in no more pieces than the bound.
func TestPieces(t *testing.T) {
	for _, a := range allAnswers() {
		answer := a.Bytes(h2answer.HealthMessages)
		if ends := h2answer.Pieces(answer, 0); len(ends) != len(answer) || ends[len(ends)-1] != len(answer) {
			t.Errorf("%s: %d pieces of %d bytes without a bound", a.Name, len(ends), len(answer))
		}
		const bound = 300
		ends := h2answer.Pieces(answer, bound)
		if len(ends) > bound || len(ends) == 0 || ends[len(ends)-1] != len(answer) {
			t.Errorf("%s: %d pieces ending at %d for %d bytes, bound %d", a.Name, len(ends), ends[len(ends)-1], len(answer), bound)
			continue
		}
		cut := map[int]bool{0: true}
		for i, end := range ends {
			if i > 0 && end <= ends[i-1] {
				t.Errorf("%s: pieces end at %d, then %d", a.Name, ends[i-1], end)
			}
			cut[end] = true
		}
		if len(answer) <= bound {
			if len(ends) != len(answer) {
				t.Errorf("%s: %d bytes in %d pieces, want one a byte", a.Name, len(answer), len(ends))
			}
			continue
		}
		for _, start := range frameStarts(answer) {
			for i := start; i <= start+9; i++ {
				if !cut[i] {
					t.Errorf("%s: no cut at %d, in the frame header at %d", a.Name, i, start)
					break
				}
			}
		}
	}
}

// frameStarts returns the offsets of the whole frames at the answer's
// start.
func frameStarts(answer []byte) []int {
	var starts []int
	for off := 0; off+9 <= len(answer); {
		length := int(answer[off])<<16 | int(answer[off+1])<<8 | int(answer[off+2])
		if off+9+length > len(answer) {
			break
		}
		starts = append(starts, off)
		off += 9 + length
	}
	return starts
}

// TestServeWaitsForRequest checks that the answer comes only once the
// request's stream has ended, as a server answers a unary call.
func TestServeWaitsForRequest(t *testing.T) {
	addr := h2answer.Serve(t, answerNamed(t, "plain"), h2answer.HealthMessages, h2answer.ServeOptions{})
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, data := request(t)
	if _, err := c.Write(head); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1024)
	if n, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("before the request's DATA: read %d bytes, %v; want nothing", n, err)
	}
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(buf); n == 0 {
		t.Fatalf("after the request's DATA: %v", err)
	}
}
