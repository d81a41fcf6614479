// Package e2e proves generated checks end to end: real protoc runs the
// plugin, real HAProxy loads the generated fragments, and real gRPC servers
// answer the checks on loopback addresses.
package e2e
