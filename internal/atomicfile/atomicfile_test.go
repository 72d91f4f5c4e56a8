package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.json")
	for _, want := range []string{"one", "two"} {
		if err := Write(path, []byte(want), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	fi, _ := os.Stat(path)
	left, _ := filepath.Glob(path + ".tmp-*")
	if fi.Mode().Perm() != 0o600 || len(left) != 0 {
		t.Errorf("mode %v, temporary files left %v", fi.Mode().Perm(), left)
	}
}
