package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/pisim"
)

// TestSignedRackFromRegistry: ten simulated Pi 4s boot from a signed image
// that racklet-boot pulls from a real registry (Debian's docker-registry) and
// verifies; the config then switches five of them to a second signed image,
// which they boot on their next run without a restart; a node switched to
// an unsigned image gets nothing of it — it keeps booting the signed image
// it committed (A/B) — and the reason is in the server log.
func TestSignedRackFromRegistry(t *testing.T) {
	need(t, "docker-registry", "ss", "busybox")
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	sw := newSwitch(t)
	srvNS, rackNS := newHost(t, "sig"), newHost(t, "sigr")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.82.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, rackNS, "eth0", mustPrefix("")); err != nil {
		t.Fatal(err)
	}

	// The registry lives in the server's namespace, on its loopback.
	regCfg := writeFile(t, dir, "registry.yml", fmt.Sprintf(
		"version: 0.1\nstorage: {filesystem: {rootdirectory: %s}}\nhttp: {addr: 127.0.0.1:5000}\n", filepath.Join(dir, "registry")))
	reg := start(t, srvNS, "docker-registry", "serve", regCfg)
	waitListening(t, srvNS, reg, 20*time.Second, "tcp:5000")

	// Two images from one base: B's overlay replaces the kernel. Signed with
	// one key; C is pushed unsigned.
	base, err := imagetest.WriteLayout(filepath.Join(dir, "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	overlay := t.TempDir()
	writeFile(t, overlay, "boot/firmware/kernel8.img", "kernel-image-B")
	ri := func(args ...string) string {
		t.Helper()
		cmd := srvNS.Command(ctx, filepath.Join(bin, "racklet-image"), args...)
		cmd.Env = append(os.Environ(), "RACKLET_KEY_PASSWORD=racklet-test")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("racklet-image %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	key := filepath.Join(dir, "racklet")
	ri("keygen", "--prefix", key)
	const repo = "127.0.0.1:5000/racklet/os"
	ri("build", "--base", base, "--push", repo+":a", "--sign-key", key+".key", "--insecure")
	ri("build", "--base", base, "--overlay", overlay, "--push", repo+":b", "--sign-key", key+".key", "--insecure")
	ri("build", "--base", base, "--overlay", overlay, "--config-txt", "arm_64bit=1\n", "--push", repo+":c", "--insecure")

	pis := pisim.NewPis(10, 4, 82)
	images := make([]string, len(pis))
	for i := range images {
		images[i] = repo + ":a"
	}
	config := func() string {
		var nodes strings.Builder
		for i, p := range pis {
			fmt.Fprintf(&nodes, "  - name: pi-%02d\n    kind: rpi4\n    serial: \"%s\"\n    boot: {image: \"%s\"}\n", i+1, p.Name(), images[i])
		}
		return rackConfig("eth0", "10.82.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.82.0.100, end: 10.82.0.200}
router: 10.82.0.1
leaseTime: 1h`, fmt.Sprintf(`trust:
  - repositories: ["127.0.0.1:5000/racklet/*"]
    keys: [{file: %s.pub}]
images:
  insecure: ["127.0.0.1:5000"]
nodes:
%s`, key, nodes.String()))
	}
	srv := startServer(t, srvNS, dir, config())
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")

	kernelA, kernelB := sha("kernel-image-arm64"), sha("kernel-image-B")
	boot := func(round string) []*pisim.Result {
		t.Helper()
		cmd := rackNS.Command(ctx, filepath.Join(bin, "racklet-boot"), "simulate", "--interface", "eth0",
			"--nodes", "10", "--kind", "rpi4", "--seed", "82", "-o", "json", "--log-level", "warn")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		runErr := cmd.Run()
		var res []*pisim.Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res) != 10 {
			t.Fatalf("%s: simulate: %v / %v\n%s\n%s", round, runErr, err, tail(out.String(), 3000), errb.String())
		}
		return res
	}
	kernelOf := func(r *pisim.Result) string {
		for _, s := range r.Steps {
			if strings.HasSuffix(s.File, "kernel8.img") && s.SHA256 != "" {
				return s.SHA256
			}
		}
		return ""
	}

	// Round 1: every node boots image A.
	for _, r := range boot("round 1") {
		if !r.KernelLoaded || kernelOf(r) != kernelA {
			t.Errorf("round 1: pi %s: %s %s, kernel %s, want image A's %s", r.Serial, r.Verdict, r.Error, kernelOf(r), kernelA)
		}
	}

	// Round 2: five nodes switch to B, one to the unsigned C.
	for i := 0; i < 5; i++ {
		images[i] = repo + ":b"
	}
	images[9] = repo + ":c"
	before := strings.Count(srv.Output(), "config reloaded")
	writeFile(t, dir, "rack.yaml.new", config())
	if err := os.Rename(filepath.Join(dir, "rack.yaml.new"), srv.config); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); strings.Count(srv.Output(), "config reloaded") == before; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not reload the config")
		}
	}
	res := boot("round 2")
	for i, r := range res {
		switch {
		case i < 5:
			if !r.KernelLoaded || kernelOf(r) != kernelB {
				t.Errorf("round 2: pi %s (switched to B): %s %s, kernel %s, want %s", r.Serial, r.Verdict, r.Error, kernelOf(r), kernelB)
			}
		case i == 9:
			// Nothing of C is served: the node keeps booting the signed
			// image it committed (A/B), and the log says why.
			if !r.KernelLoaded || kernelOf(r) != kernelA {
				t.Errorf("round 2: pi %s (moved to the unsigned C): %s %s, kernel %s, want A's %s (C refused, A kept)", r.Serial, r.Verdict, r.Error, kernelOf(r), kernelA)
			}
		default:
			if !r.KernelLoaded || kernelOf(r) != kernelA {
				t.Errorf("round 2: pi %s (still A): %s %s, kernel %s, want %s", r.Serial, r.Verdict, r.Error, kernelOf(r), kernelA)
			}
		}
	}
	refusals := lines(srv.Output(), "is not signed")
	if len(refusals) == 0 {
		t.Errorf("the server log never says why the unsigned image was refused")
	} else {
		t.Logf("refusal: %s", tail(refusals[0], 400))
	}
	t.Logf("round 2, pi %s: %s, kernel %s", res[0].Serial, res[0].Verdict, kernelOf(res[0]))
	t.Logf("round 2, pi %s: %s (%s)", res[9].Serial, res[9].Verdict, res[9].Error)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
