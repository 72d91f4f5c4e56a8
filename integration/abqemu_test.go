package integration

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/ab/rollout"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/image/initramfs"
	"github.com/racklet/racklet-boot/internal/vmtest"
	"github.com/racklet/racklet-boot/serverkey"
	"github.com/racklet/racklet-boot/store"
)

// qemuBase writes an amd64 base image as an OCI layout: busybox, Debian's
// kernel in /boot and the modules racklet's initramfs takes (the boot path's
// and QEMU's virtio drivers, with their dependencies and depmod's indexes).
// rootMarker is what the busybox root's init prints once it runs.
const rootMarker = "RACKLET-ROOT-INIT-RAN"

func qemuBase(t *testing.T, dir string, k vmtest.Kernel) string {
	t.Helper()
	file := func(name, host string, mode int64) imagetest.Entry {
		b, err := os.ReadFile(host)
		if err != nil {
			t.Fatal(err)
		}
		return imagetest.Entry{Name: name, Body: string(b), Mode: mode}
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	es := []imagetest.Entry{file("bin/busybox", bb, 0o755)}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "etc", "sbin"} {
		es = append(es, imagetest.Entry{Name: d + "/", Type: tar.TypeDir})
	}
	for _, l := range []string{"bin/sh", "sbin/init", "sbin/poweroff"} {
		es = append(es, imagetest.Entry{Name: l, Type: tar.TypeSymlink, Link: "/bin/busybox"})
	}
	es = append(es, file("boot/vmlinuz-"+k.Version, k.Vmlinuz, 0o644))
	if _, err := os.Stat(filepath.Join(k.Root, "boot", "config-"+k.Version)); err == nil {
		es = append(es, file("boot/config-"+k.Version, filepath.Join(k.Root, "boot", "config-"+k.Version), 0o644))
	}
	mods := vmtest.ModuleFiles(t, k, append(append([]string{}, initramfs.Required...), initramfs.Drivers("amd64")...)...)
	for _, f := range mods {
		rel, err := filepath.Rel(k.Root, f)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, file(rel, f, 0o644))
	}
	for _, f := range vmtest.ModuleIndexes {
		if p := filepath.Join(k.ModulesDir(), f); fileExists(p) {
			es = append(es, file(filepath.Join("lib", "modules", k.Version, f), p, 0o644))
		}
	}
	ref, err := imagetest.WriteLayoutOf(filepath.Join(dir, "qemu-base"), v1.Platform{OS: "linux", Architecture: "amd64"}, es)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestABUnderQEMU: one x86-64 node under QEMU (iPXE, racklet's initramfs,
// the HAT simulator on a virtio port as its HAT and on racklet-boot's BMC
// port as its power switch, QMP system_reset as the power cycle). Its group
// runs v1; v2, a good image, is tried once and committed after its healthy
// report (on racklet-boot and on the HAT: slot b); v3, whose health check
// fails, is tried twice, each attempt ended by a reset, then rolled back:
// the node runs v2 again and is flagged, its HAT counted 2 attempts.
func TestABUnderQEMU(t *testing.T) {
	need(t, "qemu-system-x86_64", "busybox", "ss", "apt-get", "dpkg-deb", "depmod")
	k := vmtest.DebianKernel(t)
	ctx := t.Context()
	dir := t.TempDir()
	amdAgent, err := imagetest.Agent(dir, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	base := qemuBase(t, dir, k)
	key, lay := filepath.Join(dir, "cosign"), filepath.Join(dir, "layout")
	t.Setenv("RACKLET_KEY_PASSWORD", "racklet-test")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	runImage(t, "keygen", "--prefix", key)
	// racklet-boot's answer-signing key, made in its data directory before
	// it starts (it keeps it): the images' initramfs trusts only it.
	if _, err := serverkey.Open(filepath.Join(dir, "data")); err != nil {
		t.Fatal(err)
	}
	roots := map[string]string{}
	for _, v := range []struct{ tag, health string }{
		{"v1", "/usr/lib/racklet/racklet-agent health --attempts 5"},
		{"v2", "/usr/lib/racklet/racklet-agent health --attempts 5"},
		{"v3", "/usr/lib/racklet/racklet-agent health --attempts 5 --failed 'racklet-test: the service of v3 did not start'"},
	} {
		over := filepath.Join(dir, "overlay-"+v.tag)
		writeFile(t, over, "etc/inittab", "::sysinit:/bin/busybox echo "+rootMarker+" "+v.tag+"\n"+
			"::sysinit:"+v.health+"\n::respawn:/bin/busybox sleep 3600\n")
		out := filepath.Join(dir, v.tag)
		runImage(t, "build", "--base", base, "--platform", "linux/amd64", "--agent", amdAgent, "--overlay", over,
			"--server-key", filepath.Join(dir, "data", serverkey.PublicFile), "--dir", out)
		runImage(t, "push", out, "oci-layout:"+lay+":"+v.tag)
		runImage(t, "sign", "oci-layout:"+lay+":"+v.tag, "--key", key+".key")
		m, err := image.ReadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		roots[v.tag] = m.Root.Digest
	}

	hatState := filepath.Join(dir, "hat", "hat.json")
	os.MkdirAll(filepath.Dir(hatState), 0o755)
	dev, err := hatsim.Open(hatState, hatsim.Options{Serial: "5b154582", AttemptLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	hatKey := hatlink.EncodeKey(dev.Identity().SignKey)
	sw := newSwitch(t)
	srvNS := newHost(t, "abq")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.86.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sw.NS.Run(ctx, "ip", "addr", "add", "10.86.0.250/24", "dev", sw.Bridge); err != nil {
		t.Fatal(err)
	}
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}
	const vmMAC = "52:54:00:86:00:01"
	config := func(tag string) string {
		return rackConfig("eth0", "10.86.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.86.0.100, end: 10.86.0.150}
router: 10.86.0.1
leaseTime: 10m`, fmt.Sprintf(`trust:
  - repositories: ["oci-layout:%s"]
    keys: [{file: %s.pub}]
nodes:
  - name: pc-01
    kind: bios
    mac: %s
    hatKey: %s
    boot: {kernel: vmlinuz, initrd: [initramfs]}
groups:
  - name: qemu
    nodes: [pc-01]
    image: "oci-layout:%s:%s"
    rollout: {maxUnavailable: 1, healthTimeout: 8m, attempts: 2}
`, lay, key, vmMAC, hatKey, lay, tag))
	}
	srv := startServer(t, srvNS, dir, config("v1"))
	waitListening(t, srvNS, srv.proc, 20*time.Second, "udp:67", "tcp:7070")
	srv.waitOutput(t, "assigned images verified and cached", 2*time.Minute)

	pidFile := filepath.Join(dir, "hat", "hat.node", "qemu.pid")
	t.Cleanup(func() {
		if pid, ok := livePID(pidFile); ok {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	sock := filepath.Join(dir, "hat", "pi.sock")
	start(t, sw.NS, filepath.Join(bin, "racklet-hat-sim"), "--state", hatState, "--listen", "unix:"+sock, "--bmc", "tcp:10.86.0.1:7070",
		"--", "qemu-system-x86_64", "-display", "none", "-m", "768", "-boot", "n",
		"-nic", "tap,ifname=tap0,script=no,downscript=no,model=virtio-net-pci,mac="+vmMAC,
		"-device", "virtio-serial-pci", "-chardev", "socket,id=hat,path="+sock+",reconnect=1",
		"-device", "virtserialport,chardev=hat,name=racklet.hat")

	api := operatorAPI{url: "http://10.86.0.1", dataDir: filepath.Join(dir, "data")}
	status := func() rollout.GroupStatus {
		out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), "rollout", "status", "-o", "json", "--server", api.url, "--token-file", api.tokenFile())
		var st []rollout.GroupStatus
		if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || len(st[0].Nodes) != 1 {
			return rollout.GroupStatus{}
		}
		return st[0]
	}
	healthy := func(root string) func() bool {
		return func() bool {
			evs := eventsOf(ctx, srvNS, api, "pc-01")
			return len(evs) > 0 && evs[len(evs)-1].Type == "agent.healthy" && strings.Contains(evs[len(evs)-1].Detail, root)
		}
	}
	cycles := func() []store.Event {
		var out []store.Event
		for _, e := range eventsOf(ctx, srvNS, api, "pc-01") {
			if e.Type == "power.cycle" && strings.Contains(e.Detail, "a/b") {
				out = append(out, e)
			}
		}
		return out
	}
	hat := func() hatsimState {
		var s hatsimState
		b, _ := os.ReadFile(hatState)
		json.Unmarshal(b, &s)
		return s
	}

	start1 := time.Now()
	waitFor(t, 8*time.Minute, "pc-01 healthy on v1", healthy(roots["v1"]))
	t.Logf("pc-01 booted v1 and reported healthy in %s", time.Since(start1).Round(time.Second))

	// v2 commits after its healthy report.
	start2 := time.Now()
	writeFile(t, dir, "rack.yaml", config("v2"))
	waitFor(t, 10*time.Minute, "v2 committed", func() bool {
		st := status()
		return st.Phase == rollout.PhaseDone && strings.HasSuffix(st.To, ":v2") && st.Nodes[0].State == "committed" && st.Nodes[0].Committed == st.Nodes[0].Image
	})
	if st := status(); st.Nodes[0].Slot != "b" {
		t.Errorf("v2 committed in slot %s, want b", st.Nodes[0].Slot)
	}
	if h := hat(); h.Committed != hatlink.SlotB || h.Attempts != [2]int{} {
		t.Errorf("HAT after v2's commit: committed %d, attempts %v; want slot b, counts reset", h.Committed, h.Attempts)
	}
	if n := len(cycles()); n != 1 {
		t.Errorf("%d a/b power cycles for v2, want 1", n)
	}
	t.Logf("v2 tried and committed in %s", time.Since(start2).Round(time.Second))

	// v3 fails its health check twice, each attempt ended by a reset, and
	// rolls back to v2, flagged.
	start3 := time.Now()
	writeFile(t, dir, "rack.yaml", config("v3"))
	waitFor(t, 15*time.Minute, "v3 rolled back and pc-01 healthy on v2 again", func() bool {
		st := status()
		return st.Phase == rollout.PhaseHalted && st.Trying == 0 && st.Nodes[0].State == "rolled-back" && healthy(roots["v2"])()
	})
	st := status()
	ns := st.Nodes[0]
	if !ns.Flagged || ns.Attempt != 2 || ns.Slot != "b" || !strings.Contains(ns.Reason, "the service of v3 did not start") {
		t.Errorf("pc-01 after v3: %+v; want flagged after 2 attempts with v3's health reason, back on slot b", ns)
	}
	if h := hat(); h.Committed != hatlink.SlotB || h.Attempts[hatlink.SlotA] != 2 {
		t.Errorf("HAT after v3: committed %d, attempts %v; want b committed, 2 attempts of a", h.Committed, h.Attempts)
	}
	cs := cycles()
	if len(cs) != 4 {
		t.Errorf("%d a/b power cycles in all, want 4 (v2's trial, v3's two attempts, the way back)", len(cs))
	}
	for _, c := range cs {
		t.Logf("power cycle: %s", c.Detail)
	}
	con := consoleOf(ctx, srvNS, api, "pc-01", 0)
	if !strings.Contains(con, rootMarker+" v2") {
		t.Errorf("the last boot's console does not show v2's root:\n%s", tail(con, 3000))
	}
	t.Logf("v3 tried twice and rolled back in %s; last boot's agent lines:\n%s", time.Since(start3).Round(time.Second),
		strings.Join(lines(con, "racklet-agent:"), "\n"))
}

// hatsimState is the part of the HAT simulator's state file the test reads.
type hatsimState struct {
	Committed byte   `json:"committed"`
	Attempts  [2]int `json:"attempts"`
}
