package agent

import (
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeDT writes a device-tree directory as /sys/firmware/devicetree/base
// shows it: one file per property, strings NUL-terminated.
func writeDT(t *testing.T, props map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range props {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPiOption97(t *testing.T) {
	mac, _ := net.ParseMAC("dc:a6:32:2e:f8:ed")
	pi4 := map[string]string{
		"compatible":            "raspberrypi,4-model-b\x00brcm,bcm2711\x00",
		"serial-number":         "100000005b154510\x00",
		"system/linux,revision": "\x00\xa0\x31\x11",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range pi4 {
			m[a] = b
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := map[string]struct {
		dt      map[string]string
		want    string // hex; "" = not a Pi
		wantErr string
	}{
		// DESIGN.md's real Pi 4: board 0x00a03111, serial 5b154510.
		"pi 4":            {dt: pi4, want: "00525069341131a000322ef8ed1045155b"},
		"pi 5":            {dt: with("compatible", "raspberrypi,5-model-b\x00brcm,bcm2712\x00"), want: "00525069351131a000322ef8ed1045155b"},
		"cm4":             {dt: with("compatible", "raspberrypi,4-compute-module\x00brcm,bcm2711\x00"), want: "00525069341131a000322ef8ed1045155b"},
		"qemu virt":       {dt: with("compatible", "linux,dummy-virt\x00")},
		"no device tree":  {dt: map[string]string{}},
		"no serial":       {dt: with("serial-number", ""), wantErr: "serial number"},
		"short serial":    {dt: with("serial-number", "1234\x00"), wantErr: "shorter than 8"},
		"no revision":     {dt: with("system/linux,revision", ""), wantErr: "board revision"},
		"serial, not hex": {dt: with("serial-number", "10000000zzzzzzzz\x00"), wantErr: "not hex"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opt, ok, err := PiOption97(writeDT(t, tc.dt), mac)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == "" && ok:
				t.Fatalf("option 97 %x on a machine that is no Pi", opt)
			case tc.want != "" && hex.EncodeToString(opt) != tc.want:
				t.Fatalf("option 97 %x, want %s", opt, tc.want)
			}
		})
	}
}
