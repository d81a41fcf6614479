package checkmodel

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/wire"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// Defaults for fields an annotation leaves unset. The options proto states
// each next to its field, and a test holds the two to the same values.
const (
	DefaultAuthority   = "localhost"
	DefaultServerCount = 10
	DefaultResolvers   = "default"
	DefaultInterMS     = 2000
	DefaultRise        = 2
	DefaultFall        = 3
)

// Limits on annotations, each stated next to its field in the options
// proto, which a test holds to the same values.
const (
	// MaxServerCount is the most server slots a backend gets.
	MaxServerCount = 10000
	// MaxCount is HAProxy's largest rise and fall.
	MaxCount = 1<<31 - 1
	// MaxDurationMS is HAProxy's largest time value, in milliseconds.
	MaxDurationMS = MaxCount
	// MaxExpectedResponse is the largest healthy response, serialized, in
	// bytes: the check's patterns spell out each of its bytes.
	MaxExpectedResponse = 700
	// MaxPath is the longest :path; a path appears in rule comments.
	MaxPath = 512
	// MaxName is the longest backend and resolvers name.
	MaxName = 100
	// MaxAuthority is the longest :authority.
	MaxAuthority = 255
	// MaxMetadataKey and MaxMetadataValue are the longest metadata key and
	// value.
	MaxMetadataKey   = 100
	MaxMetadataValue = 1000
)

const grpcHealthCheckPath = "/grpc.health.v1.Health/Check"

var (
	// haproxyName is a safe HAProxy section or resolvers name, and a safe
	// file name.
	haproxyName = regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,%d}$`, MaxName-1))
	// authority is an RFC 3986 authority: no white space, quotes or '#'.
	authority = regexp.MustCompile(fmt.Sprintf(`^[A-Za-z0-9\-._~%%!$&'()*+,;=:@\[\]]{1,%d}$`, MaxAuthority))
	// serverAddress is a host name or address with an optional port, as
	// HAProxy's server-template takes it.
	serverAddress = regexp.MustCompile(`^[A-Za-z0-9_\[][A-Za-z0-9_.:\[\]-]{0,254}$`)
	// dnsName is a DNS host name, as SNI carries it.
	dnsName = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// caFile is a file name HAProxy's ca-file takes on a configuration line.
	caFile = regexp.MustCompile(`^(@system-ca|[A-Za-z0-9_./+-]{1,255})$`)
	// metadataKey is a gRPC metadata key (PROTOCOL-HTTP2.md: lower case).
	metadataKey = regexp.MustCompile(fmt.Sprintf(`^[0-9a-z_.-]{1,%d}$`, MaxMetadataKey))
	// metadataValue is a gRPC ASCII metadata value: printable ASCII.
	metadataValue = regexp.MustCompile(fmt.Sprintf(`^[\x20-\x7e]{0,%d}$`, MaxMetadataValue))
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
	// MinHAProxy is the oldest HAProxy the fragments must load on.
	MinHAProxy HAProxyVersion
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
			svc := b.file.Desc.Services().ByName(protoreflect.FullName(c.Service.Name).Name())
			if prev, ok := backends[c.Backend.Name]; ok {
				b.addf(svc, "backend %q is already generated for %s; give one of them another name with check.backend", c.Backend.Name, prev)
				continue
			}
			backends[c.Backend.Name] = fmt.Sprintf("service %s in %s", c.Service.Name, f.Desc.Path())
			if prev, ok := services[strings.ToLower(c.Service.Name)]; ok {
				b.addf(svc, "differs from service %s only in case, so their fragment files would be one file on case-insensitive file systems; rename one of them", prev)
			}
			services[strings.ToLower(c.Service.Name)] = c.Service.Name
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
		Service:           Service{Name: string(svc.Desc.FullName()), GoName: svc.GoName},
		HealthServiceName: name,
		Call: Call{
			Path:    grpcHealthCheckPath,
			Request: healthMessage(healthRequestType, healthRequest(name), fmt.Sprintf("service: %q", name)),
		},
		Answers: Answers{
			Healthy:    healthMessage(healthResponseType, healthStatus(healthServing), "status: SERVING"),
			NotServing: healthMessage(healthResponseType, healthStatus(healthNotServing), "status: NOT_SERVING"),
		},
	}
	if name == "" {
		c.Call.Request.Text = "" // the empty message
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
		Kind:    HealthRPC,
		Service: Service{Name: string(svc.Desc.FullName()), GoName: svc.GoName},
		HealthRPC: &GoMethod{
			Method: m.GoName,
			Input:  m.Input.GoIdent,
			Output: m.Output.GoIdent,
		},
		Call: Call{
			Path:    fmt.Sprintf("/%s/%s", svc.Desc.FullName(), m.Desc.Name()),
			Request: b.textMessage(m.Desc, "request", m.Input.Desc, opt.GetRequest()),
		},
		Answers: Answers{
			Healthy: b.textMessage(m.Desc, "expected_response", m.Output.Desc, opt.GetExpectedResponse()),
		},
	}
	healthy := c.Answers.Healthy
	switch {
	case strings.TrimSpace(opt.GetExpectedResponse()) == "":
		b.addf(m.Desc, "health_rpc.expected_response is missing; give the healthy response in text format of %s, for example 'status: \"OK\"'",
			m.Output.Desc.FullName())
	case len(healthy.Bytes) == 0 && healthy.Type != "":
		b.addf(m.Desc, "health_rpc.expected_response %q serializes to the empty message, which any server may answer; set a field that only a healthy server sends",
			opt.GetExpectedResponse())
	case len(healthy.Bytes) > MaxExpectedResponse:
		b.addf(m.Desc, "health_rpc.expected_response is %d bytes serialized; a check matches at most %d, so expect a shorter answer",
			len(healthy.Bytes), MaxExpectedResponse)
	}
	if opt.GetNotServingResponse() != "" {
		c.Answers.NotServing = b.textMessage(m.Desc, "not_serving_response", m.Output.Desc, opt.GetNotServingResponse())
		if notServing := c.Answers.NotServing; len(healthy.GRPC) > 0 && len(notServing.GRPC) > 0 && bytes.Contains(healthy.GRPC, notServing.GRPC) {
			b.addf(m.Desc, "health_rpc.expected_response holds the not_serving_response, so the check could take a healthy server for one that is not serving; make the two answers differ")
		}
	}
	if opt.GetCheck().GetWholeServer() {
		b.addf(m.Desc, "check.whole_server applies to grpc_health checks only; remove it")
	}
	b.checkSettings(m.Desc, &c, b.merged(opt.GetCheck()))
	return c, len(b.problems) == n
}

// The grpc.health.v1 messages of a check (grpc/health/v1/health.proto),
// serialized by their fields, so that the plugin needs no gRPC library:
// HealthCheckRequest's service and HealthCheckResponse's status are each
// field 1; SERVING is 1 and NOT_SERVING 2.
const (
	healthRequestType  = "grpc.health.v1.HealthCheckRequest"
	healthResponseType = "grpc.health.v1.HealthCheckResponse"
	healthServing      = 1
	healthNotServing   = 2
)

// healthRequest returns a HealthCheckRequest about service, serialized:
// empty for the whole server, as proto3 leaves a default value out.
func healthRequest(service string) []byte {
	if service == "" {
		return nil
	}
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), service)
}

// healthStatus returns a HealthCheckResponse with status, serialized.
func healthStatus(status uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), status)
}

// healthMessage returns a grpc.health.v1 message of type typ, serialized as
// raw, with its text for comments.
func healthMessage(typ string, raw []byte, text string) Message {
	return Message{Type: typ, Text: text, Bytes: raw, GRPC: wire.Message(raw)}
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

// checkSettings fills in c's call settings and backend from the
// annotation's check settings, and encodes the call.
func (b *fileBuilder) checkSettings(elem protoreflect.Descriptor, c *Check, opt *haproxycheckv1.Check) {
	if len(c.Call.Path) > MaxPath {
		b.addf(elem, "the call's path %s is %d characters; at most %d fit in the comments of HAProxy's configuration lines, so shorten the package, service or RPC name", c.Call.Path, len(c.Call.Path), MaxPath)
	}
	c.Backend = Backend{
		Name:       b.backendName(elem, c.Service.Name, opt.GetBackend()),
		HTTPMode:   b.httpMode(elem, opt.GetMode()),
		Timing:     b.timing(elem, opt.GetTiming()),
		MinHAProxy: b.opts.MinHAProxy,
	}
	c.Backend.Servers = b.servers(elem, c.Backend.Name, opt.GetServers())
	c.Call.Authority = b.authority(elem, opt.GetAuthority())
	c.Backend.TLS = b.tls(elem, c.Call.Authority, opt.GetTls())
	c.Call.Metadata = b.metadata(elem, opt.GetMetadata())
	c.Answers.DrainNotServing = b.drainNotServing(elem, opt.GetNotServing())
	c.Call.UserAgent = b.opts.UserAgent
	if b.opts.GRPCTimeout {
		c.Call.Timeout = c.Backend.Timing.CheckTimeout()
	}
	b.encode(elem, c)
}

// backendName returns the backend's name: name, or one made of the
// service's full name.
func (b *fileBuilder) backendName(elem protoreflect.Descriptor, service, name string) string {
	if name == "" {
		name = strings.ReplaceAll(service, ".", "_")
	}
	if !haproxyName.MatchString(name) {
		b.addf(elem, "backend name %q is not a safe HAProxy name; use up to %d letters, digits, '_', '-' and '.', starting with a letter or digit (set check.backend)",
			name, MaxName)
	}
	return name
}

// authority returns the :authority the check sends.
func (b *fileBuilder) authority(elem protoreflect.Descriptor, a string) string {
	if a == "" {
		a = DefaultAuthority
	}
	if !authority.MatchString(a) {
		b.addf(elem, "check.authority %q is not a valid :authority; use host or host:port of at most %d characters, without spaces, quotes or '#'", a, MaxAuthority)
	}
	return a
}

// servers returns how servers are attached to the backend backend.
func (b *fileBuilder) servers(elem protoreflect.Descriptor, backend string, opt *haproxycheckv1.Servers) Servers {
	s := Servers{
		Address:     opt.GetAddress(),
		Count:       orDefault(opt.GetCount(), DefaultServerCount),
		Resolvers:   opt.GetResolvers(),
		SendProxyV2: opt.GetSendProxyV2(),
	}
	if s.Address == "" {
		s.EnvVar = strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(backend)) + "_SERVERS"
	} else if !serverAddress.MatchString(s.Address) {
		b.addf(elem, "check.servers.address %q is not a host:port HAProxy can resolve; use a DNS name or address with a port, without spaces or quotes", s.Address)
	}
	if s.Resolvers == "" {
		s.Resolvers = DefaultResolvers
	}
	if !haproxyName.MatchString(s.Resolvers) {
		b.addf(elem, "check.servers.resolvers %q is not a safe HAProxy name; use letters, digits, '_', '-' and '.'", s.Resolvers)
	}
	if s.Count > MaxServerCount {
		b.addf(elem, "check.servers.count %d is more than %d server slots", s.Count, MaxServerCount)
	}
	return s
}

// timing returns the check's timing, with defaults, within HAProxy's
// bounds.
func (b *fileBuilder) timing(elem protoreflect.Descriptor, opt *haproxycheckv1.Timing) Timing {
	t := Timing{
		InterMS:     orDefault(opt.GetInterMs(), DefaultInterMS),
		FastinterMS: opt.GetFastinterMs(),
		DowninterMS: opt.GetDowninterMs(),
		Rise:        orDefault(opt.GetRise(), DefaultRise),
		Fall:        orDefault(opt.GetFall(), DefaultFall),
		TimeoutMS:   opt.GetTimeoutMs(),
	}
	for _, d := range []struct {
		field string
		ms    uint32
	}{{"inter_ms", t.InterMS}, {"fastinter_ms", t.FastinterMS}, {"downinter_ms", t.DowninterMS}, {"timeout_ms", t.TimeoutMS}} {
		if d.ms > MaxDurationMS {
			b.addf(elem, "check.timing.%s %d is longer than HAProxy's largest time value (%d ms)", d.field, d.ms, MaxDurationMS)
		}
	}
	for _, n := range []struct {
		field string
		n     uint32
	}{{"rise", t.Rise}, {"fall", t.Fall}} {
		if n.n > MaxCount {
			b.addf(elem, "check.timing.%s %d is more than HAProxy takes (%d)", n.field, n.n, MaxCount)
		}
	}
	return t
}

// httpMode reports whether the backend runs in mode http.
func (b *fileBuilder) httpMode(elem protoreflect.Descriptor, mode haproxycheckv1.Check_Mode) bool {
	switch mode {
	case haproxycheckv1.Check_MODE_UNSPECIFIED, haproxycheckv1.Check_MODE_TCP:
		return false
	case haproxycheckv1.Check_MODE_HTTP:
		return true
	}
	b.unknownValue(elem, "check.mode", mode)
	return false
}

// drainNotServing reports whether a server that says it is not serving is
// drained rather than failed.
func (b *fileBuilder) drainNotServing(elem protoreflect.Descriptor, ns haproxycheckv1.Check_NotServing) bool {
	switch ns {
	case haproxycheckv1.Check_NOT_SERVING_UNSPECIFIED, haproxycheckv1.Check_NOT_SERVING_DRAIN:
		return true
	case haproxycheckv1.Check_NOT_SERVING_DOWN:
		return false
	}
	b.unknownValue(elem, "check.not_serving", ns)
	return true
}

// unknownValue reports that field has an enum value that this plugin does
// not know, as one of a newer options file would.
func (b *fileBuilder) unknownValue(elem protoreflect.Descriptor, field string, v protoreflect.Enum) {
	b.addf(elem, "%s %d is unknown to this protoc-gen-haproxycheck; upgrade the plugin to the version of the options file", field, v.Number())
}

// encode encodes c's call as the check sends it.
func (b *fileBuilder) encode(elem protoreflect.Descriptor, c *Check) {
	scheme := "http"
	if c.Backend.TLS != nil {
		scheme = "https"
	}
	var err error
	c.Call.Encoded, err = wire.Encode(wire.Request{
		Scheme: scheme, Authority: c.Call.Authority, Path: c.Call.Path, Message: c.Call.Request.Bytes,
		Timeout: c.Call.Timeout, UserAgent: c.Call.UserAgent, Metadata: c.Call.Metadata,
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
			b.addf(elem, "check.metadata value of %q must be printable ASCII, at most %d characters", key, MaxMetadataValue)
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
