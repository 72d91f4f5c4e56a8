package image

import (
	"errors"
	"strings"
	"testing"
)

func TestParseManifestRejects(t *testing.T) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	ok := `{"apiVersion":"racklet.io/image/v1alpha1","boot":{"file":"boot.vfat","size":1,"digest":"` + digest + `"},` +
		`"root":{"file":"root.squashfs","size":1,"digest":"` + digest + `"},"verity":{"file":"root.verity","size":1,"digest":"` + digest + `"}}`
	withBoot := strings.Replace(ok, `"boot":{`, `"boot":{"kernel":{"file":"vmlinuz","size":1,"digest":"`+digest+`"},"initramfs":{"file":"initramfs","size":1,"digest":"`+digest+`"},`, 1)
	for _, in := range []string{ok, withBoot} {
		if _, err := ParseManifest([]byte(in)); err != nil {
			t.Fatalf("valid manifest refused: %v\n%s", err, in)
		}
	}
	for name, in := range map[string]string{
		"not json":         "{",
		"other apiVersion": `{"apiVersion":"v0"}`,
		"path in name":     `{"apiVersion":"racklet.io/image/v1alpha1","boot":{"file":"../boot.vfat","size":1,"digest":"` + digest + `"}}`,
		"bad digest":       `{"apiVersion":"racklet.io/image/v1alpha1","boot":{"file":"boot.vfat","size":1,"digest":"md5:00"}}`,
		"negative size":    `{"apiVersion":"racklet.io/image/v1alpha1","boot":{"file":"boot.vfat","size":-1,"digest":"` + digest + `"}}`,
		"kernel path":      strings.Replace(ok, `"boot":{`, `"boot":{"kernel":{"file":"../vmlinuz","size":1,"digest":"`+digest+`"},`, 1),
		"initramfs digest": strings.Replace(ok, `"boot":{`, `"boot":{"initramfs":{"file":"initramfs8","size":1,"digest":"sha256:00"},`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseManifest([]byte(in)); !errors.Is(err, ErrManifest) {
				t.Errorf("error %v, want ErrManifest", err)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"racklet.io/image/v1alpha1"}`))
	f.Add([]byte(`{"apiVersion":"racklet.io/image/v1alpha1","boot":{"file":"..","size":1,"digest":"sha256:"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		for _, bl := range m.Blobs() {
			if bl.File == "" || bl.File == ".." || bl.Size < 0 {
				t.Fatalf("accepted blob %+v", bl)
			}
		}
	})
}
