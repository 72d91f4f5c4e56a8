//go:build kubearm64

package kubebin

import (
	"context"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// The arm64 build (kubelet and kubeadm for the Pi image) costs about as much
// CPU as the host's control plane build again, so it is not part of go test
// ./...: bench/kube/arm64.sh runs it (go test -tags kubearm64), printing the
// cold and cached times.

// TestBuildArm64Node builds kubelet and kubeadm for arm64 (the Pi image's
// architecture), checks them from the file, and runs them under qemu-user
// for the version they print.
func TestBuildArm64Node(t *testing.T) {
	testutil.NeedTool(t, "go")
	testutil.NeedTool(t, "qemu-aarch64-static")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	r := build(ctx, t, Options{Arch: "arm64", Commands: Node})
	for _, c := range Node {
		if err := Check(r.Path(c), c, r.Version, "arm64"); err != nil {
			t.Error(err)
		}
		if err := Check(r.Path(c), c, r.Version, "amd64"); err == nil {
			t.Errorf("%s: Check accepted an arm64 binary as amd64", c)
		}
		if v, err := Version(ctx, r.Path(c), c, "arm64"); err != nil || v != r.Version {
			t.Errorf("%s under qemu-aarch64-static reports %q (%v), want %s", c, v, err, r.Version)
		}
	}
}
