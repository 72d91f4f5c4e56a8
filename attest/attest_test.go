package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/hatlink"
)

func hexSum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestDigests(t *testing.T) {
	good := Measurements{Kernel: hexSum("k"), Initramfs: hexSum("i"), Cmdline: " console=ttyAMA0\n", RootHash: hexSum("r")}
	for name, tc := range map[string]struct {
		m       Measurements
		wantErr string
	}{
		"good":              {m: good},
		"short root hash":   {m: Measurements{Kernel: good.Kernel, Initramfs: good.Initramfs, RootHash: "abcd"}},
		"kernel not hex":    {m: Measurements{Kernel: "zz", Initramfs: good.Initramfs, RootHash: good.RootHash}, wantErr: "kernel digest"},
		"no initramfs":      {m: Measurements{Kernel: good.Kernel, RootHash: good.RootHash}, wantErr: "initramfs digest"},
		"root hash not hex": {m: Measurements{Kernel: good.Kernel, Initramfs: good.Initramfs, RootHash: "xyz"}, wantErr: "root hash"},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := tc.m.Digests()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Digests() = %v, want an error about %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d[hatlink.RegCmdline] != sha256.Sum256([]byte(NormalizeCmdline(tc.m.Cmdline))) {
				t.Error("command line digest is not the sha256 of the normalised line")
			}
			regs, err := tc.m.Registers()
			if err != nil || regs.Mask != hatlink.BootMask || regs.Values[0] != hatlink.ExtendValue([32]byte{}, d[0]) {
				t.Errorf("Registers() = %+v, %v", regs, err)
			}
		})
	}
}

func TestMeasureFiles(t *testing.T) {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "kernel"), filepath.Join(dir, "initrd")
	os.WriteFile(k, []byte("kernel bytes"), 0o644)
	os.WriteFile(i, []byte("initrd bytes"), 0o644)
	m, err := MeasureFiles(k, i, "root=/dev/dm-0\n", strings.ToUpper(hexSum("root")))
	if err != nil {
		t.Fatal(err)
	}
	want := Measurements{Kernel: hexSum("kernel bytes"), Initramfs: hexSum("initrd bytes"), Cmdline: "root=/dev/dm-0", RootHash: hexSum("root")}
	if m != want {
		t.Errorf("MeasureFiles = %+v, want %+v", m, want)
	}
	if _, err := MeasureFiles(filepath.Join(dir, "none"), i, "", hexSum("root")); err == nil {
		t.Error("a missing kernel measured")
	}
}

func TestClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathPrefix + "challenge":
			w.Write([]byte(`{"nonce":"` + strings.Repeat("A", 43) + `=","expires":"2026-01-01T00:00:00Z"}`))
		case PathPrefix + "quote":
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":"node pi-01 booted something else","code":"measurement"}`))
		default:
			http.Error(w, "no such route", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	c := &Client{Server: srv.URL + "/"}
	ch, err := c.Challenge(context.Background(), "pi-01")
	if err != nil || len(ch.Nonce) != 32 {
		t.Fatalf("Challenge = %+v, %v", ch, err)
	}
	_, err = c.Quote(context.Background(), QuoteSubmission{Node: "pi-01"})
	var ref *Refused
	if !errors.As(err, &ref) || ref.Code != "measurement" || !strings.Contains(ref.Error(), "booted something else") {
		t.Errorf("Quote refused: %v, want a *Refused with the reason", err)
	}
	bad := &Client{Server: srv.URL + "/nowhere"}
	if _, err := bad.Challenge(context.Background(), "pi-01"); err == nil || errors.As(err, &ref) {
		t.Errorf("Challenge against a wrong URL: %v, want a plain error", err)
	}
}
