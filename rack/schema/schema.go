// Package schema generates the JSON Schema of the rack config
// (rack/rack.schema.json) from the rack package's Go types and doc
// comments, so editors complete and check rack.yaml files:
//
//	# yaml-language-server: $schema=https://…/rack.schema.json
//
// The schema describes the file's shape (fields, types, enums, required
// fields, the formats of addresses, MACs and durations); rules that span
// fields (unique MACs, a pool inside the subnet, a boot source that
// exists) stay rack.Parse's, which reports them with their line.
//
// Run `go generate ./rack/schema` after changing rack's types; the test
// fails while the checked-in schema differs from the generated one.
package schema

//go:generate go run gen.go

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/racklet/racklet-boot/rack"
)

// File is where the schema is checked in, relative to this package's directory.
const File = "../rack.schema.json"

// ID is the schema's $id.
const ID = "https://racklet.io/schemas/rack.schema.json"

// Generate returns the schema of rack.Config as indented JSON. rackDir is
// the rack package's source directory, whose doc comments become the
// descriptions ("" leaves them out).
func Generate(rackDir string) ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true, // required fields are listed below, not taken from omitempty
		DoNotReference:             false,
		Mapper:                     scalar,
	}
	if rackDir != "" {
		if err := r.AddGoComments("github.com/racklet/racklet-boot/rack/schema", rackDir); err != nil {
			return nil, fmt.Errorf("read rack's doc comments: %w", err)
		}
	}
	s := r.Reflect(&rack.Config{})
	s.ID = ID
	s.Title = "Racklet rack config (" + rack.APIVersion + " " + rack.Kind + ")"
	if err := refine(s); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	// Descriptions are read by people: "<base64>", not "\u003cbase64\u003e".
	b = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(b)))
	return append(b, '\n'), nil
}

// scalar gives the types rack decodes from strings the shape of that string.
func scalar(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[netip.Addr]():
		return &jsonschema.Schema{Type: "string", Format: "ipv4"}
	case reflect.TypeFor[netip.Prefix]():
		return &jsonschema.Schema{Type: "string", Pattern: `^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$`, Examples: []any{"10.0.0.0/24"}}
	case reflect.TypeFor[net.HardwareAddr]():
		return &jsonschema.Schema{Type: "string", Pattern: `^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$`, Examples: []any{"dc:a6:32:00:00:01"}}
	case reflect.TypeFor[time.Duration]():
		return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, Examples: []any{"1h", "30m"}}
	case reflect.TypeFor[rack.DHCPMode]():
		return enum(rack.DHCPProxy, rack.DHCPFull, rack.DHCPOff)
	case reflect.TypeFor[rack.UnknownPolicy]():
		return enum(rack.UnknownIgnore, rack.UnknownDefault, rack.UnknownDiscover)
	case reflect.TypeFor[rack.NodeKind]():
		return enum(rack.KindRPi4, rack.KindRPi5, rack.KindUEFIARM64, rack.KindUEFIX8664, rack.KindBIOS)
	case reflect.TypeFor[rack.EnrolmentMode]():
		return enum(rack.EnrolPreprovisioned, rack.EnrolApprove, rack.EnrolTOFU)
	case reflect.TypeFor[rack.FailurePolicy]():
		return enum(rack.OnFailureHalt, rack.OnFailureRollback)
	case reflect.TypeFor[rack.Power]():
		return enum(rack.PowerOn, rack.PowerOff)
	case reflect.TypeFor[rack.Quantity]():
		return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
			{Type: "integer", Minimum: "1"},
			{Type: "string", Pattern: `^[0-9]+%$`},
		}, Examples: []any{1, "25%"}}
	}
	return nil
}

func enum[T ~string](vs ...T) *jsonschema.Schema {
	s := &jsonschema.Schema{Type: "string"}
	for _, v := range vs {
		s.Enum = append(s.Enum, string(v))
	}
	return s
}

// refine adds what the Go types do not say: required fields, constants,
// formats of plain strings and the conditional rules of the DHCP modes.
func refine(root *jsonschema.Schema) error {
	def := func(name string) (*jsonschema.Schema, error) {
		d, ok := root.Definitions[name]
		if !ok {
			return nil, fmt.Errorf("schema: no definition %s: did rack's types change?", name)
		}
		return d, nil
	}
	prop := func(s *jsonschema.Schema, name string) (*jsonschema.Schema, error) {
		p, ok := s.Properties.Get(name)
		if !ok {
			return nil, fmt.Errorf("schema: no property %s: did rack's types change?", name)
		}
		return p, nil
	}
	type fix struct {
		def, prop string
		apply     func(*jsonschema.Schema)
	}
	str := func(pattern string, examples ...any) func(*jsonschema.Schema) {
		return func(p *jsonschema.Schema) { p.Pattern, p.Examples = pattern, examples }
	}
	fixes := []fix{
		{"Config", "apiVersion", func(p *jsonschema.Schema) { p.Const = rack.APIVersion }},
		{"Config", "kind", func(p *jsonschema.Schema) { p.Const = rack.Kind }},
		{"Server", "httpPort", port(rack.DefaultHTTPPort)},
		{"Server", "tftpPort", port(rack.DefaultTFTPPort)},
		{"Server", "interface", func(p *jsonschema.Schema) { p.MaxLength = ptr(uint64(15)) }},
		{"Server", "dataDir", func(p *jsonschema.Schema) { p.Default = rack.DefaultDataDir }},
		{"DHCP", "leaseTime", func(p *jsonschema.Schema) { p.Default = "1h" }},
		{"DHCP", "piMenu", func(p *jsonschema.Schema) { p.Default, p.MaxLength = rack.DefaultPiMenu, ptr(uint64(32)) }},
		{"Node", "name", str(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`, "pi-01")},
		{"Node", "serial", func(p *jsonschema.Schema) {
			// 8 hex digits; all-digit serials are YAML integers unless quoted.
			p.Type, p.OneOf = "", []*jsonschema.Schema{{Type: "string", Pattern: `^[0-9A-Fa-f]{8}$`}, {Type: "integer", Minimum: "0", Maximum: "99999999"}}
			p.Examples = []any{"5b154510"}
		}},
		{"Node", "hatKey", str(`^ed25519:[A-Za-z0-9+/]+=*$`)},
		{"Boot", "rootHash", str(`^[0-9a-f]{64}$`)},
	}
	for _, f := range fixes {
		d, err := def(f.def)
		if err != nil {
			return err
		}
		p, err := prop(d, f.prop)
		if err != nil {
			return err
		}
		f.apply(p)
	}
	for name, req := range map[string][]string{
		"Config":    {"apiVersion", "kind", "server", "dhcp"},
		"Server":    {"address"},
		"DHCP":      {"mode"},
		"Node":      {"name", "kind"},
		"TrustRule": {"repositories", "keys"},
	} {
		d, err := def(name)
		if err != nil {
			return err
		}
		d.Required = req
	}
	// A single initrd name is a list of one.
	b, err := def("Boot")
	if err != nil {
		return err
	}
	initrd, err := prop(b, "initrd")
	if err != nil {
		return err
	}
	b.Properties.Set("initrd", &jsonschema.Schema{Description: initrd.Description, OneOf: []*jsonschema.Schema{{Type: "string"}, {Type: "array", Items: &jsonschema.Schema{Type: "string"}}}})
	// Boot sources: exactly one of dir, fat, image.
	b.OneOf = []*jsonschema.Schema{{Required: []string{"dir"}}, {Required: []string{"fat"}}, {Required: []string{"image"}}}
	// Full mode needs a pool; proxy and off must not have one.
	dh, err := def("DHCP")
	if err != nil {
		return err
	}
	full := &jsonschema.Schema{Properties: jsonschema.NewProperties()}
	full.Properties.Set("mode", &jsonschema.Schema{Const: string(rack.DHCPFull)})
	dh.If, dh.Then = full, &jsonschema.Schema{Required: []string{"pool"}}
	dh.Else = &jsonschema.Schema{Not: &jsonschema.Schema{Required: []string{"pool"}}}
	pool, err := def("Pool")
	if err != nil {
		return err
	}
	pool.Required = []string{"start", "end"}
	return nil
}

func port(def int) func(*jsonschema.Schema) {
	return func(p *jsonschema.Schema) {
		p.Minimum, p.Maximum, p.Default = json.Number("1"), json.Number("65535"), def
	}
}

func ptr[T any](v T) *T { return &v }
