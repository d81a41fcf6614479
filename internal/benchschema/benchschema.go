// Package benchschema generates a large, realistic schema of annotated gRPC
// services for benchmarks: the same schema as FileDescriptorProtos, which Go
// benchmarks hand to protogen without protoc, and as .proto source, which
// the benchmark driver hands to real protoc.
//
// Each service is in a proto file and package of its own, with an enum,
// five messages and three RPCs besides its health check. Half the services
// (the even ones) are checked through grpc.health.v1, half through a health
// RPC of their own, with the check settings that users set: backend names,
// :authority, a custom health service name, request text and timing.
package benchschema

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/plugin"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/version"
	haproxycheckv1 "github.com/haproxycheck/protoc-gen-haproxycheck/options/haproxycheck/v1"
)

// Services is the number of services of the schema that the benchmarks and
// the driver measure.
const Services = 1000

// OptionsFile is the import path of the options every generated file
// imports; protoc finds it under the repository's options directory.
const OptionsFile = "haproxycheck/v1/haproxycheck.proto"

// serviceNames are the names services cycle through, each in its own
// package.
var serviceNames = []string{"Catalog", "Orders", "Billing", "Accounts", "Inventory", "Shipping", "Search", "Reviews"}

// Files returns the n proto files of the schema.
func Files(n int) []*descriptorpb.FileDescriptorProto {
	files := make([]*descriptorpb.FileDescriptorProto, n)
	for i := range files {
		files[i] = file(i)
	}
	return files
}

// file returns the proto file of service i.
func file(i int) *descriptorpb.FileDescriptorProto {
	pkg := fmt.Sprintf("bench.svc%04d.v1", i)
	typ := func(name string) *string { return proto.String("." + pkg + "." + name) }
	svc := &descriptorpb.ServiceDescriptorProto{
		Name: proto.String(serviceNames[i%len(serviceNames)]),
		Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("GetItem"), InputType: typ("GetItemRequest"), OutputType: typ("Item")},
			{Name: proto.String("ListItems"), InputType: typ("ListItemsRequest"), OutputType: typ("ListItemsResponse")},
			{Name: proto.String("WatchItems"), InputType: typ("ListItemsRequest"), OutputType: typ("Item"), ServerStreaming: proto.Bool(true)},
		},
	}
	messages := []*descriptorpb.DescriptorProto{
		message("Item",
			field("id", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil),
			field("name", 2, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil),
			field("created_unix", 3, descriptorpb.FieldDescriptorProto_TYPE_INT64, nil),
			field("state", 4, descriptorpb.FieldDescriptorProto_TYPE_ENUM, typ("ItemState")),
			repeated(field("labels", 5, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil)),
			field("score", 6, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, nil),
			field("payload", 7, descriptorpb.FieldDescriptorProto_TYPE_BYTES, nil)),
		message("GetItemRequest", field("id", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil)),
		message("ListItemsRequest",
			field("page_size", 1, descriptorpb.FieldDescriptorProto_TYPE_INT32, nil),
			field("page_token", 2, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil)),
		message("ListItemsResponse",
			repeated(field("items", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, typ("Item"))),
			field("next_page_token", 2, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil)),
	}
	if i%2 == 0 {
		svc.Options = &descriptorpb.ServiceOptions{}
		proto.SetExtension(svc.Options, haproxycheckv1.E_GrpcHealth, grpcHealth(i))
	} else {
		messages = append(messages,
			message("CheckRequest", field("caller", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil)),
			message("CheckResponse",
				field("status", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, nil),
				field("version", 2, descriptorpb.FieldDescriptorProto_TYPE_INT32, nil)))
		check := &descriptorpb.MethodDescriptorProto{Name: proto.String("Check"), InputType: typ("CheckRequest"), OutputType: typ("CheckResponse"), Options: &descriptorpb.MethodOptions{}}
		proto.SetExtension(check.Options, haproxycheckv1.E_HealthRpc, healthRPC(i))
		svc.Method = append(svc.Method, check)
	}
	return &descriptorpb.FileDescriptorProto{
		Name:       proto.String(fmt.Sprintf("bench/svc%04d/v1/service.proto", i)),
		Package:    proto.String(pkg),
		Dependency: []string{OptionsFile},
		Options:    &descriptorpb.FileOptions{GoPackage: proto.String(fmt.Sprintf("example.com/bench/svc%04d/v1;svc%04dv1", i, i))},
		EnumType: []*descriptorpb.EnumDescriptorProto{{
			Name: proto.String("ItemState"),
			Value: []*descriptorpb.EnumValueDescriptorProto{
				{Name: proto.String("ITEM_STATE_UNSPECIFIED"), Number: proto.Int32(0)},
				{Name: proto.String("ITEM_STATE_ACTIVE"), Number: proto.Int32(1)},
				{Name: proto.String("ITEM_STATE_ARCHIVED"), Number: proto.Int32(2)},
			},
		}},
		MessageType: messages,
		Service:     []*descriptorpb.ServiceDescriptorProto{svc},
		Syntax:      proto.String("proto3"),
	}
}

// grpcHealth returns the grpc_health annotation of service i: every other
// one names its backend and :authority, every tenth asks about a health
// service name of its own.
func grpcHealth(i int) *haproxycheckv1.GrpcHealthCheck {
	opt := &haproxycheckv1.GrpcHealthCheck{Check: &haproxycheckv1.Check{}}
	if i%4 == 0 {
		opt.Check.Backend = fmt.Sprintf("svc%04d", i)
		opt.Check.Authority = fmt.Sprintf("svc%04d.internal:8443", i)
	}
	if i%10 == 0 {
		opt.ServiceName = proto.String(fmt.Sprintf("svc%04d", i))
	}
	return opt
}

// healthRPC returns the health_rpc annotation of service i, with request
// text and timing on every other one.
func healthRPC(i int) *haproxycheckv1.HealthRPC {
	opt := &haproxycheckv1.HealthRPC{ExpectedResponse: `status: "OK" version: 3`}
	if i%4 == 1 {
		opt.Request = `caller: "haproxy"`
		opt.Check = &haproxycheckv1.Check{Timing: &haproxycheckv1.Timing{InterMs: 1000, Rise: 2, Fall: 3}}
	}
	return opt
}

// message returns a message type of fields.
func message(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
	return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
}

// field returns a singular field; typeName names its message or enum type.
func field(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type, typeName *string) *descriptorpb.FieldDescriptorProto {
	return &descriptorpb.FieldDescriptorProto{
		Name:     proto.String(name),
		Number:   proto.Int32(number),
		Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		Type:     typ.Enum(),
		TypeName: typeName,
	}
}

// repeated makes f repeated.
func repeated(f *descriptorpb.FieldDescriptorProto) *descriptorpb.FieldDescriptorProto {
	f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	return f
}

// Request returns the request protoc sends a plugin asked to generate
// files with the parameter paths=source_relative: the files, after the
// files they import.
func Request(files []*descriptorpb.FileDescriptorProto) *pluginpb.CodeGeneratorRequest {
	req := &pluginpb.CodeGeneratorRequest{
		Parameter: proto.String("paths=source_relative"),
		ProtoFile: []*descriptorpb.FileDescriptorProto{
			protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
			protodesc.ToFileDescriptorProto(haproxycheckv1.File_haproxycheck_v1_haproxycheck_proto),
		},
	}
	for _, f := range files {
		req.ProtoFile = append(req.ProtoFile, f)
		req.FileToGenerate = append(req.FileToGenerate, f.GetName())
	}
	return req
}

// Plugin returns the protogen plugin of Request(files).
func Plugin(files []*descriptorpb.FileDescriptorProto) (*protogen.Plugin, error) {
	return protogen.Options{}.New(Request(files))
}

// Checks returns the checks built from Plugin(files) with the plugin's
// default options, and fails tb if they cannot be built.
func Checks(tb testing.TB, files []*descriptorpb.FileDescriptorProto) []checkmodel.File {
	tb.Helper()
	gen, err := Plugin(files)
	if err != nil {
		tb.Fatal(err)
	}
	checks, err := checkmodel.Build(gen, plugin.DefaultParams.BuildOptions(version.Version))
	if err != nil {
		tb.Fatal(err)
	}
	return checks
}

// WriteSources writes the Source of each of files into dir, at the file's
// name, and returns the names.
func WriteSources(dir string, files []*descriptorpb.FileDescriptorProto) ([]string, error) {
	var names []string
	for _, f := range files {
		path := filepath.Join(dir, f.GetName())
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(Source(f)), 0o644); err != nil {
			return nil, err
		}
		names = append(names, f.GetName())
	}
	return names, nil
}

// Source returns f as .proto source that protoc compiles back to f. It
// writes the parts of a FileDescriptorProto that Files uses, and options
// only as extensions, as Files sets them.
func Source(f *descriptorpb.FileDescriptorProto) string {
	var b strings.Builder
	fmt.Fprintf(&b, "syntax = %q;\n\npackage %s;\n\n", f.GetSyntax(), f.GetPackage())
	for _, dep := range f.GetDependency() {
		fmt.Fprintf(&b, "import %q;\n", dep)
	}
	fmt.Fprintf(&b, "\noption go_package = %q;\n", f.GetOptions().GetGoPackage())
	for _, e := range f.GetEnumType() {
		fmt.Fprintf(&b, "\nenum %s {\n", e.GetName())
		for _, v := range e.GetValue() {
			fmt.Fprintf(&b, "  %s = %d;\n", v.GetName(), v.GetNumber())
		}
		b.WriteString("}\n")
	}
	for _, m := range f.GetMessageType() {
		fmt.Fprintf(&b, "\nmessage %s {\n", m.GetName())
		for _, fd := range m.GetField() {
			b.WriteString("  ")
			if fd.GetLabel() == descriptorpb.FieldDescriptorProto_LABEL_REPEATED {
				b.WriteString("repeated ")
			}
			typ := fd.GetTypeName()
			if typ == "" {
				typ = strings.ToLower(strings.TrimPrefix(fd.GetType().String(), "TYPE_"))
			}
			fmt.Fprintf(&b, "%s %s = %d;\n", typ, fd.GetName(), fd.GetNumber())
		}
		b.WriteString("}\n")
	}
	for _, s := range f.GetService() {
		fmt.Fprintf(&b, "\nservice %s {\n", s.GetName())
		writeOptions(&b, "  ", s.GetOptions())
		for _, m := range s.GetMethod() {
			stream := ""
			if m.GetServerStreaming() {
				stream = "stream "
			}
			fmt.Fprintf(&b, "  rpc %s(%s) returns (%s%s)", m.GetName(), m.GetInputType(), stream, m.GetOutputType())
			if m.GetOptions() == nil {
				b.WriteString(";\n")
				continue
			}
			b.WriteString(" {\n")
			writeOptions(&b, "    ", m.GetOptions())
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// writeOptions writes the extensions set in opts as option statements with
// message values in protobuf text format.
func writeOptions(b *strings.Builder, indent string, opts proto.Message) {
	if opts == nil || !opts.ProtoReflect().IsValid() {
		return
	}
	proto.RangeExtensions(opts, func(xt protoreflect.ExtensionType, v any) bool {
		text := prototext.MarshalOptions{}.Format(v.(proto.Message))
		fmt.Fprintf(b, "%soption (%s) = {%s};\n", indent, xt.TypeDescriptor().FullName(), text)
		return true
	})
}

// ReportPerService reports the time of one benchmark iteration over the
// whole schema per service, after b's loop has ended.
func ReportPerService(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/Services, "ns/service")
}
