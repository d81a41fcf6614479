// Package version holds the version of protoc-gen-haproxycheck, written into
// every generated file so that a fragment tells which generator made it.
package version

// Version is the release of protoc-gen-haproxycheck.
const Version = "v0.1.0"
