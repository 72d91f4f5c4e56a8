package integration

// End to end for the HAT (issue 6): the real racklet-hat-sim and
// racklet-agent binaries, talking over a Unix socket and a pseudo-terminal,
// against a racklet-boot attestation verifier on loopback. Runs as a normal
// user; needs only the go tool to build the two commands.

import (
	"bufio"
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
)

// hatBuild returns the directory holding the HAT commands (TestMain built
// every command of the module there).
func hatBuild(t *testing.T) string {
	t.Helper()
	return bin
}

// hatSim starts racklet-hat-sim and returns the address it prints.
func hatSim(t *testing.T, ctx context.Context, bin, state, listen string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "racklet-hat-sim"), "--state", state, "--listen", listen)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		t.Logf("racklet-hat-sim log:\n%s", stderr.String())
	})
	addr := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			addr <- s.Text()
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("racklet-hat-sim exited without an address: %s", stderr.String())
		}
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("racklet-hat-sim did not report its address within 30 s")
	}
	return ""
}

func hatAgent(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "racklet-agent"), args...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestHATAttestEndToEnd(t *testing.T) {
	bin := hatBuild(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()

	// The node's boot files, and what the server assigns.
	kernel, initrd := filepath.Join(dir, "kernel8.img"), filepath.Join(dir, "initramfs.cpio.gz")
	os.WriteFile(kernel, []byte("a kernel image"), 0o644)
	os.WriteFile(initrd, []byte("an initramfs"), 0o644)
	roothash := strings.Repeat("5e", 32)
	cmdline := "console=serial0,115200 root=/dev/mapper/root ro"
	assigned, err := attest.MeasureFiles(kernel, initrd, cmdline, roothash)
	if err != nil {
		t.Fatal(err)
	}
	assigned.Image = "registry.local/racklet/os:v1"
	var mu sync.Mutex
	enr, _ := verifier.OpenEnrollmentFile(filepath.Join(dir, "enrollments.json"))
	sec, _ := verifier.OpenSecretFile(filepath.Join(dir, "secrets.json"))
	v := &verifier.Verifier{Enrollments: enr, Secrets: sec,
		Expected: verifier.ExpectedFunc(func(ctx context.Context, node string) (attest.Measurements, error) {
			mu.Lock()
			defer mu.Unlock()
			if node != "pi-01" {
				return attest.Measurements{}, verifier.ErrUnknownNode
			}
			return assigned, nil
		})}
	srv := httptest.NewServer(v.Handler())
	defer srv.Close()

	hat := hatSim(t, ctx, bin, filepath.Join(dir, "hat.json"), "unix:"+filepath.Join(dir, "hat.sock"))

	// Pre-provision the HAT key, as an operator would from `racklet-agent identity`.
	out, err := hatAgent(ctx, bin, "identity", "--hat", hat)
	if err != nil {
		t.Fatalf("identity: %v\n%s", err, out)
	}
	key := ""
	for _, l := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(l, "key:"); ok {
			key = strings.TrimSpace(k)
		}
	}
	if _, err := v.Enroll(ctx, "pi-01", key); err != nil {
		t.Fatalf("enroll key %q from identity output %q: %v", key, out, err)
	}

	secrets := filepath.Join(dir, "run")
	args := []string{"attest", "--hat", hat, "--server", srv.URL, "--node", "pi-01", "--kernel", kernel,
		"--initrd", initrd, "--cmdline", cmdline, "--roothash", roothash, "--out", secrets}
	out, err = hatAgent(ctx, bin, args...)
	if err != nil {
		t.Fatalf("attest: %v\n%s", err, out)
	}
	t.Logf("racklet-agent attest:\n%s", out)
	want, _ := sec.Secrets(ctx, "pi-01")
	for name, data := range map[string]string{attest.SecretJoinToken: want.JoinToken, attest.SecretDiskKey: string(want.DiskKey)} {
		p := filepath.Join(secrets, name)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != data {
			t.Errorf("%s = %q, %v; want the released secret", p, got, err)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}

	// The operator assigns a new image; the node has not rebooted into it.
	mu.Lock()
	assigned.Kernel = strings.Repeat("00", 32)
	assigned.Image = "registry.local/racklet/os:v2"
	mu.Unlock()
	os.RemoveAll(secrets)
	out, err = hatAgent(ctx, bin, args...)
	if err == nil {
		t.Fatalf("attest after an image change succeeded:\n%s", out)
	}
	t.Logf("racklet-agent attest after the image changed:\n%s", out)
	for _, s := range []string{"refused", "pi-01", "registry.local/racklet/os:v2", "mismatch: kernel)", "nothing released"} {
		if !strings.Contains(out, s) {
			t.Errorf("refusal output does not say %q:\n%s", s, out)
		}
	}
	if _, err := os.Stat(secrets); err == nil {
		t.Errorf("secrets directory written on a refusal")
	}
}

// TestHATOverPTY drives the simulator over a real pseudo-terminal with the
// agent's A/B commands: three uncommitted trials of B fall back to A.
func TestHATOverPTY(t *testing.T) {
	bin := hatBuild(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dev := hatSim(t, ctx, bin, filepath.Join(t.TempDir(), "hat.json"), "pty")
	if !strings.HasPrefix(dev, "/dev/") {
		t.Fatalf("pty address %q is not a device path", dev)
	}
	for i := 1; i <= 3; i++ {
		if out, err := hatAgent(ctx, bin, "boot-attempt", "B", "--hat", dev); err != nil {
			t.Fatalf("trial %d of B: %v\n%s", i, err, out)
		}
	}
	out, err := hatAgent(ctx, bin, "boot-attempt", "B", "--hat", dev)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out, "fall back to A") {
		t.Fatalf("4th trial of B: %v\n%s; want exit 2 and 'fall back to A'", err, out)
	}
	out, err = hatAgent(ctx, bin, "boot-commit", "B", "--hat", dev)
	if err != nil || !strings.Contains(out, "committed: B") || !strings.Contains(out, "A=0 B=0") {
		t.Fatalf("commit B: %v\n%s", err, out)
	}
}
