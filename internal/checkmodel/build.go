package checkmodel

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

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
)

// Build returns the checks of every file that protoc asked to generate. It
// returns one error listing every problem found, each naming its file,
// line and element, and no files when there is any.
func Build(plugin *protogen.Plugin) ([]File, error) {
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
		b := fileBuilder{file: f}
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
	if _, ok := elem.(protoreflect.MethodDescriptor); ok {
		kind = "rpc"
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
	switch {
	case healthOpt == nil && len(rpcs) == 0:
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
	name := string(svc.Desc.FullName())
	if opt.ServiceName != nil {
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
	b.checkSettings(svc.Desc, &c, opt.GetCheck())
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
	b.checkSettings(m.Desc, &c, opt.GetCheck())
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
		Address:   srv.GetAddress(),
		Count:     orDefault(srv.GetCount(), DefaultServerCount),
		Resolvers: srv.GetResolvers(),
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

	var err error
	c.Wire, err = wire.Encode(wire.Request{Scheme: "http", Authority: c.Authority, Path: c.Path, Message: c.Request.Bytes})
	if err != nil {
		b.addf(elem, "%v", err)
	}
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
