package artifact

import "testing"

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.racklet.image.manifest.v1+json"},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.racklet.image.manifest.v1+json"},` +
		`"layers":[{"mediaType":"application/vnd.racklet.image.boot.v1.vfat","annotations":{"org.opencontainers.image.title":"../boot.vfat"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		man, err := parseManifest(b)
		if err != nil {
			return
		}
		for _, l := range man.Layers {
			if _, ok := mediaTypes[l.Annotations[titleAnnotation]]; !ok {
				t.Fatalf("accepted layer titled %q", l.Annotations[titleAnnotation])
			}
		}
	})
}
