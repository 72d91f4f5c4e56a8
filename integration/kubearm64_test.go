//go:build kubearm64

package integration

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/kube/kubebin"
	"github.com/racklet/racklet-boot/kube/profile"
)

// TestKubernetesImageArm64 builds the Pi image with the kubernetes profile:
// the arm64 base with the kubernetes package set (debian.sh --profile
// kubernetes, its package scripts under qemu-user) → racklet-image build
// --kubernetes v1.37.2 (kubelet and kubeadm cross-built for arm64 by
// kubebin), then takes kubelet and kubeadm out of the image's root and checks
// them: arm64 ELF files of the pinned version (kubebin.Check), which print
// that version under qemu-aarch64-static. Not part of go test ./...: from an
// empty cache the arm64 base and the arm64 build cost tens of CPU-minutes;
// bench/kube/arm64.sh runs it (-tags kubearm64).
func TestKubernetesImageArm64(t *testing.T) {
	need(t, "mmdebstrap", "dpkg-deb", "depmod", "flock", "qemu-aarch64-static")
	unsq := testutil.NeedTool(t, "unsquashfs")
	testutil.NeedTool(t, "go")
	img, took := debianImage(t, "arm64", []string{"--profile", "kubernetes"}, "--kubernetes", "v1.37.2")
	t.Logf("arm64 kubernetes image ready in %s: %s", took.Round(1e8), img)
	m, err := image.ReadManifest(img)
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.Kubernetes == nil || m.Spec.Kubernetes.Version != "v1.37.2" || !strings.HasSuffix(m.Cmdline, strings.Join(profile.CmdlineArgs, " ")) {
		t.Errorf("manifest: kubernetes %+v, cmdline %q", m.Spec.Kubernetes, m.Cmdline)
	}
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command(unsq, "-n", "-d", root, filepath.Join(img, image.RootFile), "usr/bin/kubelet", "usr/bin/kubeadm").CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs: %v\n%s", err, out)
	}
	for _, c := range kubebin.Node {
		p := filepath.Join(root, "usr/bin", c)
		if err := kubebin.Check(p, c, "v1.37.2", "arm64"); err != nil {
			t.Error(err)
		}
		v, err := kubebin.Version(t.Context(), p, c, "arm64")
		if err != nil || v != "v1.37.2" {
			t.Errorf("%s of the image under qemu-aarch64-static reports %q (%v)", c, v, err)
		}
		t.Logf("%s in the arm64 image: arm64 ELF, %s", c, v)
	}
}
