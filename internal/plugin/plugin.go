// Package plugin answers protoc's and buf's plugin requests: it takes the
// plugin's parameters, builds the checks of the files to generate, and
// returns every HAProxy fragment and Go file, or an error and no file.
package plugin

import (
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"

	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/checkmodel"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/fragment"
	"github.com/haproxycheck/protoc-gen-haproxycheck/internal/gocode"
)

// FragmentDir is the directory, below the output directory, that holds the
// HAProxy fragments.
const FragmentDir = "haproxy"

// The editions the plugin takes, the same range as the protoc-gen-go it is
// built with: proto2, proto3 and Editions 2023 and 2024.
const (
	firstEdition = descriptorpb.Edition_EDITION_PROTO2
	lastEdition  = descriptorpb.Edition_EDITION_2024
)

// noGoPackage is the import path given to files that have no Go package,
// so that protogen takes them; no Go code is generated for them.
const noGoPackage = "haproxycheck.invalid/no-go-package/"

// GoMode says for which files Go code is generated.
type GoMode int

const (
	// GoAuto generates Go code for every file that has a Go package
	// (go_package or an M parameter), and fragments only for the others.
	GoAuto GoMode = iota
	// GoAlways generates Go code for every file; a file without a Go
	// package is an error.
	GoAlways
	// GoNever generates fragments only.
	GoNever
)

// Params are the plugin's own parameters, besides protogen's (paths,
// module and M).
type Params struct {
	// Go is set with go=auto (the default), go=true or go=false.
	Go GoMode
	// RequireChecks, require_checks=true, makes every service without a
	// check or a no_check opt-out an error.
	RequireChecks bool
	// GRPCTimeout, on unless grpc_timeout=false, sends each check's timeout
	// as grpc-timeout.
	GRPCTimeout bool
	// UserAgent, on unless user_agent=false, sends the generator and its
	// version as user-agent.
	UserAgent bool
	// MinHAProxy, min_haproxy=<version>, is the oldest HAProxy the
	// fragments must load on.
	MinHAProxy checkmodel.HAProxyVersion
}

// DefaultParams are the parameters when none is given.
var DefaultParams = Params{Go: GoAuto, GRPCTimeout: true, UserAgent: true, MinHAProxy: checkmodel.HAProxy26}

// Parameter is one of the plugin's own parameters, as the README's table,
// the command's help text and its errors describe it.
type Parameter struct {
	// Name is the parameter's name, and Values the values it takes, as
	// "auto|true|false".
	Name, Values string
	// Default is its value when unset, and Doc what it does.
	Default, Doc string
	// set sets it in p from value.
	set func(p *Params, value string) error
}

// Parameters are the plugin's own parameters, besides protogen's.
var Parameters = []Parameter{
	{
		Name: "go", Values: "auto|true|false", Default: "auto",
		Doc: "Go code for files that have a Go package (`go_package` or `M`), fragments for all; `true`: a file without a Go package is an error; `false`: fragments only",
		set: func(p *Params, v string) error {
			modes := map[string]GoMode{"auto": GoAuto, "true": GoAlways, "false": GoNever}
			mode, ok := modes[v]
			if !ok {
				return fmt.Errorf("parameter go=%s: want go=auto (Go code where a file has a Go package), go=true or go=false", v)
			}
			p.Go = mode
			return nil
		},
	},
	{
		Name: "require_checks", Values: "true|false", Default: "false",
		Doc: "every service needs a check or `option (haproxycheck.v1.no_check) = \"<why>\"`; generation fails naming each file and service that has neither",
		set: func(p *Params, v string) (err error) {
			p.RequireChecks, err = parseBool("require_checks", v)
			return err
		},
	},
	{
		Name: "grpc_timeout", Values: "true|false", Default: "true",
		Doc: "send the check's timeout as `grpc-timeout`, so that servers cancel a check HAProxy gave up on",
		set: func(p *Params, v string) (err error) {
			p.GRPCTimeout, err = parseBool("grpc_timeout", v)
			return err
		},
	},
	{
		Name: "user_agent", Values: "true|false", Default: "true",
		Doc: "send `user-agent: protoc-gen-haproxycheck/<version>`, so that server logs tell checks from traffic",
		set: func(p *Params, v string) (err error) {
			p.UserAgent, err = parseBool("user_agent", v)
			return err
		},
	},
	{
		Name: "min_haproxy", Values: haproxyVersions("|"), Default: checkmodel.HAProxy26.String(),
		Doc: "the oldest HAProxy the fragments must load on; from 3.2, servers that DNS adds start DOWN (`init-state down`) and get traffic once their first check passes",
		set: func(p *Params, v string) error {
			for _, hv := range checkmodel.HAProxyVersions {
				if hv.String() == v {
					p.MinHAProxy = hv
					return nil
				}
			}
			return fmt.Errorf("parameter min_haproxy=%s: want one of HAProxy's long-term support lines, %s", v, haproxyVersions(", "))
		},
	},
}

// haproxyVersions lists the versions min_haproxy takes, joined by sep.
func haproxyVersions(sep string) string {
	var vs []string
	for _, v := range checkmodel.HAProxyVersions {
		vs = append(vs, v.String())
	}
	return strings.Join(vs, sep)
}

// ParameterNames lists the names of Parameters, for messages.
func ParameterNames() string {
	var names []string
	for _, p := range Parameters {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// set sets the parameter name to value, for protogen's ParamFunc.
func (p *Params) set(name, value string) error {
	for _, param := range Parameters {
		if param.Name == name {
			return param.set(p, value)
		}
	}
	return fmt.Errorf("unknown parameter %q: protoc-gen-haproxycheck takes protogen's paths, module and M, and %s", name, ParameterNames())
}

// BuildOptions returns the check model's options for these parameters and
// generator version.
func (p Params) BuildOptions(version string) checkmodel.Options {
	opts := checkmodel.Options{GRPCTimeout: p.GRPCTimeout, RequireChecks: p.RequireChecks, MinHAProxy: p.MinHAProxy}
	if p.UserAgent {
		opts.UserAgent = "protoc-gen-haproxycheck/" + version
	}
	return opts
}

func parseBool(name, value string) (bool, error) {
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("parameter %s=%s: want true or false", name, value)
	}
	return b, nil
}

// Run reads a CodeGeneratorRequest from in and writes its response to out,
// as a protoc plugin does. Problems with the request's files go into the
// response; only failing to read or write is an error.
func Run(in io.Reader, out io.Writer, version string) error {
	b, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	req := &pluginpb.CodeGeneratorRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return fmt.Errorf("reading the CodeGeneratorRequest: %w", err)
	}
	b, err = proto.Marshal(Generate(req, version))
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// Generate returns the response to req from generator version: every
// fragment and Go file, or an error and no file.
func Generate(req *pluginpb.CodeGeneratorRequest, version string) *pluginpb.CodeGeneratorResponse {
	req, noGo := withGoPackages(req)
	params := DefaultParams
	plugin, err := protogen.Options{ParamFunc: params.set}.New(req)
	if err != nil {
		return &pluginpb.CodeGeneratorResponse{Error: proto.String(err.Error())}
	}
	plugin.SupportedFeatures = uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL |
		pluginpb.CodeGeneratorResponse_FEATURE_SUPPORTS_EDITIONS)
	plugin.SupportedEditionsMinimum = firstEdition
	plugin.SupportedEditionsMaximum = lastEdition
	if err := generate(plugin, params, noGo, version); err != nil {
		plugin.Error(err)
	}
	return plugin.Response()
}

// withGoPackages returns req, or a copy of it in which every file without
// a Go package has an M parameter that gives it noGoPackage, and the names
// of those files.
func withGoPackages(req *pluginpb.CodeGeneratorRequest) (*pluginpb.CodeGeneratorRequest, []string) {
	mapped := map[string]bool{}
	for _, p := range strings.Split(req.GetParameter(), ",") {
		if m, ok := strings.CutPrefix(p, "M"); ok {
			name, _, _ := strings.Cut(m, "=")
			mapped[name] = true
		}
	}
	var noGo, params []string
	for _, f := range req.GetProtoFile() {
		if f.GetOptions().GetGoPackage() == "" && !mapped[f.GetName()] {
			noGo = append(noGo, f.GetName())
			params = append(params, "M"+f.GetName()+"="+noGoPackage+strings.TrimSuffix(f.GetName(), ".proto"))
		}
	}
	if len(noGo) == 0 {
		return req, nil
	}
	req = proto.CloneOf(req)
	if req.GetParameter() != "" {
		params = append([]string{req.GetParameter()}, params...)
	}
	req.Parameter = proto.String(strings.Join(params, ","))
	return req, noGo
}

// generate writes every fragment and Go file, or nothing if any annotation
// is invalid.
func generate(plugin *protogen.Plugin, params Params, noGo []string, version string) error {
	files, err := checkmodel.Build(plugin, params.BuildOptions(version))
	if err != nil {
		return err
	}
	var goFiles []checkmodel.File
	for _, f := range files {
		switch {
		case params.Go == GoNever:
		case slices.Contains(noGo, f.Source) && params.Go == GoAlways:
			return fmt.Errorf("%s: has no Go package for the Go code go=true asks for; set option go_package, pass M%s=<import path>, or generate fragments only with go=false", f.Source, f.Source)
		case slices.Contains(noGo, f.Source):
		default:
			if err := goPackagesKnown(f); err != nil {
				return err
			}
			goFiles = append(goFiles, f)
		}
	}
	for _, f := range files {
		for _, c := range f.Checks {
			g := plugin.NewGeneratedFile(fragmentPath(plugin, fragment.FileName(c.Service.Name)), "")
			if _, err := g.Write(fragment.Render(f.Source, version, c)); err != nil {
				return err
			}
		}
	}
	for _, f := range goFiles {
		gocode.Generate(plugin, version, f)
	}
	return nil
}

// goPackagesKnown reports an error if f's Go code would use a message of a
// file that has no Go package.
func goPackagesKnown(f checkmodel.File) error {
	for _, c := range f.Checks {
		if c.HealthRPC == nil {
			continue
		}
		for _, id := range []protogen.GoIdent{c.HealthRPC.Input, c.HealthRPC.Output} {
			if strings.HasPrefix(string(id.GoImportPath), noGoPackage) {
				return fmt.Errorf("%s: the Go code of %s uses %s, whose file has no Go package; set its go_package, pass an M parameter for it, or generate fragments only with go=false",
					f.Source, c.Call.Path, strings.TrimPrefix(string(id.GoImportPath), noGoPackage)+".proto")
			}
		}
	}
	return nil
}

// fragmentPath returns the path of a fragment file. With the module=
// parameter, protogen strips the module from every generated path, so the
// fragment's path starts with it too.
func fragmentPath(plugin *protogen.Plugin, name string) string {
	for _, p := range strings.Split(plugin.Request.GetParameter(), ",") {
		if module, ok := strings.CutPrefix(p, "module="); ok {
			return path.Join(module, FragmentDir, name)
		}
	}
	return path.Join(FragmentDir, name)
}
