package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// checkTimeout bounds one check of the driver's own check client.
const checkTimeout = 2 * time.Second

// checkOutcome is how a server answered one check.
type checkOutcome struct {
	// healthy is whether the server ended the call with the healthy
	// response as its only message.
	healthy bool
	// answer describes the answer when it is not healthy.
	answer string
}

// check does what HAProxy does for one check: it connects to addr, sends
// request, reads until the server ends the call on stream 1 (or the
// connection), and closes the connection normally, as HAProxy closes the
// check connections of generated fragments (tcp-check connect linger). The
// answer is healthy when its only message is healthy.
func check(addr string, request, healthy []byte) (checkOutcome, error) {
	conn, err := net.DialTimeout("tcp", addr, checkTimeout)
	if err != nil {
		return checkOutcome{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(checkTimeout)); err != nil {
		return checkOutcome{}, err
	}
	if _, err := conn.Write(request); err != nil {
		return checkOutcome{}, err
	}
	fr := http2.NewFramer(nil, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var (
		data   []byte
		fields []string
	)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return checkOutcome{answer: fmt.Sprintf("%s before the end of the call", readError(err))}, nil
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			return checkOutcome{answer: "GOAWAY " + f.ErrCode.String()}, nil
		case *http2.RSTStreamFrame:
			if f.StreamID == wire.StreamID {
				return checkOutcome{answer: "RST_STREAM " + f.ErrCode.String()}, nil
			}
		case *http2.DataFrame:
			if f.StreamID == wire.StreamID {
				data = append(data, f.Data()...)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != wire.StreamID {
				continue
			}
			for _, hf := range f.Fields {
				if hf.Name == ":status" || hf.Name == "grpc-status" {
					fields = append(fields, hf.Name+" "+hf.Value)
				}
			}
			if f.StreamEnded() {
				if bytes.Equal(data, healthy) {
					return checkOutcome{healthy: true}, nil
				}
				return checkOutcome{answer: fmt.Sprintf("%v, %d bytes of messages", fields, len(data))}, nil
			}
		}
	}
}

// readError names why reading the answer stopped.
func readError(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "connection closed"
	default:
		return err.Error()
	}
}
