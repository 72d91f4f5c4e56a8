package ociref

import "testing"

// FuzzParse: Parse never panics, and what it accepts survives a round trip
// through its canonical spelling.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"registry.lan:5000/racklet/os:v1", "debian:bookworm", "docker://127.0.0.1:5000/os:v2",
		"oci-layout:/srv/images:v1", "oci:/srv/images", "oci-layout:/srv/images@" + dgst,
		"docker-archive:/tmp/base.tar:busybox:latest", "oci-layout::", "docker-archive::a:b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		_ = r.Repository()
		again, err := Parse(r.String())
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, whose String %q does not parse: %v", s, r, r.String(), err)
		}
		if again != r {
			t.Fatalf("Parse(%q) = %+v, but Parse(%q) = %+v", s, r, r.String(), again)
		}
	})
}
