package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// bufSize is HAProxy's default tune.bufsize: a check reads at most this
// many bytes; an rstring rule sees one byte less, and an rbinary rule at
// most half as many, dumped as hex.
const bufSize = 16384

// Options are the choices of a probe that a fragment does not make.
type Options struct {
	// Timeout, when set, bounds the whole check instead of the fragment's
	// inter and timeout check.
	Timeout time.Duration
	// CAFile, when set, replaces the fragment's ca-file: the authority as
	// the probing machine has it.
	CAFile string
	// Files, when set, resolves the message types that the fragment's
	// comments name, to decode the messages sent and received; otherwise
	// only the types linked into the program (grpc.health.v1) decode.
	Files *protoregistry.Files
}

// Result is a probe's outcome: the verdict of the fragment's rules, and
// everything that explains it.
type Result struct {
	// Address is the server probed.
	Address string `json:"address"`
	// Backend is the fragment's backend.
	Backend string `json:"backend"`
	// Verdict is the check's outcome, as HAProxy would give it.
	Verdict Verdict `json:"verdict"`
	// DurationMS is how long the check took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// ProxyHeader is the PROXY protocol header sent first, in hex, when
	// the fragment sends one.
	ProxyHeader string `json:"proxy_header,omitempty"`
	// TLS is the TLS session, when the check speaks TLS and the handshake
	// completed.
	TLS *TLSState `json:"tls,omitempty"`
	// Rules are the fragment's rules with what each did.
	Rules []RuleResult `json:"rules"`
	// Sent is what the check sent, and Received what the server answered
	// before the check ended.
	Sent     Exchange `json:"sent"`
	Received Exchange `json:"received"`
	// Call is the server's answer to the check's call.
	Call Call `json:"call"`
}

// TLSState is a check's TLS session.
type TLSState struct {
	// Version is the protocol version, "TLS 1.3".
	Version string `json:"version"`
	// ALPN is the protocol the server chose, empty if none.
	ALPN string `json:"alpn"`
	// ServerName is the SNI sent, empty if none.
	ServerName string `json:"server_name"`
	// Verified reports whether the server's certificate was verified.
	Verified bool `json:"verified"`
}

// RuleResult is what one rule did.
type RuleResult struct {
	// Rule is the rule as the fragment writes it.
	Rule string `json:"rule"`
	// Outcome is "sent", "passed", "failed", "timed out" (waiting for data
	// at the timeout), "connection failed" (waiting for data when the
	// connection failed) or "not run".
	Outcome string `json:"outcome"`
}

// check is one run of a fragment's rules.
type check struct {
	f        *Fragment
	opts     Options
	res      *Result
	conn     net.Conn
	raw      *net.TCPConn
	sent     []byte
	received []byte
	lastRead bool  // the server closed the connection, or the buffer is full
	connErr  error // why connecting, the handshake or reading failed
	alpnOff  bool  // TLS was negotiated without ALPN h2
	native   bool  // the rules are judged by judgement, without PCRE2
}

// Run runs f's check against the server at addr as HAProxy runs it, and
// explains the answer. It returns an error only when the check cannot be
// run at all (an unreadable CA file); every outcome of the check is in the
// Result's Verdict.
func Run(ctx context.Context, f *Fragment, addr string, opts Options) (*Result, error) {
	c := &check{f: f, opts: opts, res: &Result{Address: addr, Backend: f.Backend}}
	for _, r := range f.Rules {
		if (r.Kind == ExpectRBinary || r.Kind == ExpectRString) && r.Matcher == nil {
			c.native = true
		}
	}
	if c.native && f.Contract == nil {
		return nil, fmt.Errorf("%v, and the fragment has no contract line to judge by otherwise", errNoPCRE)
	}
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	status, failed := c.run(ctx, addr, tlsConfig)
	if c.native {
		failed = nil // no rule was run on its own
	}
	c.res.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	c.close()
	c.res.Sent = decodeExchange(c.sent, true)
	c.res.Received = decodeExchange(c.received, false)
	var requestType, responseType string
	if f.Contract != nil {
		requestType, responseType = f.Contract.RequestType, f.Contract.ResponseType
	}
	for i := range c.res.Sent.Messages {
		c.res.Sent.Messages[i].decode(requestType, opts.Files)
	}
	for i := range c.res.Received.Messages {
		c.res.Received.Messages[i].decode(responseType, opts.Files)
	}
	c.res.Call = callOf(c.res.Received)
	c.res.Verdict = c.verdict(status, failed)
	return c.res, nil
}

// run connects and runs the rules, recording each one's outcome. It
// returns HAProxy's check status and the rule that failed, if one did.
func (c *check) run(ctx context.Context, addr string, tlsConfig *tls.Config) (status Status, failed *Rule) {
	for _, r := range c.f.Rules {
		c.res.Rules = append(c.res.Rules, RuleResult{Rule: r.String(), Outcome: "not run"})
	}
	// Without timeout check, inter bounds the whole check; with it, inter
	// bounds the connection and timeout check the rest (HAProxy's
	// "timeout check").
	deadline := time.Now().Add(c.f.Timing.Inter)
	if c.opts.Timeout > 0 {
		deadline = time.Now().Add(c.opts.Timeout)
	}
	dialCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dialCtx, "tcp", addr)
	if err != nil {
		return c.connectFailure(err), nil
	}
	c.raw = conn.(*net.TCPConn)
	c.conn = conn
	if c.f.TimeoutCheck > 0 && c.opts.Timeout == 0 {
		deadline = time.Now().Add(c.f.TimeoutCheck)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return SOCKERR, nil
	}
	if c.f.Connect.SendProxyV2 {
		// A check has no client, so HAProxy sends the LOCAL command.
		h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
		header, err := h.Format()
		if err == nil {
			c.res.ProxyHeader = hex.EncodeToString(header)
			_, err = conn.Write(header)
		}
		if err != nil {
			c.connErr = err
			return SOCKERR, nil
		}
	}
	if tlsConfig != nil {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.connErr = err
			if isTimeout(err) {
				return L6TOUT, nil
			}
			return L6RSP, nil
		}
		state := tc.ConnectionState()
		c.res.TLS = &TLSState{
			Version:    tls.VersionName(state.Version),
			ALPN:       state.NegotiatedProtocol,
			ServerName: tlsConfig.ServerName,
			Verified:   !c.f.Connect.VerifyNone,
		}
		c.alpnOff = state.NegotiatedProtocol != "h2"
		c.conn = tc
	}
	for i := 0; i < len(c.f.Rules); i++ {
		r := &c.f.Rules[i]
		if r.Kind == Send {
			if _, err := c.conn.Write(r.Data); err != nil {
				c.connErr = err
				return SOCKERR, r
			}
			c.sent = append(c.sent, r.Data...)
			c.res.Rules[i].Outcome = "sent"
			continue
		}
		last, status := c.expectBlock(i)
		if status != StatusNone {
			return status, &c.f.Rules[last]
		}
		i = last
	}
	return L7OK, nil
}

// expectBlock runs the block of expect rules that starts at head as
// HAProxy does: it evaluates them in order on everything received so far
// and, when one waits for more data, reads more and starts again at head.
// It returns the index of the last rule it ran, and the check status when
// the block ended the check, or StatusNone when every rule passed.
func (c *check) expectBlock(head int) (int, Status) {
	for {
		i, status, done := c.evaluate(head)
		if done {
			return i, status
		}
		if status := c.read(); status != StatusNone {
			c.res.Rules[i].Outcome = waitOutcome[status]
			return i, status
		}
	}
}

// evaluate evaluates the block of expect rules from head on what was
// received. It returns whether the block is done, with the index of the
// last rule it ran and the status that ends the check, or StatusNone when
// every rule passed; or, when a rule waits for more data, that rule's
// index. Where this build cannot run PCRE2, judgement gives the block's
// outcome by the fragment's contract.
func (c *check) evaluate(head int) (int, Status, bool) {
	end := head
	for end < len(c.f.Rules) && c.f.Rules[end].Kind != Send {
		end++
	}
	if c.native {
		status := judgement(*c.f.Contract, c.received, c.lastRead)
		if status == StatusNone {
			return head, StatusNone, false
		}
		for i := head; i < end; i++ {
			c.res.Rules[i].Outcome = "judged as a whole by the contract line, without PCRE2"
		}
		if status == L7OK {
			status = StatusNone
		}
		return end - 1, status, true
	}
	for i := head; i < end; i++ {
		switch expect(&c.f.Rules[i], c.received, c.lastRead) {
		case wait:
			return i, StatusNone, false
		case fail:
			c.res.Rules[i].Outcome = "failed"
			return i, c.f.Rules[i].ErrorStatus, true
		}
		c.res.Rules[i].Outcome = "passed"
	}
	return end - 1, StatusNone, true
}

// read reads more of the answer. It returns HAProxy's check status when
// the check ends here: at its timeout, or when the connection failed or
// closed before anything was received. Once something was received, a
// closed connection only makes the rules judge what there is.
func (c *check) read() Status {
	buf := make([]byte, bufSize-len(c.received))
	n, err := c.conn.Read(buf)
	c.received = append(c.received, buf[:n]...)
	if err != nil {
		c.connErr = err
	}
	switch {
	case err == nil:
		c.lastRead = len(c.received) == bufSize
	case isTimeout(err):
		return L7TOUT
	case len(c.received) > 0:
		c.lastRead = true
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return L7RSP
	default:
		return SOCKERR
	}
	return StatusNone
}

// waitOutcome is the outcome of an expect rule that was waiting for data
// when the check ended with a status.
var waitOutcome = map[Status]string{L7TOUT: "timed out", L7RSP: "failed", SOCKERR: "connection failed"}

// evaluation is the outcome of one expect rule on the data so far.
type evaluation int

const (
	pass evaluation = iota
	wait
	fail
)

// expect evaluates an expect rule as HAProxy's tcpcheck_eval_expect does:
// a binary rule waits until there are as many bytes as its pattern; a
// rule without min-recv waits for more data on a mismatch, one with
// min-recv judges at once; once the connection is closed, or the buffer
// full, every rule judges what there is. A rule with ! passes where its
// pattern does not match.
func expect(r *Rule, received []byte, lastRead bool) evaluation {
	if !lastRead && (r.Kind == ExpectBinary && len(received) < len(r.Data) || r.MinRecv > 0 && len(received) < r.MinRecv) {
		return wait
	}
	var match bool
	switch r.Kind {
	case ExpectBinary:
		match = bytes.Contains(received, r.Data)
	case ExpectRBinary:
		match = r.Matcher.Match(hexDump(received))
	case ExpectRString:
		match = r.Matcher.Match(received[:min(len(received), bufSize-1)])
	}
	switch {
	case match != r.Inverse:
		return pass
	case !match && !lastRead && r.MinRecv < 0:
		return wait
	}
	return fail
}

// hexDump is the received data as an rbinary rule sees it: upper-case
// hex, two digits a byte, cut to fit HAProxy's buffer of bufSize
// characters less its terminating zero.
func hexDump(received []byte) []byte {
	s := strings.ToUpper(hex.EncodeToString(received[:min(len(received), bufSize/2)]))
	return []byte(s[:min(len(s), bufSize-1)])
}

// close closes the connection as HAProxy closes a check's connection: with
// a TCP reset unless the connect rule has linger.
func (c *check) close() {
	if c.conn == nil {
		return
	}
	if !c.f.Connect.Linger {
		_ = c.raw.SetLinger(0)
		_ = c.raw.Close()
		return
	}
	_ = c.conn.Close()
}

// connectFailure returns HAProxy's status for a failed connection.
func (c *check) connectFailure(err error) Status {
	c.connErr = err
	if isTimeout(err) {
		return L4TOUT
	}
	return L4CON
}

// tlsConfig returns the check's TLS configuration, or nil for plaintext.
// Like HAProxy, it verifies the server's certificate against the SNI when
// one is sent, and only its chain when none is.
func (c *check) tlsConfig() (*tls.Config, error) {
	conn := c.f.Connect
	if !conn.TLS {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: conn.SNI, NextProtos: conn.ALPN}
	if conn.VerifyNone {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	roots, err := c.roots()
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = roots
	if conn.SNI == "" {
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, cert := range cs.PeerCertificates[1:] {
				inter.AddCert(cert)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg, nil
}

// roots returns the authorities that verify the server's certificate:
// the CA file, or the system's for @system-ca.
func (c *check) roots() (*x509.CertPool, error) {
	file := c.f.Connect.CAFile
	if c.opts.CAFile != "" {
		file = c.opts.CAFile
	}
	if file == "" || file == "@system-ca" {
		return x509.SystemCertPool()
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the fragment's ca-file (give the authority with -ca-file if it is elsewhere on this machine): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca-file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
