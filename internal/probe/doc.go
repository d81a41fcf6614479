// Package probe runs a fragment's health check against one server, sending
// exactly the bytes HAProxy sends, and judges the answer exactly as the
// fragment's tcp-check rules do, so that a DOWN backend can be debugged
// without HAProxy and without reading hex.
//
// ParseFragment reads a fragment's text back into its check: the connect
// rule's options (send-proxy, ssl, sni, alpn, linger), the send-binary
// rules in order, the expect rules (binary, rbinary, min-recv), timeout
// check and the server line's inter, verify, ca-file and send-proxy-v2.
// Run then does what HAProxy 2.6 does for one check: it connects, sends
// the PROXY protocol header and speaks TLS if the fragment does, sends
// each send rule, and evaluates the expect rules on everything received
// so far, waiting for more data as HAProxy's tcpcheck_eval_expect does;
// an rbinary pattern is matched
// against the received bytes dumped as upper-case hex. It ends with the
// status HAProxy would report (L7OK, L7RSP, L7TOUT, L4CON, L4TOUT, L6RSP,
// L6TOUT, SOCKERR) and closes the connection as HAProxy does: with a TCP
// reset unless the connect rule has linger.
//
// The Result explains the answer: every HTTP/2 frame received, decoded
// with golang.org/x/net/http2's Framer and HPACK decoder; the call's
// :status, grpc-status and grpc-message; the response messages decoded
// against the type the fragment's comments name (grpc.health.v1's are
// always known, others through Options.Files), or as raw protobuf fields;
// and a Verdict whose Class and Reason say why the check passed or failed.
//
// CompileFragment has protoc-gen-haproxycheck generate the fragment of a
// service from a FileDescriptorSet, so that a probe from proto files goes
// through the same fragment text as one from a generated fragment.
package probe
