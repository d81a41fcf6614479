// Package probe runs a fragment's health check against one server, sending
// exactly the bytes HAProxy sends, and judges the answer exactly as the
// fragment's tcp-check rules do, so that a DOWN backend can be debugged
// without HAProxy and without reading hex.
//
// ParseFragment reads a fragment's text back into its check, as HAProxy
// reads it: the connect rule's options (send-proxy, ssl, sni, alpn,
// linger), the send-binary rules in order, the expect rules (binary,
// rbinary, rstring, their negation, min-recv and error-status), timeout
// check and the server line's timing, verify, ca-file and send-proxy-v2;
// and the contract line (package contract), the one comment it reads, which
// names the messages the rules judge. It does not import the generator: it
// checks the generator's output rather than agreeing with it.
//
// Run then does what HAProxy does for one check: it connects, sends the
// PROXY protocol header and speaks TLS if the fragment does, sends each
// send rule, and evaluates the expect rules on everything received so far,
// waiting for more data as HAProxy's tcpcheck_eval_expect does. Regular
// expressions run with a pure-Go PCRE2, as HAProxy compiles them: rbinary
// on the received bytes dumped as upper-case hex, rstring on the bytes
// themselves, up to HAProxy's check buffer. Where this build has no PCRE2
// (Windows), the rules of a generated fragment are judged as a whole by
// its contract line with the same judgement in Go, which the tests hold to
// the rules. It ends with the Status HAProxy would report and closes the
// connection as HAProxy does: with a TCP reset unless the connect rule has
// linger.
//
// The Result explains the answer: every HTTP/2 frame received, decoded
// with golang.org/x/net/http2's Framer and HPACK decoder; the Call as a
// gRPC client reads it (its :status, grpc-status and grpc-message, and how
// it ended); the response messages decoded against the types the contract
// line names (grpc.health.v1's are always known, others through
// Options.Files), or as raw protobuf fields; and a Verdict whose Class and
// Reason say why the check passed or failed, and, where a gRPC client
// reads the answer otherwise than the rules, what the rules cannot see.
package probe
