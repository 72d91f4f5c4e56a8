package rack

import (
	"strings"
	"testing"
)

// TestFileEncodings checks files as editors on other systems save them.
func TestFileEncodings(t *testing.T) {
	file := bootDir(t)
	plain := nodeConfig("pi-01")
	for _, tc := range []struct {
		name string
		data string
	}{
		{"CRLF line endings", strings.ReplaceAll(plain, "\n", "\r\n")},
		{"UTF-8 byte order mark", "\ufeff" + plain},
		{"no final newline", strings.TrimSuffix(plain, "\n")},
		{"comments everywhere", strings.ReplaceAll(plain, "\n", " # note\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.data), file)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n, ok := cfg.NodeBySerial("5b154510"); !ok || n.Name != "pi-01" || n.Line != 8 {
				t.Errorf("node = %+v, %v; want pi-01 on line 8", n, ok)
			}
		})
	}
}
