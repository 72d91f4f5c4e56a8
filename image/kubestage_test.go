package image

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/kube/profile"
)

// debianRuntime are the files of Debian's containerd, runc, CNI plugins,
// iptables, conntrack, kmod and systemd that the kubernetes profile relies
// on in a base (empty stand-ins: the build only checks they are there).
func debianRuntime() []byte {
	var es []imagetest.Entry
	for _, p := range []string{"usr/bin/containerd", "lib/systemd/system/containerd.service", "usr/sbin/runc",
		"usr/lib/cni/bridge", "usr/lib/cni/host-local", "usr/lib/cni/loopback", "usr/lib/cni/portmap",
		"usr/sbin/iptables", "usr/sbin/conntrack", "sbin/modprobe", "bin/systemctl", "lib/systemd/systemd"} {
		es = append(es, imagetest.Entry{Name: p, Body: "stand-in", Mode: 0o755})
	}
	b, err := imagetest.TarLayer(es)
	if err != nil {
		panic(err)
	}
	return b
}

// TestBuildKubernetesProfile builds the test base for the host's
// architecture with `kubernetes: {version: v1.37.2}`: kubelet and kubeadm
// come from kubebin (the cache the kube tests share; cold, a go build of
// many minutes), the profile's files and the cgroup words land in the image,
// and a base without the container runtime is refused, naming the packages.
func TestBuildKubernetesProfile(t *testing.T) {
	testutil.NeedTool(t, "go")
	unsq := testutil.NeedTool(t, "unsquashfs")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	plat := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	agent := fakeAgent(t, runtime.GOARCH)
	kube := &profile.Spec{Version: "v1.37.2"}

	bare := testBase(t, imagetest.Options{Platforms: []v1.Platform{plat}})
	_, err := Build(ctx, Spec{Base: bare, Platform: "linux/" + runtime.GOARCH, Agent: agent, Kubernetes: kube}, filepath.Join(t.TempDir(), "out"), Options{})
	if !errors.Is(err, profile.ErrBase) || !strings.Contains(err.Error(), "install conntrack") || !strings.Contains(err.Error(), "containerd (/lib/systemd/system/containerd.service, /usr/bin/containerd)") {
		t.Fatalf("build from a base without containerd: %v, want ErrBase naming the packages", err)
	}

	ref := testBase(t, imagetest.Options{Platforms: []v1.Platform{plat}, ExtraLayers: [][]byte{debianRuntime()}})
	out := filepath.Join(t.TempDir(), "out")
	m, err := Build(ctx, Spec{Base: ref, Platform: "linux/" + runtime.GOARCH, Agent: agent, Kubernetes: kube}, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(m.Cmdline, " "+strings.Join(profile.CmdlineArgs, " ")) {
		t.Errorf("cmdline %q lacks the profile's %v", m.Cmdline, profile.CmdlineArgs)
	}
	if m.Spec.Kubernetes == nil || m.Spec.Kubernetes.Version != "v1.37.2" || !strings.Contains(m.Describe(), "kubernetes: v1.37.2") {
		t.Errorf("the manifest does not pin the profile: %+v\n%s", m.Spec.Kubernetes, m.Describe())
	}
	list, err := exec.Command(unsq, "-lln", "-n", filepath.Join(out, RootFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lln: %v\n%s", err, list)
	}
	for _, l := range strings.Split(string(list), "\n") {
		if strings.HasSuffix(l, "squashfs-root/usr/bin/kubelet") && !strings.HasPrefix(l, "-rwxr-xr-x 0/0 ") {
			t.Errorf("kubelet in the root: %q, want an executable owned by 0:0", l)
		}
	}
	for _, want := range []string{"squashfs-root/usr/bin/kubelet", "squashfs-root/usr/bin/kubeadm",
		"squashfs-root/etc/containerd/config.toml", "squashfs-root/usr/lib/systemd/system/racklet-kube-join.service",
		"squashfs-root/etc/systemd/system/swap.target -> /dev/null",
		"squashfs-root/etc/systemd/system/multi-user.target.wants/kubelet.service -> /usr/lib/systemd/system/kubelet.service"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("root lacks %q", want)
		}
	}

	plain, err := Build(ctx, Spec{Base: ref, Platform: "linux/" + runtime.GOARCH, Agent: agent}, filepath.Join(t.TempDir(), "plain"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.InputDigest == m.InputDigest || strings.Contains(plain.Cmdline, "cgroup_enable") {
		t.Errorf("the same build without the profile has input %s and cmdline %q", plain.InputDigest, plain.Cmdline)
	}
}
