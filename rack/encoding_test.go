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
			if len(cfg.Nodes) != 1 || cfg.Nodes[0].Name != "pi-01" || cfg.Nodes[0].Serial != "5b154510" || cfg.Nodes[0].Line != 8 {
				t.Errorf("nodes = %+v; want pi-01 (5b154510) on line 8", cfg.Nodes)
			}
		})
	}
}
