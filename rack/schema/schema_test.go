package schema

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/racklet/racklet-boot/rack"
)

// TestSchemaIsCurrent: the checked-in schema is what the Go types generate.
func TestSchemaIsCurrent(t *testing.T) {
	want, err := Generate("..")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(File)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what rack's types generate: run go generate ./rack/schema and commit the result", File)
	}
}

// compile compiles the checked-in schema with an independent validator.
func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(File)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(ID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asJSON decodes YAML into the values a JSON Schema validator reads.
func asJSON(t *testing.T, text []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(text, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestExamplesValidate: every example config rack.Parse accepts, the
// schema accepts too.
func TestExamplesValidate(t *testing.T) {
	s := compile(t)
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs")
	}
	checked := 0
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rack.Parse(text, f); err != nil {
			continue // not a rack config that parses here (e.g. needs other files)
		}
		if err := s.Validate(asJSON(t, text)); err != nil {
			t.Errorf("%s: rack.Parse accepts it, the schema does not: %v", f, err)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no example config parsed: nothing was checked against the schema")
	}
}

// TestSchemaRefuses: mistakes rack.Parse reports by shape, the schema
// reports too, so an editor shows them as they are typed.
func TestSchemaRefuses(t *testing.T) {
	s := compile(t)
	const ok = "apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver: {address: 10.0.0.2}\n"
	if err := s.Validate(asJSON(t, []byte(ok+"dhcp: {mode: proxy}\nnodes:\n  - {name: pi-01, kind: rpi4, serial: 5b154510, boot: {dir: /srv/boot}}\n"))); err != nil {
		t.Fatalf("a valid config refused: %v", err)
	}
	for name, text := range map[string]string{
		"unknown field":           ok + "dhcp: {mode: proxy, poolSize: 3}\n",
		"wrong kind":              strings.Replace(ok, "kind: Rack", "kind: Pod", 1) + "dhcp: {mode: proxy}\n",
		"unknown mode":            ok + "dhcp: {mode: relay}\n",
		"full mode without pool":  ok + "dhcp: {mode: full}\n",
		"proxy mode with pool":    ok + "dhcp: {mode: proxy, pool: {start: 10.0.0.100, end: 10.0.0.200}}\n",
		"not an address":          "apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver: {address: rack.lan}\ndhcp: {mode: proxy}\n",
		"missing dhcp":            ok,
		"node kind":               ok + "dhcp: {mode: proxy}\nnodes:\n  - {name: pi-01, kind: rpi3, serial: 5b154510, boot: {dir: /b}}\n",
		"serial":                  ok + "dhcp: {mode: proxy}\nnodes:\n  - {name: pi-01, kind: rpi4, serial: 5b15451, boot: {dir: /b}}\n",
		"two boot sources":        ok + "dhcp: {mode: proxy}\nnodes:\n  - {name: pi-01, kind: rpi4, serial: 5b154510, boot: {dir: /b, fat: /f}}\n",
		"port out of range":       "apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver: {address: 10.0.0.2, httpPort: 70000}\ndhcp: {mode: proxy}\n",
		"lease time without unit": ok + "dhcp: {mode: proxy, leaseTime: 3600}\n",
	} {
		if err := s.Validate(asJSON(t, []byte(text))); err == nil {
			t.Errorf("%s: the schema accepts\n%s", name, text)
		}
		if _, err := rack.Parse([]byte(text), "rack.yaml"); err == nil {
			t.Errorf("%s: rack.Parse accepts\n%s", name, text)
		}
	}
}
