package profile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/kube/kubebin"
)

func TestSpecValidate(t *testing.T) {
	for v, ok := range map[string]bool{"v1.37.2": true, "v1.30.10": true, "1.37.2": false, "v1.37": false, "latest": false, "": false, "v1.37.2-rc.0": false} {
		if err := (Spec{Version: v}).Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v, want ok %v", v, err, ok)
		}
	}
}

func TestCheckBase(t *testing.T) {
	full := fstest.MapFS{}
	for p := range required {
		full[p] = &fstest.MapFile{Mode: 0o755}
	}
	if err := CheckBase(full); err != nil {
		t.Fatalf("a complete base: %v", err)
	}
	partial := fstest.MapFS{}
	for p, pkg := range required {
		if pkg != "containerd" && p != "usr/lib/cni/portmap" {
			partial[p] = full[p]
		}
	}
	err := CheckBase(partial)
	if !errors.Is(err, ErrBase) {
		t.Fatalf("CheckBase = %v, want ErrBase", err)
	}
	for _, s := range []string{"containerd (/lib/systemd/system/containerd.service, /usr/bin/containerd)", "containernetworking-plugins (/usr/lib/cni/portmap)"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

// TestFilesRefuseWrongBinaries: a kubelet that is not the pinned build
// never goes into an image.
func TestFilesRefuseWrongBinaries(t *testing.T) {
	dir := t.TempDir()
	for _, c := range kubebin.Node {
		if err := os.WriteFile(filepath.Join(dir, c), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Files(kubebin.Result{Dir: dir, Version: "v1.37.2", Arch: "arm64"}); err == nil {
		t.Fatal("Files accepted shell scripts as kubelet and kubeadm")
	}
}

// TestFiles lists what the profile adds, with the real kubelet and kubeadm
// for the host (built, or taken from the cache the other kube tests share,
// by kubebin).
func TestFiles(t *testing.T) {
	testutil.NeedTool(t, "go")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	bin, err := kubebin.Build(ctx, kubebin.Options{Commands: kubebin.All})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Files(bin)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		switch {
		case f.Link != "":
			got = append(got, f.Path+" -> "+f.Link)
		case f.Source != "":
			got = append(got, f.Path+" from "+strings.TrimPrefix(f.Source, bin.Dir+"/"))
		default:
			got = append(got, f.Path)
		}
	}
	want := []string{
		"etc/containerd/cni.template",
		"etc/containerd/config.toml",
		"etc/modules-load.d/kubernetes.conf",
		"etc/sysctl.d/90-kubernetes.conf",
		"etc/systemd/system/multi-user.target.wants/containerd.service -> /lib/systemd/system/containerd.service",
		"etc/systemd/system/multi-user.target.wants/kubelet.service -> /usr/lib/systemd/system/kubelet.service",
		"etc/systemd/system/multi-user.target.wants/racklet-kube-join.service -> /usr/lib/systemd/system/racklet-kube-join.service",
		"etc/systemd/system/swap.target -> /dev/null",
		"usr/bin/kubeadm from kubeadm",
		"usr/bin/kubelet from kubelet",
		"usr/lib/systemd/system/containerd.service.d/10-racklet.conf",
		"usr/lib/systemd/system/kubelet.service",
		"usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf",
		"usr/lib/systemd/system/racklet-kube-join.service",
		"usr/lib/systemd/system/var-lib-containerd.mount",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
}

// TestCNITemplate renders the CNI template the way containerd 1.6 does
// (text/template over PodCIDRRanges and Routes) and checks it is the JSON
// a CNI runtime reads.
func TestCNITemplate(t *testing.T) {
	data, err := files.ReadFile("files/etc/containerd/cni.template")
	if err != nil {
		t.Fatal(err)
	}
	got := renderCNI(t, string(data), []string{"10.244.1.0/24", "fd00:10:244:1::/64"}, []string{"0.0.0.0/0", "::/0"})
	for _, s := range []string{`"ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]]`, `"routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]`} {
		if !strings.Contains(got, s) {
			t.Errorf("rendered template lacks %s:\n%s", s, got)
		}
	}
}

// TestBasePackagesInBaseBuilder keeps examples/base/debian.sh's kubernetes
// package set (kube_pkgs) the same as BasePackages.
func TestBasePackagesInBaseBuilder(t *testing.T) {
	script, err := os.ReadFile("../../examples/base/debian.sh")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(script), "\n") {
		if v, ok := strings.CutPrefix(l, "kube_pkgs="); ok {
			got = strings.Split(v, ",")
		}
	}
	if d := cmp.Diff(BasePackages, got); d != "" {
		t.Errorf("debian.sh kube_pkgs differs from BasePackages (-BasePackages +kube_pkgs):\n%s", d)
	}
}
