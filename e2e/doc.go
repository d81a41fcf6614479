// Package e2e proves generated checks end to end: real protoc and buf run
// the plugin, real HAProxy loads the generated fragments, and real gRPC
// servers of grpc-go, grpc-js and gRPC C-core (internal/stacktest) answer
// the checks on loopback addresses.
package e2e
