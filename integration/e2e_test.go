package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/internal/vmtest"
)

// systemdMarker is what systemd prints on the console once the default target is reached.
const systemdMarker = "Reached target multi-user.target"

// TestNodeBootsDebianImage is the product end to end on x86-64: the Debian
// 12 amd64 base (examples/base/debian.sh, cached) → racklet-image build
// (cached by its input digest) → pushed to a registry (Debian's
// docker-registry) and signed → racklet-boot serve verifies and pulls it →
// QEMU's iPXE ROM gets racklet-boot's script and boots the image's kernel
// and initramfs over HTTP → racklet-agent as /init attests with
// racklet-hat-sim on a virtio-serial port, fetches the root, sets up
// dm-verity and switches root → Debian's systemd reaches multi-user.target
// → racklet-health.service reports healthy; the node's timeline (the API,
// and `racklet-boot nodes`) holds every stage.
//
// Then the tamper cases, each with its reason on the console and in the
// timeline and no user space of the image run: the same image served from a
// plain directory (so the image store's own check cannot catch it first)
// with one flipped byte in root.squashfs, and a boot of a changed
// initramfs that attestation refuses.
func TestNodeBootsDebianImage(t *testing.T) {
	need(t, "qemu-system-x86_64", "docker-registry", "mcopy", "ss", "curl", "mmdebstrap", "dpkg-deb", "depmod", "flock")
	ctx := t.Context()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	serverPub := cachedServerKey(t, data)
	img, took := debianImage(t, "amd64", nil, "--server-key", serverPub)
	t.Logf("image ready in %s: %s", took.Round(100*time.Millisecond), img)
	m, err := image.ReadManifest(img)
	if err != nil {
		t.Fatal(err)
	}

	sw := newSwitch(t)
	srvNS := newHost(t, "e2e")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.83.0.1/24")); err != nil {
		t.Fatal(err)
	}
	ref := pushSigned(t, srvNS, dir, img, "127.0.0.1:5000/racklet/debian:amd64")

	hatState := filepath.Join(dir, "hat.json")
	dev, err := hatsim.Open(hatState, hatsim.Options{Serial: "5b154511"})
	if err != nil {
		t.Fatal(err)
	}
	hatKey := hatlink.EncodeKey(dev.Identity().SignKey)
	const vmMAC = "52:54:00:83:00:01"
	config := func(boot string) string {
		return rackConfig("eth0", "10.83.0.1", data, `mode: full
pool: {start: 10.83.0.100, end: 10.83.0.150}
router: 10.83.0.1
leaseTime: 10m`, fmt.Sprintf(`trust:
  - repositories: ["127.0.0.1:5000/racklet/*"]
    keys: [{file: %s}]
images:
  insecure: ["127.0.0.1:5000"]
nodes:
  - name: pc-01
    kind: bios
    mac: %s
    hatKey: %q
    boot: %s
`, filepath.Join(dir, "racklet.pub"), vmMAC, hatKey, boot))
	}
	srv := startServer(t, srvNS, dir, config(fmt.Sprintf("{image: %q}", ref)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}

	// boot runs one machine with a fresh HAT until done says so or it
	// powers off, and returns its console.
	node := pcNode(sw, dir, hatState, vmMAC, "1536")
	boot := func(t *testing.T, qemuArgs []string, limit time.Duration, done func(console string) bool) string {
		t.Helper()
		out, took := node.boot(t, qemuArgs, limit, done)
		t.Logf("the machine ran %s", took.Round(time.Second))
		return out
	}

	t.Run("signed image boots to healthy", func(t *testing.T) {
		healthy := func(string) bool {
			return equalTail(agentTimelineAt(t, srv, "10.83.0.1", "pc-01"), []string{"agent.healthy"})
		}
		out := boot(t, []string{"-boot", "n"}, 12*time.Minute, func(c string) bool { return strings.Contains(c, systemdMarker) && healthy(c) })
		for _, want := range []string{"attestation accepted", "digests match the command line", "verified by dm-verity and mounted",
			"switching to /sbin/init", systemdMarker} {
			if !strings.Contains(out, want) {
				t.Errorf("console has no %q", want)
			}
		}
		if t.Failed() {
			t.Fatalf("console:\n%s", tail(out, 8000))
		}
		t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent:"), "\n"))
		t.Logf("systemd: %s", strings.Join(lines(out, systemdMarker), ""))
		tl := agentTimelineAt(t, srv, "10.83.0.1", "pc-01")
		want := []string{"agent.network", "agent.attested", "agent.root-fetched", "agent.root-verified", "agent.switched", "agent.healthy"}
		if !equalTail(tl, want) {
			t.Errorf("pc-01's timeline ends %v, want %v", tl, want)
		}
		nodes, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), "nodes", "--data-dir", data)
		if err != nil || !strings.Contains(nodes, "pc-01") {
			t.Errorf("racklet-boot nodes: %v\n%s", err, nodes)
		}
		t.Logf("racklet-boot nodes:\n%s", nodes)
		for _, f := range []string{"/ipxe/52-54-00-83-00-01/boot.ipxe", "/boot/52-54-00-83-00-01/vmlinuz", "/boot/52-54-00-83-00-01/initramfs"} {
			if len(lines(srv.Output(), `"path":"`+f+`"`, `"status":200`)) == 0 {
				t.Errorf("the server log has no request for %s", f)
			}
		}
	})

	// The same image, served from a plain directory: its boot partition's
	// files, root.squashfs and root.verity.
	plain := plainImageDir(t, img, m)
	reload(t, srv, config(fmt.Sprintf("{dir: %s, rootHash: %s}", plain, m.Verity.RootHash)))

	t.Run("flipped byte in root.squashfs is refused", func(t *testing.T) {
		sq := filepath.Join(plain, image.RootFile)
		good := sq + ".good"
		if err := os.Rename(sq, good); err != nil {
			t.Fatal(err)
		}
		defer os.Rename(good, sq)
		b := readFileT(t, good)
		bad := []byte(b)
		bad[len(bad)/2] ^= 0x01
		if err := os.WriteFile(sq, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		out := boot(t, []string{"-boot", "n"}, 6*time.Minute, func(c string) bool { return strings.Contains(c, "racklet-agent: boot failed") })
		if !strings.Contains(out, "boot failed at root-fetched: root.squashfs") || !strings.Contains(out, "digest mismatch") {
			t.Fatalf("want a root-fetched refusal; console:\n%s", tail(out, 5000))
		}
		if strings.Contains(out, "switching to /sbin/init") || strings.Contains(out, "systemd[1]") {
			t.Fatalf("user space of the image ran; console:\n%s", tail(out, 5000))
		}
		t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent:"), "\n"))
		requireFailureAt(t, srv, "10.83.0.1", "pc-01", "digest mismatch")
	})

	t.Run("changed initramfs is refused by attestation", func(t *testing.T) {
		// The machine loads the image's initramfs with one more (valid)
		// archive after it; racklet-boot serves and expects the original.
		changed := changedInitramfs(t, dir, plain)
		out := boot(t, []string{"-kernel", filepath.Join(plain, image.GenericKernel), "-initrd", changed, "-append", m.Cmdline}, 6*time.Minute,
			func(c string) bool { return strings.Contains(c, "racklet-agent: boot failed") })
		if !strings.Contains(out, "boot failed at attested: attestation refused by racklet-boot") || strings.Contains(out, "switching to /sbin/init") {
			t.Fatalf("want an attestation refusal and no root switch; console:\n%s", tail(out, 5000))
		}
		t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent:"), "\n"))
		requireFailureAt(t, srv, "10.83.0.1", "pc-01", "mismatch: initramfs")
	})
}

// debianImage builds the racklet image of the Debian base for arch (both
// cached: the base by examples/base/debian.sh with baseArgs, the image by
// racklet-image's input digest under $RACKLET_CACHE/e2e) with more
// racklet-image build arguments, and returns its directory.
func debianImage(t *testing.T, arch string, baseArgs []string, buildArgs ...string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	cache := filepath.Join(vmtest.CacheDir(), "e2e")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Minute)
	defer cancel()
	base := filepath.Join(t.TempDir(), "base")
	cmd := exec.CommandContext(ctx, "bash", append([]string{"../examples/base/debian.sh", "--arch", arch, "--out", base}, baseArgs...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("debian.sh: %v\n%s", err, tail(stderr.String(), 3000))
	}
	ref := strings.TrimSpace(stdout.String())
	t.Logf("base %s: %s", ref, strings.TrimSpace(tail(stderr.String(), 300)))
	if _, err := imagetest.Agent(bin, arch); err != nil {
		t.Fatal(err)
	}
	name := "img-" + arch + strings.Join(baseArgs, "")
	if len(buildArgs) > 0 {
		name += "-" + fmt.Sprintf("%x", sha256.Sum256([]byte(strings.Join(buildArgs, "\x00"))))[:12]
	}
	// One builder per output directory (other test runs share the cache).
	lock, err := os.OpenFile(filepath.Join(cache, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(cache, name)
	args := append([]string{"build", "--base", ref, "--platform", "linux/" + arch, "--dir", out}, buildArgs...)
	b, err := exec.CommandContext(ctx, filepath.Join(bin, "racklet-image"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("racklet-image build: %v\n%s", err, tail(string(b), 3000))
	}
	t.Logf("racklet-image build: %s", strings.Join(lines(string(b), "boot:"), " "))
	return out, time.Since(start)
}

// pushSigned pushes a built image to a registry run in ns (Debian's
// docker-registry on its loopback) and signs it with a new key
// (dir/racklet.key, .pub); it returns the reference.
func pushSigned(t *testing.T, ns netlab.Namespace, dir, img, ref string) string {
	t.Helper()
	regCfg := writeFile(t, dir, "registry.yml", fmt.Sprintf(
		"version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:5000}\n", filepath.Join(dir, "registry")))
	reg := start(t, ns, "docker-registry", "serve", regCfg)
	waitListening(t, ns, reg, 20*time.Second, "tcp:5000")
	for _, args := range [][]string{
		{"keygen", "--prefix", filepath.Join(dir, "racklet")},
		{"push", img, ref, "--insecure"},
		{"sign", ref, "--key", filepath.Join(dir, "racklet.key"), "--insecure"},
	} {
		cmd := ns.Command(t.Context(), filepath.Join(bin, "racklet-image"), args...)
		cmd.Env = append(os.Environ(), "RACKLET_KEY_PASSWORD=racklet-test")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("racklet-image %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	return ref
}

// ansiEscape matches the terminal control sequences systemd colours its status with.
var ansiEscape = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[A-Z])`)

// plainConsole is a serial console's text without carriage returns and
// terminal control sequences.
func plainConsole(s string) string {
	return ansiEscape.ReplaceAllString(strings.ReplaceAll(s, "\r", ""), "")
}

// reload replaces the server's config and waits until it is loaded.
func reload(t *testing.T, s *server, config string) {
	t.Helper()
	before := strings.Count(s.Output(), "config reloaded")
	writeFile(t, filepath.Dir(s.config), "rack.yaml.new", config)
	if err := os.Rename(filepath.Join(filepath.Dir(s.config), "rack.yaml.new"), s.config); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); strings.Count(s.Output(), "config reloaded") == before; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not reload the config:\n%s", tail(s.Output(), 3000))
		}
	}
}

// agentTimelineAt returns the node's agent.* events as "type: detail", from
// the operator API of racklet-boot at addr (its token from the data directory).
func agentTimelineAt(t *testing.T, s *server, addr, node string) []string {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.ns.Output(t.Context(), "curl", "-sf", "-H", "Authorization: Bearer "+strings.TrimSpace(string(tok)), "http://"+addr+"/api/v1/nodes/"+node+"/events")
	if err != nil {
		t.Fatalf("read the timeline: %v: %s", err, out)
	}
	var body struct {
		Events []struct{ Type, Detail string }
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range body.Events {
		if strings.HasPrefix(e.Type, "agent.") {
			types = append(types, e.Type+": "+e.Detail)
		}
	}
	return types
}

// equalTail reports whether the event types at the end of got are want.
func equalTail(got, want []string) bool {
	if len(got) < len(want) {
		return false
	}
	for i, w := range want {
		typ, _, _ := strings.Cut(got[len(got)-len(want)+i], ":")
		if typ != w {
			return false
		}
	}
	return true
}

// requireFailureAt checks the node's last agent event is a failure naming
// reason, in the timeline of racklet-boot at addr.
func requireFailureAt(t *testing.T, s *server, addr, node, reason string) {
	t.Helper()
	got := agentTimelineAt(t, s, addr, node)
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "agent.failed: ") || !strings.Contains(got[len(got)-1], reason) {
		t.Errorf("%s's timeline ends %v, want agent.failed naming %q", node, got, reason)
	}
}
