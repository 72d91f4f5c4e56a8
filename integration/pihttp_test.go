package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/pisim"
	"github.com/racklet/racklet-boot/sign"
)

// TestPiHTTPBoot: signed OCI images built with racklet-image (a cosign key
// for the image, an RSA-2048 EEPROM key for boot.img), served by
// racklet-boot from an OCI layout. Simulated Pi 4s and 5s HTTP boot one URL
// for the whole rack (http://10.83.0.1/net_install/boot.sig, then boot.img):
// each gets its own node's image, checked against its signature; openssl
// accepts that signature too. A node whose image has no boot.sig gets a 404
// and the server says why; a Pi whose EEPROM holds another key refuses the
// image; Pis whose config.txt says boot_ramdisk=1 fetch <serial>/boot.img
// and boot.sig over TFTP.
func TestPiHTTPBoot(t *testing.T) {
	need(t, "ss", "busybox", "openssl")
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	dir := t.TempDir()
	sw := newSwitch(t)
	srvNS, rackNS := newHost(t, "pih"), newHost(t, "pihr")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.83.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, rackNS, "eth0", mustPrefix("")); err != nil {
		t.Fatal(err)
	}

	ri := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "racklet-image"), args...)
		cmd.Env = append(os.Environ(), "RACKLET_KEY_PASSWORD=racklet-test", "SOURCE_DATE_EPOCH=1700000000")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("racklet-image %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	base, err := imagetest.WriteLayout(filepath.Join(dir, "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cosignKey, bootKey, otherKey := filepath.Join(dir, "cosign"), filepath.Join(dir, "eeprom"), filepath.Join(dir, "other")
	ri("keygen", "--prefix", cosignKey)
	ri("keygen", "--prefix", bootKey, "--type", "rsa2048")
	ri("keygen", "--prefix", otherKey, "--type", "rsa2048")
	layout := filepath.Join(dir, "layout")
	// signed: boot.img signed with the EEPROM key; plain: no boot.sig;
	// ramdisk: signed, and its config.txt asks for boot_ramdisk=1.
	for _, b := range []struct{ tag, boot, config string }{
		{"signed", bootKey + ".key", ""}, {"plain", "", ""}, {"ramdisk", bootKey + ".key", "boot_ramdisk=1\n"},
	} {
		args := []string{"build", "--base", base, "--dir", filepath.Join(dir, b.tag)}
		if b.boot != "" {
			args = append(args, "--boot-key", b.boot)
		}
		if b.config != "" {
			args = append(args, "--config-txt", b.config)
		}
		ri(args...)
		ri("push", filepath.Join(dir, b.tag), "oci-layout:"+layout+":"+b.tag)
		ri("sign", "oci-layout:"+layout+":"+b.tag, "--key", cosignKey+".key")
	}

	// openssl accepts the build's boot.sig over boot.vfat (= boot.img).
	raw, err := os.ReadFile(filepath.Join(dir, "signed", image.BootSigFile))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := sign.ParseBootSig(raw)
	if err != nil {
		t.Fatal(err)
	}
	sigBin := writeFile(t, dir, "sig.bin", string(bs.RSA2048))
	if out, err := exec.Command("openssl", "dgst", "-sha256", "-verify", bootKey+".pub", "-signature", sigBin,
		filepath.Join(dir, "signed", image.BootFile)).CombinedOutput(); err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl dgst -verify boot.img: %v\n%s", err, out)
	}
	wantImg := map[string]string{}
	for _, tag := range []string{"signed", "ramdisk"} {
		m, err := image.ReadManifest(filepath.Join(dir, tag))
		if err != nil {
			t.Fatal(err)
		}
		wantImg[tag] = strings.TrimPrefix(m.Boot.Digest, "sha256:")
	}

	// The rack: four HTTP-boot Pis (seed 83; the fourth on the plain image)
	// and two TFTP boot_ramdisk Pis (seed 93).
	httpPis, err := pisim.NewMixedRack(4, 83)
	if err != nil {
		t.Fatal(err)
	}
	ramPis, err := pisim.NewMixedRack(2, 93)
	if err != nil {
		t.Fatal(err)
	}
	var nodes strings.Builder
	for i, p := range append(append([]*pisim.Pi{}, httpPis...), ramPis...) {
		tag := "signed"
		switch {
		case i == 3:
			tag = "plain"
		case i >= 4:
			tag = "ramdisk"
		}
		fmt.Fprintf(&nodes, "  - name: pi-%02d\n    kind: rpi%d\n    serial: \"%s\"\n    boot: {image: \"oci-layout:%s:%s\"}\n", i+1, p.Model, p.Name(), layout, tag)
	}
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.83.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.83.0.100, end: 10.83.0.200}
router: 10.83.0.1
leaseTime: 1h`, fmt.Sprintf(`trust:
  - repositories: ["oci-layout:%s"]
    keys: [{file: %s.pub}]
nodes:
%s`, layout, cosignKey, nodes.String())))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
	srv.waitOutput(t, "assigned images verified and cached", 60*time.Second)

	simulate := func(round string, n, seed int, args ...string) []*pisim.Result {
		t.Helper()
		args = append([]string{"simulate", "--interface", "eth0", "--nodes", fmt.Sprint(n), "--kind", "mixed",
			"--seed", fmt.Sprint(seed), "-o", "json", "--log-level", "warn"}, args...)
		cmd := rackNS.Command(ctx, filepath.Join(bin, "racklet-boot"), args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		runErr := cmd.Run()
		var res []*pisim.Result
		if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res) != n {
			t.Fatalf("%s: simulate: %v / %v\n%s\n%s", round, runErr, err, tail(out.String(), 3000), errb.String())
		}
		return res
	}
	fileSHA := func(r *pisim.Result, suffix string) string {
		for _, s := range r.Steps {
			if strings.HasSuffix(s.File, suffix) && s.SHA256 != "" {
				return s.SHA256
			}
		}
		return ""
	}
	httpArgs := []string{"--boot-order", "0xf7", "--http-host", "10.83.0.1", "--http-port", "80"}

	res := simulate("http boot", 4, 83, append(httpArgs, "--pubkey", bootKey+".pub")...)
	for i, r := range res {
		if i == 3 {
			if r.KernelLoaded || !strings.Contains(r.Error, "boot.sig") || !strings.Contains(r.Error, "not found") {
				t.Errorf("pi %s on the unsigned image: %s %q, want a boot.sig 404", r.Serial, r.Verdict, r.Error)
			}
			continue
		}
		if !r.KernelLoaded || r.Verdict != pisim.VerdictHTTPBootImg || fileSHA(r, "/net_install/boot.img") != wantImg["signed"] {
			t.Errorf("pi %s (Pi %d): %s %q, boot.img %s, want the signed image's %s\n%s", r.Serial, r.Model, r.Verdict, r.Error,
				fileSHA(r, "boot.img"), wantImg["signed"], r)
		}
	}
	if l := lines(srv.Output(), "without a boot signing key"); len(l) == 0 {
		t.Errorf("the server log never says why the plain image's boot.sig is missing")
	} else {
		t.Logf("server: %s", tail(l[0], 400))
	}
	t.Logf("http boot: %s", res[0])

	res = simulate("other eeprom key", 1, 83, append(httpArgs, "--pubkey", otherKey+".pub")...)
	if r := res[0]; r.KernelLoaded || !strings.Contains(r.Error, "boot.sig refused") {
		t.Errorf("pi %s with another EEPROM key: %s %q, want the image refused", r.Serial, r.Verdict, r.Error)
	}

	res = simulate("tftp boot_ramdisk", 2, 93, "--signed-boot", "--pubkey", bootKey+".pub")
	for _, r := range res {
		if !r.KernelLoaded || r.Verdict != pisim.VerdictBootImg || fileSHA(r, "boot.img") != wantImg["ramdisk"] {
			t.Errorf("pi %s (Pi %d) over TFTP: %s %q, boot.img %s, want %s\n%s", r.Serial, r.Model, r.Verdict, r.Error,
				fileSHA(r, "boot.img"), wantImg["ramdisk"], r)
		}
	}
}
