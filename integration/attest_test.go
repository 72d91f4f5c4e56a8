package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAttestThroughServe: the real racklet-boot serve releases a node's
// secrets to the real racklet-agent, whose HAT (racklet-hat-sim) measured
// exactly the kernel, initramfs and cmdline.txt racklet-boot serves that node
// (cmdline.txt rendered from the node's template) and the root hash its
// config names; the HAT key is pre-provisioned in the rack config. When the
// operator puts a new kernel in the node's boot source and the node has not
// rebooted, the next attestation is refused with a reason and releases
// nothing.
func TestAttestThroughServe(t *testing.T) {
	need(t, "ss")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	pi := newPiNode(t, ctx, dir, "cmdline.txt.tmpl", "console=serial0,115200 racklet.node={{.Name}}\n")
	boot := pi.boot
	srvNS := newHost(t, "att")
	srv := startServer(t, srvNS, dir, rackConfig("lo", "127.0.0.1", filepath.Join(dir, "data"), "mode: off", "nodes:\n"+pi.config()))

	secrets := filepath.Join(dir, "run")
	attestArgs := pi.attestArgs("console=serial0,115200 racklet.node=pi-01", secrets, filepath.Join(dir, "data", "server.pub"))
	out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-agent"), attestArgs...)
	if err != nil {
		t.Fatalf("racklet-agent attest against racklet-boot: %v\n%s", err, out)
	}
	t.Logf("racklet-agent attest:\n%s", out)
	for _, name := range []string{"join-token", "disk-key"} {
		fi, err := os.Stat(filepath.Join(secrets, name))
		if err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("secret %s not released as a 0600 file: %v", name, err)
		}
	}
	if len(lines(srv.Output(), "attest")) == 0 {
		t.Errorf("the server logged nothing about the attestation")
	}

	// The operator replaces the kernel; the node still runs v1.
	writeFile(t, boot, "kernel8.img", "kernel v2")
	os.RemoveAll(secrets)
	if _, err := hatAgent(ctx, bin, "power-cycle", "--hat", pi.hat); err != nil {
		t.Fatal(err)
	}
	out, err = srvNS.Output(ctx, filepath.Join(bin, "racklet-agent"), attestArgs...)
	if err == nil {
		t.Fatalf("attestation with the old kernel succeeded after the kernel changed:\n%s", out)
	}
	for _, s := range []string{"refused", "mismatch: kernel", "nothing released"} {
		if !strings.Contains(out+err.Error(), s) {
			t.Errorf("refusal does not say %q:\n%s\n%v", s, out, err)
		}
	}
	if _, err := os.Stat(secrets); err == nil {
		t.Errorf("secrets written on a refusal")
	}
}

// hatIdentity is the HAT's public key as racklet-agent identity prints it,
// for a node's hatKey.
func hatIdentity(t *testing.T, ctx context.Context, hat string) string {
	t.Helper()
	out, err := hatAgent(ctx, bin, "identity", "--hat", hat)
	if err != nil {
		t.Fatalf("racklet-agent identity: %v\n%s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(l, "key:"); ok {
			return strings.TrimSpace(k)
		}
	}
	t.Fatalf("racklet-agent identity printed no key:\n%s", out)
	return ""
}

// piNode is node pi-01 with a simulated HAT (racklet-hat-sim) that measured
// its own copy of the v1 kernel and initramfs racklet-boot serves from boot,
// and the root hash its config names.
type piNode struct {
	boot, nodeDir, hat, key string
}

const piRootHash = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e"

// newPiNode makes the boot source (with the command line file cmdName) and
// starts the node's HAT.
func newPiNode(t *testing.T, ctx context.Context, dir, cmdName, cmdline string) piNode {
	t.Helper()
	n := piNode{boot: bootDir(t, map[string]string{
		"config.txt":  "[all]\narm_64bit=1\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\n",
		"kernel8.img": "kernel v1",
		"initramfs8":  "initramfs v1",
		cmdName:       cmdline,
	}), nodeDir: t.TempDir()}
	for _, f := range []string{"kernel8.img", "initramfs8"} {
		writeFile(t, n.nodeDir, f, readFileT(t, filepath.Join(n.boot, f)))
	}
	n.hat = hatSim(t, ctx, bin, filepath.Join(dir, "hat.json"), "unix:"+filepath.Join(dir, "hat.sock"))
	n.key = hatIdentity(t, ctx, n.hat)
	return n
}

// config is the node's entry under nodes: in a rack config.
func (n piNode) config() string {
	return fmt.Sprintf(`  - name: pi-01
    kind: rpi4
    serial: 5b154510
    hatKey: "%s"
    boot: {dir: %s, rootHash: %s}
`, n.key, n.boot, piRootHash)
}

// attestArgs are racklet-agent's arguments to attest with the node's files
// and cmdline, checking racklet-boot's answers with serverKey (its data
// directory's server.pub) and writing the released secrets into out.
func (n piNode) attestArgs(cmdline, out, serverKey string) []string {
	return []string{"attest", "--hat", n.hat, "--server", "http://127.0.0.1", "--node", "pi-01",
		"--kernel", filepath.Join(n.nodeDir, "kernel8.img"), "--initrd", filepath.Join(n.nodeDir, "initramfs8"),
		"--cmdline", cmdline, "--roothash", piRootHash, "--secrets-dir", out, "--server-key", serverKey}
}
