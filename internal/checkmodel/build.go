package checkmodel

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// Defaults for fields an annotation leaves unset.
const (
	DefaultAuthority    = "localhost"
	DefaultServerCount  = 10
	DefaultResolvers    = "default"
	DefaultInterMS      = 2000
	DefaultRise         = 2
	DefaultFall         = 3
	maxServerCount      = 10000
	maxInt              = 1<<31 - 1 // HAProxy's largest rise and fall
	maxDurationMS       = maxInt    // HAProxy's largest time value
	maxExpectedResponse = 700       // its hex must fit on one configuration line of at most 2048 characters
	maxPath             = 512       // a path appears in rule comments; this keeps every line well under 2048 characters
	grpcHealthCheckPath = "/grpc.health.v1.Health/Check"
)

var (
	// haproxyName is a safe HAProxy section or resolvers name, and a safe
	// file name.
	haproxyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)
	// authority is an RFC 3986 authority: no white space, quotes or '#'.
	authority = regexp.MustCompile(`^[A-Za-z0-9\-._~%!$&'()*+,;=:@\[\]]{1,255}$`)
	// serverAddress is a host name or address with an optional port, as
	// HAProxy's server-template takes it.
	serverAddress = regexp.MustCompile(`^[A-Za-z0-9_\[][A-Za-z0-9_.:\[\]-]{0,254}$`)
	// dnsName is a DNS host name, as SNI carries it.
	dnsName = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// caFile is a file name HAProxy's ca-file takes on a configuration line.
	caFile = regexp.MustCompile(`^(@system-ca|[A-Za-z0-9_./+-]{1,255})$`)
	// metadataKey is a gRPC metadata key (PROTOCOL-HTTP2.md: lower case).
	metadataKey = regexp.MustCompile(`^[0-9a-z_.-]{1,100}$`)
	// metadataValue is a gRPC ASCII metadata value: printable ASCII.
	metadataValue = regexp.MustCompile(`^[\x20-\x7e]{0,1000}$`)
)

// reservedHeaders are headers a check sets itself or that HTTP/2 forbids,
// which metadata must not set.
var reservedHeaders = map[string]bool{
	"content-type": true, "te": true, "user-agent": true, "host": true,
	"connection": true, "keep-alive": true, "proxy-connection": true,
	"transfer-encoding": true, "upgrade": true,
}

// Options are the settings of a build that apply to every check, from the
// plugin's parameters.
type Options struct {
	// UserAgent, when not empty, is sent as every check's user-agent.
	UserAgent string
	// GRPCTimeout sends every check's timeout as its grpc-timeout, so that
	// servers cancel a check HAProxy has given up on.
	GRPCTimeout bool
	// RequireChecks makes every service without a check and without a
	// no_check opt-out an error.
	RequireChecks bool
}

// Build returns the checks of every file that protoc asked to generate. It
// returns one error listing every problem found, each naming its file,
// line and element, and no files when there is any.
func Build(plugin *protogen.Plugin, opts Options) ([]File, error) {
	var (
		files    []File
		problems []error
		backends = map[string]string{} // backend name → element that claimed it
		services = map[string]string{} // lower-case service name → service
	)
	for _, f := range plugin.Files {
		if !f.Generate {
			continue
		}
		b := fileBuilder{file: f, opts: opts}
		file := b.build()
		for _, c := range file.Checks {
			if prev, ok := backends[c.Backend]; ok {
				b.addf(b.file.Desc.Services().ByName(protoreflect.FullName(c.Service).Name()), "backend %q is already generated for %s; give one of them another name with check.backend", c.Backend, prev)
				continue
			}
			backends[c.Backend] = fmt.Sprintf("service %s in %s", c.Service, f.Desc.Path())
			if prev, ok := services[strings.ToLower(c.Service)]; ok {
				b.addf(b.file.Desc.Services().ByName(protoreflect.FullName(c.Service).Name()), "differs from service %s only in case, so their fragment files would be one file on case-insensitive file systems; rename one of them", prev)
			}
			services[strings.ToLower(c.Service)] = c.Service
		}
		problems = append(problems, b.problems...)
		if len(file.Checks) > 0 {
			files = append(files, file)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return files, nil
}

// fileBuilder builds the checks of one file and collects its problems.
type fileBuilder struct {
	file     *protogen.File
	opts     Options
	defaults *haproxycheckv1.Check // the file's defaults option, or nil
	problems []error
}

// addf records a problem of the service or RPC elem, named with its source
// location when protoc gave one: "file.proto:12:3: rpc pkg.Svc.Check: ...".
func (b *fileBuilder) addf(elem protoreflect.Descriptor, format string, args ...any) {
	where := b.file.Desc.Path()
	if loc := b.file.Desc.SourceLocations().ByDescriptor(elem); loc.Path != nil {
		where = fmt.Sprintf("%s:%d:%d", where, loc.StartLine+1, loc.StartColumn+1)
	}
	kind := "service"
	switch elem.(type) {
	case protoreflect.MethodDescriptor:
		kind = "rpc"
	case protoreflect.FileDescriptor:
		b.problems = append(b.problems, fmt.Errorf("%s: option defaults: %s", where, fmt.Sprintf(format, args...)))
		return
	}
	b.problems = append(b.problems, fmt.Errorf("%s: %s %s: %s", where, kind, elem.FullName(), fmt.Sprintf(format, args...)))
}

func (b *fileBuilder) build() File {
	file := File{
		Source: b.file.Desc.Path(),
		Go: GoPackage{
			ImportPath:     b.file.GoImportPath,
			Name:           b.file.GoPackageName,
			FilenamePrefix: b.file.GeneratedFilenamePrefix,
		},
	}
	if proto.HasExtension(b.file.Desc.Options(), haproxycheckv1.E_Defaults) {
		b.defaults = proto.GetExtension(b.file.Desc.Options(), haproxycheckv1.E_Defaults).(*haproxycheckv1.Check)
		b.noUnknownFields(b.file.Desc, "defaults", b.defaults)
		if b.defaults.GetBackend() != "" {
			b.addf(b.file.Desc, "backend %q would name every service's backend alike; set check.backend on each service instead", b.defaults.GetBackend())
		}
	}
	for _, svc := range b.file.Services {
		if c, ok := b.service(svc); ok {
			file.Checks = append(file.Checks, c)
		}
	}
	return file
}

// service returns the check of svc, if it is annotated and valid.
func (b *fileBuilder) service(svc *protogen.Service) (Check, bool) {
	var (
		healthOpt *haproxycheckv1.GrpcHealthCheck
		rpcs      []*protogen.Method
	)
	if proto.HasExtension(svc.Desc.Options(), haproxycheckv1.E_GrpcHealth) {
		healthOpt = proto.GetExtension(svc.Desc.Options(), haproxycheckv1.E_GrpcHealth).(*haproxycheckv1.GrpcHealthCheck)
	}
	for _, m := range svc.Methods {
		if proto.HasExtension(m.Desc.Options(), haproxycheckv1.E_HealthRpc) {
			rpcs = append(rpcs, m)
		}
	}
	optOut := proto.HasExtension(svc.Desc.Options(), haproxycheckv1.E_NoCheck)
	switch {
	case optOut && strings.TrimSpace(proto.GetExtension(svc.Desc.Options(), haproxycheckv1.E_NoCheck).(string)) == "":
		b.addf(svc.Desc, "no_check is empty; say why the service is not health-checked")
		return Check{}, false
	case optOut && (healthOpt != nil || len(rpcs) > 0):
		b.addf(svc.Desc, "has a health check and no_check; keep one of them")
		return Check{}, false
	case optOut:
		return Check{}, false
	case healthOpt == nil && len(rpcs) == 0:
		if b.opts.RequireChecks {
			b.addf(svc.Desc, "has no health check, and require_checks=true asks every service for one; "+
				"annotate it with grpc_health or health_rpc, or opt out with option (haproxycheck.v1.no_check) = \"<why>\"")
		}
		return Check{}, false
	case len(rpcs) > 1 || (healthOpt != nil && len(rpcs) > 0):
		b.addf(svc.Desc, "has %d health checks (grpc_health and health_rpc annotations); a service has one, so keep one annotation",
			len(rpcs)+boolInt(healthOpt != nil))
		return Check{}, false
	case healthOpt != nil:
		return b.grpcHealth(svc, healthOpt)
	default:
		return b.healthRPC(svc, rpcs[0])
	}
}

// grpcHealth builds a check through grpc.health.v1.Health/Check.
func (b *fileBuilder) grpcHealth(svc *protogen.Service, opt *haproxycheckv1.GrpcHealthCheck) (Check, bool) {
	n := len(b.problems)
	b.noUnknownFields(svc.Desc, "grpc_health", opt)
	settings := b.merged(opt.GetCheck())
	name := string(svc.Desc.FullName())
	switch {
	case settings.GetWholeServer() && opt.ServiceName != nil && opt.GetServiceName() != "":
		b.addf(svc.Desc, "check.whole_server asks about the whole server, service_name %q about one service; keep one of them", opt.GetServiceName())
	case settings.GetWholeServer():
		name = ""
	case opt.ServiceName != nil:
		name = opt.GetServiceName()
	}
	c := Check{
		Kind:              GRPCHealth,
		Service:           string(svc.Desc.FullName()),
		GoService:         svc.GoName,
		Path:              grpcHealthCheckPath,
		HealthServiceName: name,
		Request: b.knownMessage(svc.Desc, &grpc_health_v1.HealthCheckRequest{Service: name},
			fmt.Sprintf("service: %q", name)),
		ExpectedResponse: b.knownMessage(svc.Desc, &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING},
			"status: SERVING"),
		NotServingResponse: b.knownMessage(svc.Desc, &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_NOT_SERVING},
			"status: NOT_SERVING"),
	}
	if name == "" {
		c.Request.Text = ""
	}
	b.checkSettings(svc.Desc, &c, settings)
	return c, len(b.problems) == n
}

// healthRPC builds a check through one of the service's own RPCs.
func (b *fileBuilder) healthRPC(svc *protogen.Service, m *protogen.Method) (Check, bool) {
	n := len(b.problems)
	opt := proto.GetExtension(m.Desc.Options(), haproxycheckv1.E_HealthRpc).(*haproxycheckv1.HealthRPC)
	b.noUnknownFields(m.Desc, "health_rpc", opt)
	if m.Desc.IsStreamingClient() || m.Desc.IsStreamingServer() {
		b.addf(m.Desc, "is a streaming RPC; a health RPC must be unary (one request, one response)")
		return Check{}, false
	}
	c := Check{
		Kind:      HealthRPC,
		Service:   string(svc.Desc.FullName()),
		GoService: svc.GoName,
		Path:      fmt.Sprintf("/%s/%s", svc.Desc.FullName(), m.Desc.Name()),
		HealthRPC: &GoMethod{
			Method: m.GoName,
			Input:  m.Input.GoIdent,
			Output: m.Output.GoIdent,
			UnimplementedServer: protogen.GoIdent{
				GoName:       "Unimplemented" + svc.GoName + "Server",
				GoImportPath: b.file.GoImportPath,
			},
		},
		Request:          b.textMessage(m.Desc, "request", m.Input.Desc, opt.GetRequest()),
		ExpectedResponse: b.textMessage(m.Desc, "expected_response", m.Output.Desc, opt.GetExpectedResponse()),
	}
	switch {
	case strings.TrimSpace(opt.GetExpectedResponse()) == "":
		b.addf(m.Desc, "health_rpc.expected_response is missing; give the healthy response in text format of %s, for example 'status: \"OK\"'",
			m.Output.Desc.FullName())
	case len(c.ExpectedResponse.Bytes) == 0 && c.ExpectedResponse.Type != "":
		b.addf(m.Desc, "health_rpc.expected_response %q serializes to the empty message, which any server may answer; set a field that only a healthy server sends",
			opt.GetExpectedResponse())
	case len(c.ExpectedResponse.Bytes) > maxExpectedResponse:
		b.addf(m.Desc, "health_rpc.expected_response is %d bytes serialized; at most %d fit on one HAProxy configuration line, so expect a shorter answer",
			len(c.ExpectedResponse.Bytes), maxExpectedResponse)
	case containsEndOfStream(c.ExpectedResponse.GRPC):
		b.addf(m.Desc, "health_rpc.expected_response contains bytes that read as an HTTP/2 end of stream, which would end the check before the answer is whole; expect another value")
	}
	if opt.GetNotServingResponse() != "" {
		c.NotServingResponse = b.textMessage(m.Desc, "not_serving_response", m.Output.Desc, opt.GetNotServingResponse())
		if len(c.ExpectedResponse.GRPC) > 0 && len(c.NotServingResponse.GRPC) > 0 && bytes.Contains(c.NotServingResponse.GRPC, c.ExpectedResponse.GRPC) {
			b.addf(m.Desc, "health_rpc.not_serving_response holds the expected response, so the check would pass on a server that is not serving; make the two answers differ")
		}
	}
	if opt.GetCheck().GetWholeServer() {
		b.addf(m.Desc, "check.whole_server applies to grpc_health checks only; remove it")
	}
	b.checkSettings(m.Desc, &c, b.merged(opt.GetCheck()))
	return c, len(b.problems) == n
}

// knownMessage returns a message of a type this package knows, with its
// text for comments.
func (b *fileBuilder) knownMessage(elem protoreflect.Descriptor, m proto.Message, text string) Message {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		b.addf(elem, "cannot serialize %s: %v", m.ProtoReflect().Descriptor().FullName(), err)
	}
	return Message{Type: string(m.ProtoReflect().Descriptor().FullName()), Text: text, Bytes: raw, GRPC: wire.Message(raw)}
}

// textMessage parses text in protobuf text format as a message of type md.
func (b *fileBuilder) textMessage(elem protoreflect.Descriptor, field string, md protoreflect.MessageDescriptor, text string) Message {
	msg := dynamicpb.NewMessage(md)
	if err := prototext.Unmarshal([]byte(text), msg); err != nil {
		b.addf(elem, "health_rpc.%s is not valid text format of %s: %v", field, md.FullName(), err)
		return Message{}
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		b.addf(elem, "health_rpc.%s cannot be serialized as %s: %v", field, md.FullName(), err)
		return Message{}
	}
	return Message{Type: string(md.FullName()), Text: strings.TrimSpace(text), Bytes: raw, GRPC: wire.Message(raw)}
}

// checkSettings fills in c's backend, authority, servers, timing and wire
// request from the annotation's check settings and their defaults.
func (b *fileBuilder) checkSettings(elem protoreflect.Descriptor, c *Check, opt *haproxycheckv1.Check) {
	if len(c.Path) > maxPath {
		b.addf(elem, "the call's path %s is %d characters; at most %d fit in the comments of HAProxy's configuration lines, so shorten the package, service or RPC name", c.Path, len(c.Path), maxPath)
	}
	c.Backend = opt.GetBackend()
	if c.Backend == "" {
		c.Backend = strings.ReplaceAll(c.Service, ".", "_")
	}
	if !haproxyName.MatchString(c.Backend) {
		b.addf(elem, "backend name %q is not a safe HAProxy name; use up to 100 letters, digits, '_', '-' and '.', starting with a letter or digit (set check.backend)",
			c.Backend)
	}

	c.Authority = opt.GetAuthority()
	if c.Authority == "" {
		c.Authority = DefaultAuthority
	}
	if !authority.MatchString(c.Authority) {
		b.addf(elem, "check.authority %q is not a valid :authority; use host or host:port without spaces, quotes or '#'", c.Authority)
	}

	srv := opt.GetServers()
	c.Servers = Servers{
		Address:     srv.GetAddress(),
		Count:       orDefault(srv.GetCount(), DefaultServerCount),
		Resolvers:   srv.GetResolvers(),
		SendProxyV2: srv.GetSendProxyV2(),
	}
	if c.Servers.Address == "" {
		c.Servers.EnvVar = strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(c.Backend)) + "_SERVERS"
	} else if !serverAddress.MatchString(c.Servers.Address) {
		b.addf(elem, "check.servers.address %q is not a host:port HAProxy can resolve; use a DNS name or address with a port, without spaces or quotes", c.Servers.Address)
	}
	if c.Servers.Resolvers == "" {
		c.Servers.Resolvers = DefaultResolvers
	}
	if !haproxyName.MatchString(c.Servers.Resolvers) {
		b.addf(elem, "check.servers.resolvers %q is not a safe HAProxy name; use letters, digits, '_', '-' and '.'", c.Servers.Resolvers)
	}
	if c.Servers.Count > maxServerCount {
		b.addf(elem, "check.servers.count %d is more than %d server slots", c.Servers.Count, maxServerCount)
	}

	t := opt.GetTiming()
	c.Timing = Timing{
		InterMS:     orDefault(t.GetInterMs(), DefaultInterMS),
		FastinterMS: t.GetFastinterMs(),
		DowninterMS: t.GetDowninterMs(),
		Rise:        orDefault(t.GetRise(), DefaultRise),
		Fall:        orDefault(t.GetFall(), DefaultFall),
		TimeoutMS:   t.GetTimeoutMs(),
	}
	for _, d := range []struct {
		field string
		ms    uint32
	}{{"inter_ms", c.Timing.InterMS}, {"fastinter_ms", c.Timing.FastinterMS}, {"downinter_ms", c.Timing.DowninterMS}, {"timeout_ms", c.Timing.TimeoutMS}} {
		if d.ms > maxDurationMS {
			b.addf(elem, "check.timing.%s %d is longer than HAProxy's largest time value (%d ms)", d.field, d.ms, maxDurationMS)
		}
	}
	for _, n := range []struct {
		field string
		n     uint32
	}{{"rise", c.Timing.Rise}, {"fall", c.Timing.Fall}} {
		if n.n > maxInt {
			b.addf(elem, "check.timing.%s %d is more than HAProxy takes (%d)", n.field, n.n, maxInt)
		}
	}

	switch opt.GetMode() {
	case haproxycheckv1.Check_MODE_UNSPECIFIED, haproxycheckv1.Check_MODE_TCP:
	case haproxycheckv1.Check_MODE_HTTP:
		c.HTTPMode = true
	default:
		b.addf(elem, "check.mode %d is unknown to this protoc-gen-haproxycheck; upgrade the plugin to the version of the options file", opt.GetMode())
	}
	c.TLS = b.tls(elem, c.Authority, opt.GetTls())
	c.Metadata = b.metadata(elem, opt.GetMetadata())

	scheme := "http"
	if c.TLS != nil {
		scheme = "https"
	}
	var err error
	c.UserAgent = b.opts.UserAgent
	if b.opts.GRPCTimeout {
		// HAProxy's check timeout: timeout check, or else inter.
		c.GRPCTimeout = time.Duration(orDefault(c.Timing.TimeoutMS, c.Timing.InterMS)) * time.Millisecond
	}
	c.Wire, err = wire.Encode(wire.Request{
		Scheme: scheme, Authority: c.Authority, Path: c.Path, Message: c.Request.Bytes,
		Timeout: c.GRPCTimeout, UserAgent: c.UserAgent, Metadata: c.Metadata,
	})
	if err != nil {
		b.addf(elem, "%v", err)
	}
}

// merged returns a check's own settings over the file's defaults.
func (b *fileBuilder) merged(own *haproxycheckv1.Check) *haproxycheckv1.Check {
	if b.defaults == nil {
		return own
	}
	opt := proto.CloneOf(b.defaults)
	proto.Merge(opt, own)
	if own.GetTls() != nil {
		opt.Tls = own.GetTls() // TLS settings go together
	}
	return opt
}

// tls returns the check's TLS settings, or nil when opt is unset.
func (b *fileBuilder) tls(elem protoreflect.Descriptor, authority string, opt *haproxycheckv1.TLS) *TLS {
	if opt == nil {
		return nil
	}
	t := &TLS{ServerName: opt.GetServerName(), CAFile: opt.GetCaFile(), InsecureSkipVerify: opt.GetInsecureSkipVerify()}
	if t.ServerName == "" {
		if host := authorityHost(authority); dnsName.MatchString(host) {
			t.ServerName = host
		}
	} else if !dnsName.MatchString(t.ServerName) {
		b.addf(elem, "check.tls.server_name %q is not a DNS name; SNI carries host names only", t.ServerName)
	}
	switch {
	case t.InsecureSkipVerify && t.CAFile != "":
		b.addf(elem, "check.tls.ca_file and check.tls.insecure_skip_verify conflict; verify with the CA file or skip verification, not both")
	case t.CAFile == "" && !t.InsecureSkipVerify:
		t.CAFile = "@system-ca"
	case t.CAFile != "" && !caFile.MatchString(t.CAFile):
		b.addf(elem, "check.tls.ca_file %q is not a file name HAProxy can take; use letters, digits and '_', '.', '/', '+', '-'", t.CAFile)
	}
	return t
}

// metadata returns the check's request metadata, reporting keys a check
// cannot send and values that are not printable ASCII.
func (b *fileBuilder) metadata(elem protoreflect.Descriptor, opt []*haproxycheckv1.Metadata) []wire.Metadata {
	var md []wire.Metadata
	for _, m := range opt {
		switch key := m.GetKey(); {
		case !metadataKey.MatchString(key):
			b.addf(elem, "check.metadata key %q is not a gRPC metadata key; use lower-case letters, digits, '_', '-' and '.'", key)
		case strings.HasPrefix(key, "grpc-"), reservedHeaders[key]:
			b.addf(elem, "check.metadata key %q is reserved (gRPC or HTTP/2 sets it); use a key of your own", key)
		case strings.HasSuffix(key, "-bin"):
			b.addf(elem, "check.metadata key %q is binary metadata, which a check does not send; use a text key", key)
		case !metadataValue.MatchString(m.GetValue()):
			b.addf(elem, "check.metadata value of %q must be printable ASCII, at most 1000 characters", key)
		default:
			md = append(md, wire.Metadata{Key: key, Value: m.GetValue()})
		}
	}
	return md
}

// authorityHost returns the host of an authority "host" or "host:port",
// without the brackets of an IPv6 address.
func authorityHost(authority string) string {
	if host, _, err := net.SplitHostPort(authority); err == nil {
		return host
	}
	return strings.Trim(authority, "[]")
}

// noUnknownFields reports fields of our options that this plugin does not
// know: they come from a newer options file, and ignoring them would
// generate a check other than the one the user asked for.
func (b *fileBuilder) noUnknownFields(elem protoreflect.Descriptor, option string, m proto.Message) {
	var unknown []string
	var walk func(prefix string, m protoreflect.Message)
	walk = func(prefix string, m protoreflect.Message) {
		if len(m.GetUnknown()) > 0 {
			unknown = append(unknown, prefix)
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
				walk(prefix+"."+string(fd.Name()), v.Message())
			}
			return true
		})
	}
	walk(option, m.ProtoReflect())
	for _, where := range unknown {
		b.addf(elem, "option %s has fields this protoc-gen-haproxycheck does not know; upgrade the plugin to the version of the options file", where)
	}
}

// containsEndOfStream reports whether b holds the type, flags and stream of
// a frame header that the check reads as the end of the call.
func containsEndOfStream(b []byte) bool {
	for _, f := range wire.EndOfStream {
		if bytes.Contains(b, f.Tail()) {
			return true
		}
	}
	return false
}

func orDefault(v, def uint32) uint32 {
	if v == 0 {
		return def
	}
	return v
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
