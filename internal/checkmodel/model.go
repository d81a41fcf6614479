// Package checkmodel turns annotated proto services into health checks: plain
// values that say what a check sends, what it accepts, and where it runs.
//
// It is the only package that reads proto descriptors and our options. Every
// rule on the annotations is enforced here, once, and every problem is
// reported with the proto file, line and element it concerns; the renderers
// (HAProxy fragments, Go code) take a valid model and cannot fail on user
// input. Names that belong to one output, such as Go identifiers or HAProxy
// directives, are left to that output's renderer.
package checkmodel

import (
	"fmt"
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
	// Service is the checked service.
	Service Service
	// Call is what the check sends.
	Call Call
	// Answers are the answers the check tells apart.
	Answers Answers
	// Backend is the HAProxy backend whose servers the check judges.
	Backend Backend
	// HealthServiceName is the service name asked of grpc.health.v1 (only
	// for GRPCHealth).
	HealthServiceName string
	// HealthRPC is the Go view of the checked RPC (only for HealthRPC).
	HealthRPC *GoMethod
}

// Service is a checked service.
type Service struct {
	// Name is the service's full name, "<package>.<Service>".
	Name string
	// GoName is the service's name in Go, as protoc-gen-go-grpc uses it.
	GoName string
}

// Call is the gRPC call a check sends.
type Call struct {
	// Path is the :path of the call, "/<package>.<Service>/<Method>".
	Path string
	// Authority is the :authority sent.
	Authority string
	// Request is the request message sent.
	Request Message
	// Metadata is the request metadata sent, in order.
	Metadata []wire.Metadata
	// Timeout is the grpc-timeout sent, or zero for none.
	Timeout time.Duration
	// UserAgent is the user-agent sent, or empty for none.
	UserAgent string
	// Encoded is the call encoded, as the check sends it.
	Encoded wire.Encoded
}

// Answers are the answers a check tells apart: the one healthy answer, and
// the answer of a server that says it is not serving, which is drained or
// failed; every other answer fails the check.
type Answers struct {
	// Healthy is the one healthy response message.
	Healthy Message
	// NotServing is the response message of a server that is not serving,
	// when there is one: grpc.health.v1's NOT_SERVING, or a health RPC's
	// not_serving_response. Otherwise its Type is empty, and a server that
	// is not serving answers with an error status, which fails the check.
	NotServing Message
	// DrainNotServing reports whether a server that answers NotServing is
	// drained (HAProxy's NOLB state) at the first such check, rather than
	// failed, and marked DOWN after fall checks.
	DrainNotServing bool
}

// Drains reports whether a server that says it is not serving is drained.
func (a Answers) Drains() bool {
	return a.DrainNotServing && a.NotServing.Type != ""
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

// GoMethod is the Go view of a health RPC, from protogen.
type GoMethod struct {
	// Method is the Go name of the RPC's method.
	Method string
	// Input and Output are the RPC's message types.
	Input, Output protogen.GoIdent
}

// Backend is the HAProxy backend of a check.
type Backend struct {
	// Name is the backend's name.
	Name string
	// HTTPMode reports whether the backend runs in mode http with proto h2
	// servers, balancing each call, rather than in mode tcp.
	HTTPMode bool
	// Servers is how servers are attached to the backend.
	Servers Servers
	// Timing is how often servers are checked.
	Timing Timing
	// TLS is how the check speaks TLS to the servers; nil for plaintext.
	TLS *TLS
	// MinHAProxy is the oldest HAProxy the backend must load on.
	MinHAProxy HAProxyVersion
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

// Inter is the time between two checks of a server that is UP.
func (t Timing) Inter() time.Duration {
	return ms(t.InterMS)
}

// FallInterval is the time between two checks of a server that is going
// DOWN: fastinter, or inter when unset.
func (t Timing) FallInterval() time.Duration {
	return ms(orDefault(t.FastinterMS, t.InterMS))
}

// CheckTimeout is how long one check may take once connected: HAProxy's
// timeout check, or inter when the backend sets none.
func (t Timing) CheckTimeout() time.Duration {
	return ms(orDefault(t.TimeoutMS, t.InterMS))
}

// DrainTime is the longest HAProxy can take to stop sending new
// connections to a server that has begun to say it is not serving: the
// next check starts within inter of the last one, which may have read the
// healthy answer a moment before, and takes at most the check timeout.
// A server that is drained is out of the balance after that one check; a
// server that is failed after fall checks in a row, each within fastinter
// (inter when unset) of the one before.
func (c Check) DrainTime() time.Duration {
	t := c.Backend.Timing
	d := t.Inter() + t.CheckTimeout()
	if !c.Answers.Drains() {
		d += time.Duration(t.Fall-1) * (t.FallInterval() + t.CheckTimeout())
	}
	return d
}

func ms(n uint32) time.Duration {
	return time.Duration(n) * time.Millisecond
}

// HAProxyVersion is a line of HAProxy releases, such as 2.6.
type HAProxyVersion struct {
	Major, Minor int
}

// The HAProxy lines a fragment may be generated for: the long-term support
// releases. HAProxy26 is the default, the oldest that Debian stable
// ships.
var (
	HAProxy26 = HAProxyVersion{2, 6}
	HAProxy28 = HAProxyVersion{2, 8}
	HAProxy30 = HAProxyVersion{3, 0}
	HAProxy32 = HAProxyVersion{3, 2}
	HAProxy34 = HAProxyVersion{3, 4}
)

// HAProxyVersions lists the lines a fragment may be generated for, oldest
// first.
var HAProxyVersions = []HAProxyVersion{HAProxy26, HAProxy28, HAProxy30, HAProxy32, HAProxy34}

// String returns the version as "2.6".
func (v HAProxyVersion) String() string {
	return fmt.Sprintf("%d.%d", v.Major, v.Minor)
}

// AtLeast reports whether v is the line major.minor or a later one.
func (v HAProxyVersion) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}
