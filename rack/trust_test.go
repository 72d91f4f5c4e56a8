package rack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/sign"
)

// testPEM returns the PEM public key of a fresh ECDSA key.
func testPEM(t *testing.T) string {
	t.Helper()
	priv, err := sign.GenerateKey(sign.KeyType("ecdsa-p256"))
	if err != nil {
		t.Fatal(err)
	}
	pem, err := sign.MarshalPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem)
}

// indentPEM renders pem as a YAML block scalar under "pem: |" at indent.
func indentPEM(pem, indent string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(pem), "\n") {
		out = append(out, indent+l)
	}
	return out
}

func TestTrustValid(t *testing.T) {
	file := bootDir(t)
	pem := testPEM(t)
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "cosign.pub"), []byte(pem), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(filepath.Dir(file), "layout"), 0o755); err != nil {
		t.Fatal(err)
	}
	lines := cat([]string{
		"  mode: full",
		"  pool: {start: 10.0.0.100, end: 10.0.0.200}",
		"trust:",
		"  - repositories: [\"reg:5000/racklet/lab-*\"]",
		"    keys: [{file: cosign.pub}]",
		"  - repositories: [\"reg:5000/racklet/*\", \"oci-layout:" + filepath.Dir(file) + "/*\"]",
		"    keys:",
		"      - pem: |",
	}, indentPEM(pem, "          "), []string{
		"      - file: cosign.pub",
		"images: {insecure: [\"reg:5000\"], layout: layout}",
		"nodes:",
		"  - {name: a, kind: rpi4, serial: 00000001, boot: {image: \"reg:5000/racklet/os:v2\"}}",
		"  - {name: b, kind: rpi4, serial: 00000002, boot: {image: \"oci-layout:imgs:v1\"}}",
	})
	cfg, err := Parse([]byte(withHeader(lines...)), file)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Dir(file)
	got := []string{}
	for _, r := range cfg.Trust {
		got = append(got, fmt.Sprintf("%v keys=%d verifiers=%d", r.Repositories, len(r.Keys), keysRead(r)))
	}
	got = append(got, cfg.Trust[0].Keys[0].File, cfg.Images.Layout, fmt.Sprint(cfg.IsInsecure("reg:5000"), cfg.IsInsecure("other")), cfg.Nodes[1].Boot.Image)
	for _, ref := range []string{"reg:5000/racklet/lab-os:x", "reg:5000/racklet/os@sha256:" + strings.Repeat("a", 64), cfg.Nodes[1].Boot.Image, "reg:5000/other/os:v1"} {
		rule, repo, pat, ok := cfg.TrustFor(ref)
		line := 0
		if rule != nil {
			line = rule.Line
		}
		got = append(got, fmt.Sprintf("%s -> %s %q %v line %d", ref, repo, pat, ok, line))
	}
	want := []string{
		"[reg:5000/racklet/lab-*] keys=1 verifiers=1",
		"[reg:5000/racklet/* oci-layout:" + base + "/*] keys=2 verifiers=2",
		filepath.Join(base, "cosign.pub"),
		filepath.Join(base, "layout"),
		"true false",
		"oci-layout:" + filepath.Join(base, "imgs") + ":v1",
		"reg:5000/racklet/lab-os:x -> reg:5000/racklet/lab-os \"reg:5000/racklet/lab-*\" true line 9",
		"reg:5000/racklet/os@sha256:" + strings.Repeat("a", 64) + " -> reg:5000/racklet/os \"reg:5000/racklet/*\" true line 11",
		"oci-layout:" + filepath.Join(base, "imgs") + ":v1 -> oci-layout:" + filepath.Join(base, "imgs") + " \"oci-layout:" + base + "/*\" true line 11",
		"reg:5000/other/os:v1 -> reg:5000/other/os \"\" false line 0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trust (-want +got):\n%s", diff)
	}
}

func TestTrustRules(t *testing.T) {
	file := bootDir(t)
	node := "  - {name: a, kind: rpi4, serial: 00000001, boot: {image: \"reg:5000/racklet/os:v2\"}}"
	for _, tc := range []struct {
		name  string
		lines []string
		want  []want
	}{
		{"no rule covers the image", []string{"nodes:", node}, []want{{8, "nodes[0].boot.image", "no trust rule covers repository reg:5000/racklet/os"}}},
		{"rule for another repository", []string{"trust: [{repositories: [\"reg:5000/x/*\"], keys: [{pem: x}]}]", "nodes:", node},
			[]want{{7, "trust[0].keys[0].pem", "not a usable public key"}, {9, "nodes[0].boot.image", "no trust rule covers"}}},
		{"missing key file", []string{"trust: [{repositories: [\"reg:5000/*/*\"], keys: [{file: nope.pub}]}]", "nodes:", node},
			[]want{{7, "trust[0].keys[0].file", "cannot read public key nope.pub"}}},
		{"key file is a directory", []string{"trust: [{repositories: [\"reg:5000/*/*\"], keys: [{file: boot}]}]", "nodes:", node},
			[]want{{7, "trust[0].keys[0].file", "not a regular file"}}},
		{"empty rule", []string{"trust: [{}]", "nodes:", "  - {name: a, kind: rpi4, serial: 00000001, boot: {dir: boot}}"},
			[]want{{7, "trust[0].repositories", "required"}, {7, "trust[0].keys", "required"}}},
		{"bad pattern and both key forms", []string{"trust: [{repositories: [\"[\"], keys: [{file: a, pem: b}, {}]}]", "nodes:", "  - {name: a, kind: rpi4, serial: 00000001, boot: {dir: boot}}"},
			[]want{{7, "trust[0].repositories[0]", "not a glob"}, {7, "trust[0].keys[0]", "only one of"}, {7, "trust[0].keys[1]", "needs file"}}},
		{"bad image reference", []string{"trust: [{repositories: [\"*\"], keys: [{pem: x}]}]", "nodes:", "  - {name: a, kind: rpi4, serial: 00000001, boot: {image: \"UPPER/Case::\"}}"},
			[]want{{7, "trust[0].keys[0].pem", "not a usable"}, {9, "nodes[0].boot.image", "not an image reference"}}},
		{"images section", []string{"images: {insecure: [\"a/b\"], layout: nowhere, extra: 1}", "nodes:", "  - {name: a, kind: rpi4, serial: 00000001, boot: {dir: boot}}"},
			[]want{{7, "images.insecure[0]", "not a registry host"}, {7, "images.layout", "does not exist"}, {7, "images.extra", "unknown field"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, withHeader(append([]string{"  mode: off"}, tc.lines...)...), file, tc.want)
		})
	}
}

// keysRead counts the keys of r whose PEM validation read.
func keysRead(r TrustRule) int {
	n := 0
	for _, k := range r.Keys {
		if len(k.Data) > 0 {
			n++
		}
	}
	return n
}
