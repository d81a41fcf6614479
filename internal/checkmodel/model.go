// Package checkmodel turns annotated proto services into health checks: plain
// values that say what a check sends, what it accepts, and where it runs.
//
// It is the only package that reads proto descriptors and our options. Every
// rule on the annotations is enforced here, once, and every problem is
// reported with the proto file, line and element it concerns; the renderers
// (HAProxy fragments, Go code) take a valid model and cannot fail on user
// input.
package checkmodel

import (
	"time"

	"google.golang.org/protobuf/compiler/protogen"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
)

// Kind is how a service is checked.
type Kind int

const (
	// GRPCHealth checks a service with grpc.health.v1.Health/Check.
	GRPCHealth Kind = iota + 1
	// HealthRPC checks a service with one of its own unary RPCs.
	HealthRPC
)

// File is the checks of one generated proto file.
type File struct {
	// Source is the proto file's path, as protoc names it.
	Source string
	// Go is where Go code for the file goes.
	Go GoPackage
	// Checks are the file's checks, in the order of its services.
	Checks []Check
}

// GoPackage is the Go package of a proto file, as protoc-gen-go generates it.
type GoPackage struct {
	// ImportPath is the package's import path.
	ImportPath protogen.GoImportPath
	// Name is the package's name.
	Name protogen.GoPackageName
	// FilenamePrefix is the path, less extension, of the file's generated
	// Go code.
	FilenamePrefix string
}

// Check is one service's health check.
type Check struct {
	Kind Kind
	// Service is the full name of the checked service.
	Service string
	// GoService is the Go name of the service, as protoc-gen-go-grpc
	// names it.
	GoService string
	// Path is the :path of the call, "/<package>.<Service>/<Method>".
	Path string
	// Request is the request message sent.
	Request Message
	// ExpectedResponse is the one healthy answer.
	ExpectedResponse Message
	// NotServingResponse is the answer of a server that is not serving,
	// when there is one: grpc.health.v1's NOT_SERVING, or a health RPC's
	// not_serving_response. Otherwise its Type is empty, and a server that
	// is not serving answers with an error status.
	NotServingResponse Message
	// HealthServiceName is the service name asked of grpc.health.v1 (only
	// for GRPCHealth).
	HealthServiceName string
	// HealthRPC is the Go view of the checked RPC (only for HealthRPC).
	HealthRPC *GoMethod
	// Wire is the encoded request, as the check sends it.
	Wire wire.Encoded
	// Backend is the HAProxy backend name.
	Backend string
	// Authority is the :authority sent.
	Authority string
	// Servers is how servers are attached to the backend.
	Servers Servers
	// Timing is how often servers are checked.
	Timing Timing
	// TLS is how the check speaks TLS to the servers; nil for plaintext.
	TLS *TLS
	// Metadata is the request metadata sent, in order.
	Metadata []wire.Metadata
	// GRPCTimeout is the grpc-timeout sent, or zero for none.
	GRPCTimeout time.Duration
	// UserAgent is the user-agent sent, or empty for none.
	UserAgent string
	// HTTPMode reports whether the backend runs in mode http with proto h2
	// servers, balancing each call, rather than in mode tcp.
	HTTPMode bool
}

// TLS is a check's TLS to the servers, always with ALPN h2.
type TLS struct {
	// ServerName is sent in SNI and verified in the certificate; empty
	// when there is no name to send (the authority is an IP address).
	ServerName string
	// CAFile is the HAProxy ca-file that verifies the servers'
	// certificates: a path, or "@system-ca". Empty when
	// InsecureSkipVerify is set.
	CAFile string
	// InsecureSkipVerify accepts any certificate.
	InsecureSkipVerify bool
}

// Message is a protobuf message in a check.
type Message struct {
	// Type is the full name of the message type.
	Type string
	// Text is the message in protobuf text format as the annotation gave
	// it, trimmed; empty for the empty message.
	Text string
	// Bytes is the message serialized deterministically.
	Bytes []byte
	// GRPC is Bytes as a gRPC Length-Prefixed-Message: what is matched on
	// the wire.
	GRPC []byte
}

// GoMethod names the Go identifiers of a health RPC.
type GoMethod struct {
	// Method is the Go name of the RPC's method.
	Method string
	// Input and Output are the RPC's message types.
	Input, Output protogen.GoIdent
	// UnimplementedServer is protoc-gen-go-grpc's Unimplemented<Service>Server.
	UnimplementedServer protogen.GoIdent
}

// Servers attaches servers to a backend through DNS.
type Servers struct {
	// Address is "host:port" or, when EnvVar is set, empty.
	Address string
	// EnvVar is the environment variable holding the address, when
	// Address is not given.
	EnvVar string
	// Count is the number of server slots.
	Count uint32
	// Resolvers is the HAProxy resolvers section used.
	Resolvers string
	// SendProxyV2 sends the PROXY protocol version 2 to the servers, on
	// traffic and checks.
	SendProxyV2 bool
}

// Timing is a server's check timing, in milliseconds and counts. Zero means
// HAProxy's default.
type Timing struct {
	InterMS, FastinterMS, DowninterMS uint32
	Rise, Fall                        uint32
	TimeoutMS                         uint32
}
