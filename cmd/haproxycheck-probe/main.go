// Command haproxycheck-probe sends the exact bytes of a generated HAProxy
// health check to one server and explains the answer, so that a DOWN
// backend can be debugged without HAProxy and without reading hex.
//
//	haproxycheck-probe -fragment gen/haproxy/helloworld.Greeter.cfg -addr 127.0.0.1:50051
//	haproxycheck-probe -descriptor-set greeter.binpb -service helloworld.Greeter -addr 127.0.0.1:50051
//
// It reads the fragment's tcp-check rules, connects as the connect rule
// does (TLS with its SNI and ALPN, verified with the server line's ca-file
// or not at all), sends every send-binary rule, judges the answer with the
// fragment's expect rules exactly as HAProxy does, and closes the
// connection as HAProxy does. With -descriptor-set and -service it first
// compiles the service's fragment from a FileDescriptorSet with its
// imports (buf build -o FILE, or protoc --include_imports
// --descriptor_set_out=FILE) as protoc-gen-haproxycheck does, with the
// plugin's parameters of -plugin-opt, and probes with that fragment; with
// -descriptor-set and -fragment the set only decodes messages.
//
// It prints every HTTP/2 frame sent and received (SETTINGS, HEADERS with
// their decoded header fields, DATA, trailers, RST_STREAM, GOAWAY with its
// debug data), the gRPC messages decoded against the types the fragment
// names, the call's :status, grpc-status and grpc-message, what each rule
// did, and the verdict with its reason; -json prints the same as one JSON
// object.
//
// The exit code tells the verdict's class (see probe.Classes, and the
// README's table): 0 healthy, 1 nothing was probed (bad flags, fragment,
// descriptor set or CA file), 2 connection failed, 3 timeout, 4 wrong
// answer, 5 TLS failure, 6 draining.
//
// The time limit is HAProxy's: the server line's inter (2s by default) for
// the whole check, or timeout check once connected when the backend sets
// it; -timeout replaces both.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/probe"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
)

// exitUsage is the exit code of a probe that could not run.
const exitUsage = probe.ExitUsage

// exitCodesHelp lists the exit codes, for the usage text.
func exitCodesHelp() string {
	parts := []string{fmt.Sprintf("%d usage", exitUsage)}
	for _, c := range probe.Classes {
		parts = append(parts, fmt.Sprintf("%d %s", c.ExitCode, c.Name))
	}
	return strings.Join(parts, ", ")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command with args and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("haproxycheck-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		fragmentFile = fs.String("fragment", "", "the generated fragment `FILE` whose check to run")
		setFile      = fs.String("descriptor-set", "", "a FileDescriptorSet `FILE` with imports: compiles -service's fragment, or decodes messages")
		service      = fs.String("service", "", "the full `NAME` of the service whose fragment to compile from -descriptor-set")
		pluginOpt    = fs.String("plugin-opt", "", "the plugin's `PARAMETERS` for -service, as buf.gen.yaml's opt or protoc's --haproxycheck_opt give them")
		addr         = fs.String("addr", "", "the server's `HOST:PORT`")
		timeout      = fs.Duration("timeout", 0, "bound the whole check by `DURATION` instead of the fragment's inter and timeout check")
		caFile       = fs.String("ca-file", "", "verify the server with this CA `FILE` instead of the fragment's ca-file")
		asJSON       = fs.Bool("json", false, "print the result as JSON")
		showVersion  = fs.Bool("version", false, "print the version and exit")
	)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: haproxycheck-probe (-fragment FILE | -descriptor-set FILE -service NAME) -addr HOST:PORT [flags]\n\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nexit codes: %s\n", exitCodesHelp())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, "haproxycheck-probe", version.Version)
		return 0
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "haproxycheck-probe:", err)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return fail(fmt.Errorf("unexpected arguments %q; every input is a flag", fs.Args()))
	case *addr == "":
		return fail(errors.New("-addr HOST:PORT is required"))
	case (*fragmentFile == "") == (*service == ""):
		return fail(errors.New("give either -fragment FILE, or -descriptor-set FILE with -service NAME"))
	case *service != "" && *setFile == "":
		return fail(errors.New("-service needs -descriptor-set FILE"))
	case *pluginOpt != "" && *service == "":
		return fail(errors.New("-plugin-opt goes with -service"))
	}
	text, files, err := load(*fragmentFile, *setFile, *service, *pluginOpt)
	if err != nil {
		return fail(err)
	}
	f, err := probe.ParseFragment(text)
	if err != nil {
		return fail(fmt.Errorf("reading the fragment: %w", err))
	}
	res, err := probe.Run(ctx, f, *addr, probe.Options{Timeout: *timeout, CAFile: *caFile, Files: files})
	if err != nil {
		return fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fail(err)
		}
	} else {
		printResult(stdout, res)
	}
	return res.Verdict.Class.Info().ExitCode
}

// load returns the fragment's text, from fragmentFile or compiled for
// service from setFile with the plugin's parameters pluginOpt, and the
// descriptor set's files when there is one.
func load(fragmentFile, setFile, service, pluginOpt string) ([]byte, *protoregistry.Files, error) {
	var set *descriptorpb.FileDescriptorSet
	var files *protoregistry.Files
	if setFile != "" {
		raw, err := os.ReadFile(setFile)
		if err != nil {
			return nil, nil, err
		}
		set = &descriptorpb.FileDescriptorSet{}
		if err := proto.Unmarshal(raw, set); err != nil {
			return nil, nil, fmt.Errorf("%s is not a FileDescriptorSet: %w", setFile, err)
		}
		if files, err = protodesc.NewFiles(set); err != nil {
			return nil, nil, fmt.Errorf("%s: %w (build it with its imports: buf build -o, or protoc --include_imports)", setFile, err)
		}
	}
	if service != "" {
		text, err := plugin.CompileFragment(set, service, pluginOpt, version.Version)
		return text, files, err
	}
	text, err := os.ReadFile(fragmentFile)
	return text, files, err
}

// printResult prints res for people.
func printResult(w io.Writer, res *probe.Result) {
	fmt.Fprintf(w, "probe of backend %s at %s\n", res.Backend, res.Address)
	if res.ProxyHeader != "" {
		fmt.Fprintf(w, "\nPROXY protocol v2 header (LOCAL): %s\n", res.ProxyHeader)
	}
	if res.TLS != nil {
		verified := "certificate not verified"
		if res.TLS.Verified {
			verified = "certificate verified"
		}
		fmt.Fprintf(w, "\nTLS: %s, ALPN %q, SNI %q, %s\n", res.TLS.Version, res.TLS.ALPN, res.TLS.ServerName, verified)
	}
	printExchange(w, "sent", res.Sent)
	printExchange(w, fmt.Sprintf("received in %.1f ms", res.DurationMS), res.Received)
	if c := res.Call; c.HTTPStatus != 0 || c.End != probe.NotEnded || c.GoAway != nil {
		fmt.Fprintf(w, "\ncall: %s\n", callSummary(c))
	}
	fmt.Fprintln(w, "\nrules:")
	for _, r := range res.Rules {
		fmt.Fprintf(w, "  %s: %s\n", r.Rule, r.Outcome)
	}
	fmt.Fprintf(w, "\nverdict: %s (HAProxy: %s)\n  %s\n", res.Verdict.Class, res.Verdict.HAProxy, res.Verdict.Reason)
	if res.Verdict.Unseen != "" {
		fmt.Fprintf(w, "  %s\n", res.Verdict.Unseen)
	}
}

// printExchange prints one direction of the connection, frame by frame.
func printExchange(w io.Writer, what string, e probe.Exchange) {
	fmt.Fprintf(w, "\n%s: %d bytes\n", what, e.Bytes)
	for _, f := range e.Frames {
		fmt.Fprintf(w, "  %s\n", frameLine(f))
		for _, hf := range f.Fields {
			fmt.Fprintf(w, "      %s: %s\n", hf.Name, hf.Value)
		}
	}
	for _, m := range e.Messages {
		fmt.Fprintf(w, "  gRPC message, %d bytes: %s\n", m.Length, m)
	}
	if e.Problem != "" {
		fmt.Fprintf(w, "  %s\n", e.Problem)
	}
	if len(e.Frames) == 0 && e.Bytes > 0 {
		fmt.Fprintf(w, "  hex: %s\n", e.Hex)
	}
}

// frameLine describes a frame on one line.
func frameLine(f probe.Frame) string {
	s := fmt.Sprintf("%s stream %d", f.Type, f.Stream)
	if names := f.FlagNames(); len(names) > 0 {
		s += " [" + strings.Join(names, "|") + "]"
	}
	s += fmt.Sprintf(", %d bytes", f.Length)
	var details []string
	for _, st := range f.Settings {
		details = append(details, fmt.Sprintf("%s=%d", st.ID, st.Value))
	}
	if f.ErrorCode != nil {
		details = append(details, f.ErrorCode.String())
	}
	if f.LastStreamID != nil {
		details = append(details, fmt.Sprintf("last stream %d", *f.LastStreamID))
	}
	if f.DebugData != "" {
		details = append(details, fmt.Sprintf("debug data %q", f.DebugData))
	}
	if f.Increment != 0 {
		details = append(details, fmt.Sprintf("increment %d", f.Increment))
	}
	if len(f.Data) > 0 {
		details = append(details, hex.EncodeToString(f.Data))
	}
	if f.Incomplete {
		details = append(details, "(only its header had arrived when the rules judged)")
	}
	if len(details) > 0 {
		s += ": " + strings.Join(details, " ")
	}
	return s
}

// callSummary describes the server's answer to the call on one line.
func callSummary(c probe.Call) string {
	var parts []string
	if c.HTTPStatus != 0 {
		parts = append(parts, fmt.Sprintf(":status %d", c.HTTPStatus), fmt.Sprintf("content-type %q", c.ContentType))
	}
	if c.Encoding != "" {
		parts = append(parts, "grpc-encoding "+c.Encoding)
	}
	if c.GRPCStatus.Present {
		parts = append(parts, "grpc-status "+c.GRPCStatus.String(), fmt.Sprintf("grpc-message %q", c.GRPCMessage))
	}
	if c.End == probe.NotEnded {
		parts = append(parts, "not ended")
	} else {
		parts = append(parts, "ended by "+c.End.String())
	}
	if c.GoAway != nil {
		parts = append(parts, "GOAWAY")
	}
	return strings.Join(parts, ", ")
}
