// Package deploy proves, under load and through real HAProxy, that gRPC
// servers come and go without a failed call: the product's promise that
// deploys lose no calls.
//
// Its test runs, for each stack of internal/stacktest (grpc-go, grpc-js,
// gRPC C-core) and for each mode of a generated grpc.health.v1 backend
// (mode tcp and mode http), three servers behind HAProxy, found through a
// DNS server (internal/dnstest) as a fragment's server-template finds
// them, and a grpc-go load client that sends Greeter calls through
// HAProxy's frontend on several connections without a break. Meanwhile it
// restarts every server in turn, adds a server, removes one, and kills
// one, each server stopping gracefully on SIGTERM after the drain time of
// the fragment's contract line. It prints a table of the calls sent and
// failed in each event, and fails unless no call failed but those in
// flight on the killed server when it was killed.
package deploy
