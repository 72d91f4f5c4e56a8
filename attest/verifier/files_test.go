package verifier_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
)

func TestMeasuredFiles(t *testing.T) {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "kernel8.img"), filepath.Join(dir, "initramfs8")
	os.WriteFile(k, []byte("kernel one"), 0o644)
	os.WriteFile(i, []byte("initramfs"), 0o644)
	root := strings.Repeat("aa", 32)
	mf := &verifier.MeasuredFiles{Lookup: func(ctx context.Context, node string) (verifier.BootFiles, error) {
		if node != "pi-01" {
			return verifier.BootFiles{}, verifier.ErrUnknownNode
		}
		return verifier.BootFiles{Kernel: k, Initramfs: i, Cmdline: "console=serial0\n", RootHash: root, Image: dir}, nil
	}}
	ctx := t.Context()
	m1, err := mf.Expected(ctx, "pi-01")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := attest.MeasureFiles(k, i, "console=serial0", root)
	want.Image = dir
	if m1 != want {
		t.Errorf("measured %+v, want %+v", m1, want)
	}
	// An edited kernel is measured again.
	os.WriteFile(k, []byte("kernel two!"), 0o644)
	os.Chtimes(k, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	m2, err := mf.Expected(ctx, "pi-01")
	if err != nil || m2.Kernel == m1.Kernel {
		t.Errorf("after editing the kernel: %+v, %v; want a new kernel digest", m2, err)
	}
	if _, err := mf.Expected(ctx, "pi-02"); !errors.Is(err, verifier.ErrUnknownNode) {
		t.Errorf("unknown node: err = %v", err)
	}
	os.Remove(i)
	if _, err := mf.Expected(ctx, "pi-01"); err == nil {
		t.Error("missing initramfs measured without error")
	}
}

func BenchmarkMeasuredFilesCached(b *testing.B) {
	dir := b.TempDir()
	k := filepath.Join(dir, "kernel8.img")
	os.WriteFile(k, make([]byte, 24<<20), 0o644)
	mf := &verifier.MeasuredFiles{Lookup: func(ctx context.Context, node string) (verifier.BootFiles, error) {
		return verifier.BootFiles{Kernel: k, Initramfs: k, Cmdline: "x", RootHash: strings.Repeat("aa", 32)}, nil
	}}
	for b.Loop() {
		if _, err := mf.Expected(b.Context(), "pi-01"); err != nil {
			b.Fatal(err)
		}
	}
}
