package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// runIn runs racklet-image with stdin and returns stdout+stderr.
func runIn(stdin string, args ...string) (string, error) {
	root := newRoot()
	var out bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestFlashAsks flashes a real loop device: the prompt shows the device's
// model and size; "n" or no answer writes nothing; "y" and --yes write.
func TestFlashAsks(t *testing.T) {
	dev := testutil.LoopDevice(t, 8<<20)
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, bytes.Repeat([]byte("flashed!"), 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	written := func() bool {
		b := make([]byte, 8)
		f, err := os.Open(dev)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.ReadAt(b, 0)
		return string(b) == "flashed!"
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		ok    bool
	}{
		{stdin: "n\n"},
		{stdin: ""},
		{stdin: "y\n", ok: true},
		{args: []string{"--yes"}, ok: true},
	} {
		out, err := runIn(tc.stdin, append([]string{"flash", img, dev}, tc.args...)...)
		if tc.args == nil && (!strings.Contains(out, "loop device backed by") || !strings.Contains(out, "8.0 MiB")) {
			t.Errorf("stdin %q: the prompt does not show model and size:\n%s", tc.stdin, out)
		}
		if (err == nil) != tc.ok || written() != tc.ok {
			t.Errorf("stdin %q %v: err %v, written %v; want written %v\n%s", tc.stdin, tc.args, err, written(), tc.ok, out)
		}
		if tc.ok {
			f, _ := os.OpenFile(dev, os.O_WRONLY, 0)
			f.Write(make([]byte, 8192))
			f.Close()
		} else if err != nil {
			t.Logf("stdin %q: %v", tc.stdin, err)
		}
	}
}
