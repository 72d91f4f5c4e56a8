package rack

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that every failure is a
// *ValidationError listing at least one problem, in line order.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"../examples/rack.yaml", "../examples/rack-full.yaml", "../examples/rack-signed.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(full(cat(pi("pi-01", "5b154510"), pi("pi-01", "5B154510"))...)))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("nodes: [{boot: {dir: ../../..}}]\n"))
	f.Add([]byte("trust: [{repositories: [\"[\"], keys: [{pem: \"-----BEGIN PUBLIC KEY-----\"}, {file: /dev/null}]}]\nnodes: [{boot: {image: \"oci-layout::\"}}]\n"))
	dir := f.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "boot"), 0o755); err != nil {
		f.Fatal(err)
	}
	file := filepath.Join(dir, "rack.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, file)
		if err == nil {
			if cfg == nil {
				t.Fatal("Parse returned neither a config nor an error")
			}
			names := map[string]bool{}
			for _, n := range cfg.Nodes {
				if n.Name == "" || names[n.Name] {
					t.Fatalf("valid config with an empty or repeated node name %q", n.Name)
				}
				names[n.Name] = true
			}
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) == 0 {
			t.Fatalf("Parse error %v is not a non-empty *ValidationError", err)
		}
		for i, fe := range ve.Errors {
			if fe.Msg == "" {
				t.Fatalf("error %d has no message", i)
			}
			if i > 0 && fe.Line < ve.Errors[i-1].Line {
				t.Fatalf("errors out of line order:\n%v", err)
			}
		}
	})
}
