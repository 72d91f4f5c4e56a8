package ociref

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	tests := map[string]struct {
		in   string
		want Ref
		repo string
		str  string // canonical spelling; "" means in
	}{
		"registry tag":        {in: "registry.lan:5000/racklet/os:v1", want: Ref{Kind: Registry, Name: "registry.lan:5000/racklet/os:v1"}, repo: "registry.lan:5000/racklet/os"},
		"registry digest":     {in: "registry.lan/os@" + dgst, want: Ref{Kind: Registry, Name: "registry.lan/os@" + dgst}, repo: "registry.lan/os"},
		"docker hub":          {in: "debian:bookworm", want: Ref{Kind: Registry, Name: "debian:bookworm"}, repo: "index.docker.io/library/debian"},
		"docker transport":    {in: "docker://127.0.0.1:5000/os:v2", want: Ref{Kind: Registry, Name: "127.0.0.1:5000/os:v2"}, repo: "127.0.0.1:5000/os", str: "127.0.0.1:5000/os:v2"},
		"layout":              {in: "oci-layout:/srv/images", want: Ref{Kind: Layout, Path: "/srv/images"}, repo: "oci-layout:/srv/images"},
		"layout tag":          {in: "oci-layout:/srv/images:v1", want: Ref{Kind: Layout, Path: "/srv/images", Tag: "v1"}, repo: "oci-layout:/srv/images"},
		"layout digest":       {in: "oci-layout:/srv/images@" + dgst, want: Ref{Kind: Layout, Path: "/srv/images", Digest: dgst}, repo: "oci-layout:/srv/images"},
		"layout colon in dir": {in: "oci-layout:/srv/a:b/images", want: Ref{Kind: Layout, Path: "/srv/a:b/images"}, repo: "oci-layout:/srv/a:b/images"},
		"layout relative":     {in: "oci-layout:out:test", want: Ref{Kind: Layout, Path: "out", Tag: "test"}, repo: "oci-layout:out"},
		"oci transport":       {in: "oci:/srv/images:v1", want: Ref{Kind: Layout, Path: "/srv/images", Tag: "v1"}, repo: "oci-layout:/srv/images", str: "oci-layout:/srv/images:v1"},
		"archive":             {in: "docker-archive:/tmp/base.tar", want: Ref{Kind: Archive, Path: "/tmp/base.tar"}, repo: "docker-archive:/tmp/base.tar"},
		"archive name":        {in: "docker-archive:/tmp/base.tar:busybox:latest", want: Ref{Kind: Archive, Path: "/tmp/base.tar", Tag: "busybox:latest"}, repo: "docker-archive:/tmp/base.tar"},
		"archive port":        {in: "docker-archive:base.tar:host:5000/os:v1", want: Ref{Kind: Archive, Path: "base.tar", Tag: "host:5000/os:v1"}, repo: "docker-archive:base.tar"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
			}
			if r := got.Repository(); r != tc.repo {
				t.Errorf("Repository() = %q, want %q", r, tc.repo)
			}
			str := tc.str
			if str == "" {
				str = tc.in
			}
			if s := got.String(); s != str {
				t.Errorf("String() = %q, want %q", s, str)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":            "",
		"layout no dir":    "oci-layout:",
		"archive no file":  "docker-archive:",
		"layout empty tag": "oci-layout:/srv/images:",
		"bad registry":     "UPPER/Case:tag",
		"spaces":           "registry.lan/os :v1",
		"too long":         strings.Repeat("a", maxRefLen+1),
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := Parse(in); !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) = %+v, %v; want ErrInvalid", in, r, err)
			}
		})
	}
}

func TestPreferExisting(t *testing.T) {
	exists := func(p string) bool { return p == "/srv/odd:dir" || p == "/srv/base.tar" }
	for _, tc := range []struct{ in, path, tag string }{
		{"oci-layout:/srv/odd:dir", "/srv/odd:dir", ""},
		{"oci-layout:/srv/other:v1", "/srv/other", "v1"},
		{"docker-archive:/srv/base.tar:busybox:latest", "/srv/base.tar", "busybox:latest"},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		r = r.PreferExisting(exists)
		if r.Path != tc.path || r.Tag != tc.tag {
			t.Errorf("%s: path %q tag %q, want %q %q", tc.in, r.Path, r.Tag, tc.path, tc.tag)
		}
	}
}

func TestOptionsReference(t *testing.T) {
	o := Options{InsecureHosts: []string{"Registry.LAN:5000"}}
	r, err := o.Reference("docker://registry.lan:5000/os:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Context().Scheme(); got != "http" {
		t.Errorf("insecure host scheme %q, want http", got)
	}
	r, err = o.Reference("other.lan/os:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Context().Scheme(); got != "https" {
		t.Errorf("other host scheme %q, want https", got)
	}
	if _, err := o.Reference("oci-layout:/srv/images:v1"); !errors.Is(err, ErrInvalid) {
		t.Errorf("a layout as a registry reference: %v, want ErrInvalid", err)
	}
	if _, err := o.Tag("other.lan/os@" + dgst); !errors.Is(err, ErrInvalid) {
		t.Errorf("a digest as a tag: %v, want ErrInvalid", err)
	}
	if n := len(o.Remote(t.Context())); n != 2 {
		t.Errorf("Remote() has %d options, want context and keychain", n)
	}
}
