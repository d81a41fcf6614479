// Package bench records the project's benchmark results: the numbers that
// PRODUCT.md asks for, each beside a reference measured in the same run,
// written to RESULTS.md with the machine they ran on.
//
// Its test TestRecord is the benchmark driver. It runs real protoc with
// protoc-gen-haproxycheck and with protoc-gen-go on a generated schema of
// 1,000 services, counts the bytes of every kind of check against the blog
// post's 339-byte request, and runs real HAProxy against real gRPC and
// HTTP/1 servers on loopback addresses to time failing checks and measure
// CPU. It skips unless it is given -record, so that plain go test ./... does
// not run it; scripts/bench runs it with the Go benchmarks:
//
//	go test ./bench -run '^TestRecord$' -timeout 30m -record RESULTS.md -gobench gobench.txt
package bench
