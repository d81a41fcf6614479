package bench

// writeAnalysis ends the results with what the numbers mean and what was
// changed in the plugin and its checks because of measurements.
func writeAnalysis(r *report) {
	r.heading("Analysis")
	r.para("**Where the plugin's time goes.** Its own stages (building the checks, rendering fragments, emitting Go code) are a " +
		"small share of its time; most of it is protobuf-go: decoding protoc's request, building protogen's view of the files and " +
		"formatting the generated Go, which protoc-gen-go pays as well on the same input (see \"Where the plugin's time goes\"). " +
		"Making our stages faster would barely change a build, so they were left as they are.")
	r.para("**Where a check's bytes go.** Every part of the request but two is required by at least one stack (see \"Bytes on " +
		"the wire per check\"). The two, grpc-timeout and user-agent, are sent by default because servers then cancel a check " +
		"HAProxy has given up on and can tell checks from traffic in their logs; `grpc_timeout=false user_agent=false` saves their " +
		"bytes.")
	r.para("**What the rules cost.** The three `expect rstring` rules, PCRE2 patterns that walk the answer frame by frame, cost " +
		"HAProxy about as much CPU per check as the previous release's `expect rbinary` and `expect binary` rules, measured in the " +
		"same run (see \"HAProxy CPU for many servers\"), and they end a not-serving answer within milliseconds, draining the server " +
		"(L7OKC) with a grpc.health.v1 check or failing it (L7RSP) with a health RPC check, instead of waiting for a timeout.")
	r.para("**Changed because of measurements.** Every connect rule has `linger`: without it HAProxy ends each check with a TCP " +
		"reset, and grpc-go and C-core logged one connection reset per check (`e2e` TestPoliteChecks). The " +
		"end-of-stream pattern accepts only whole frame headers of the trailers or of RST_STREAM on stream 1: a GOAWAY pattern " +
		"matched inside the header of a 7-byte DATA frame and failed healthy servers behind a relay that split answers at every " +
		"byte. With the PROXY protocol the connect rule sends the header itself, because HAProxy ignores the server's " +
		"check-send-proxy once a check has its own connect rule. In this driver: the time to DOWN is sampled from a random point " +
		"between checks, backends are polled together, and the plugin's stages are each timed in a fresh process, as the plugin " +
		"runs.")
}
