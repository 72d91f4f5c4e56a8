package kubebin

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

func TestLdflags(t *testing.T) {
	got := ldflags("v1.37.2")
	want := "-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
	if got != want {
		t.Errorf("ldflags:\n got %s\nwant %s", got, want)
	}
}

func TestCheckRefuses(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "kubelet")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho Kubernetes v1.37.2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable() // a Go ELF binary, but not a kubernetes command
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, arch string
		wrong            bool // ErrWrongBinary rather than an I/O error
	}{
		{"missing file", filepath.Join(dir, "none"), runtime.GOARCH, false},
		{"a script", text, runtime.GOARCH, false},
		{"another go program", self, runtime.GOARCH, true},
		{"another architecture", self, otherArch(), true},
		{"unknown architecture", self, "vax", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.path, Kubelet, "v1.37.2", tc.arch)
			if err == nil {
				t.Fatal("Check accepted it")
			}
			if got := errors.Is(err, ErrWrongBinary); got != tc.wrong {
				t.Errorf("errors.Is(ErrWrongBinary) = %v, want %v: %v", got, tc.wrong, err)
			}
		})
	}
}

func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func TestBuildRefusesOtherVersions(t *testing.T) {
	testutil.NeedTool(t, "go")
	_, err := Build(context.Background(), Options{Version: "v1.30.0", CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "pins v1.37.2") {
		t.Fatalf("Build of another version: %v, want a refusal naming the pinned version", err)
	}
	_, err = Build(context.Background(), Options{Commands: []string{"kube-proxy"}, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("Build of an unknown command: %v", err)
	}
}

// TestBuildHost builds every command for the host in one go build (cached
// by key under RACKLET_CACHE: cold it takes many minutes on 2 cores), then
// runs them: each must report the pinned version.
func TestBuildHost(t *testing.T) {
	testutil.NeedTool(t, "go")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	r := build(ctx, t, Options{Commands: All})
	for _, c := range All {
		v, err := Version(ctx, r.Path(c), c, r.Arch)
		if err != nil || v != r.Version {
			t.Errorf("%s reports version %q (%v), want %s", c, v, err, r.Version)
		}
	}
	out, _ := exec.CommandContext(ctx, r.Path(Kubelet), "--version").Output()
	if got := strings.TrimSpace(string(out)); got != "Kubernetes "+r.Version {
		t.Errorf("kubelet --version = %q, want %q", got, "Kubernetes "+r.Version)
	}
}

// build runs Build twice: the first may compile (cold or warm Go cache), the
// second must come from the racklet cache without running go build.
func build(ctx context.Context, t *testing.T, o Options) Result {
	t.Helper()
	start := time.Now()
	r, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubernetes %s %s %v: %s (built %v, go build %s)", r.Version, r.Arch, o.Commands, time.Since(start).Round(time.Second), r.Built, r.Took.Round(time.Second))
	start = time.Now()
	again, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Built) != 0 || again.Dir != r.Dir {
		t.Errorf("second build: built %v in %s, want everything from the cache in %s", again.Built, again.Dir, r.Dir)
	}
	t.Logf("from the cache: %s", time.Since(start).Round(time.Millisecond))
	return r
}
