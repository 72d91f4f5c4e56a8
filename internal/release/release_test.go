package release

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/ociref"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/sign"
)

// TestRelease makes a release of racklet-boot and racklet-image for amd64
// and arm64 into a temp dir and checks it with other tools: sha256sum
// checks SHA256SUMS, the binaries are static ELF files for their
// machines, the SBOM reads back as SPDX 2.3 with the modules go.mod pins,
// and the image's signature verifies with the released racklet-image (a
// key that did not sign it is refused) and, pushed to a registry by it,
// with cosign.
func TestRelease(t *testing.T) {
	goBin := testutil.NeedTool(t, "go")
	sha256sum := testutil.NeedTool(t, "sha256sum")
	cosign := testutil.NeedTool(t, "cosign")
	skopeo := testutil.NeedTool(t, "skopeo")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	work := t.TempDir()
	const pass = "release pass"
	for _, k := range []string{"release", "other"} {
		priv, err := sign.GenerateKey(sign.ECDSAP256)
		if err != nil {
			t.Fatal(err)
		}
		if err := sign.WriteKeyPair(filepath.Join(work, k), priv, []byte(pass), false); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := sign.LoadPrivateKey(filepath.Join(work, "release.key"), []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	reg := imagetest.StartRegistry(t)
	identity := reg + "/racklet/racklet-boot"
	dist := filepath.Join(work, "dist")
	res, err := Build(ctx, Options{
		Dir: dist, Version: "v0.0.0-test", Commands: []string{"racklet-boot", "racklet-image"},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Signer: signer, Identity: identity,
		Source: "../..", Go: goBin,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Binaries) != 4 {
		t.Fatalf("%d binaries, want 4: %+v", len(res.Binaries), res.Binaries)
	}

	// SHA256SUMS, as sha256sum checks it.
	c := exec.CommandContext(ctx, sha256sum, "--check", "--strict", ChecksumsFile)
	c.Dir = dist
	if out, err := c.CombinedOutput(); err != nil || strings.Count(string(out), ": OK") != 5 {
		t.Errorf("sha256sum --check: %v\n%s", err, out)
	}

	// Static binaries for their machines.
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, b := range res.Binaries {
		f, err := elf.Open(filepath.Join(dist, b.File))
		if err != nil {
			t.Fatalf("%s: %v", b.File, err)
		}
		arch := b.Platform[strings.Index(b.Platform, "/")+1:]
		if f.Machine != machine[arch] {
			t.Errorf("%s: machine %s, want %s", b.File, f.Machine, machine[arch])
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%s)", b.File, p.Type)
			}
		}
		f.Close()
	}
	host := filepath.Join(dist, "racklet-image_linux_"+runtime.GOARCH)
	if out, err := exec.CommandContext(ctx, filepath.Join(dist, "racklet-boot_linux_"+runtime.GOARCH), "version").Output(); err != nil || !strings.HasPrefix(string(out), "racklet-boot v0.0.0-test") {
		t.Errorf("released racklet-boot version: %v %q", err, out)
	}

	// The SBOM: SPDX 2.3, each binary with its checksum, the modules go.mod pins.
	f, err := os.Open(filepath.Join(dist, res.SBOM))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := spdxjson.Read(f)
	f.Close()
	if err != nil {
		t.Fatalf("read the SBOM back: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || len(doc.Files) != 4 {
		t.Errorf("SBOM: %s with %d files", doc.SPDXVersion, len(doc.Files))
	}
	sums, _ := os.ReadFile(filepath.Join(dist, ChecksumsFile))
	for _, file := range doc.Files {
		if len(file.Checksums) != 1 || !strings.Contains(string(sums), file.Checksums[0].Value+"  "+strings.TrimPrefix(file.FileName, "./")) {
			t.Errorf("SBOM file %s: checksum %v not in SHA256SUMS", file.FileName, file.Checksums)
		}
	}
	for _, mod := range []string{"github.com/spf13/cobra", "github.com/google/go-containerregistry", "go.etcd.io/bbolt"} {
		c := exec.CommandContext(ctx, goBin, "list", "-m", "-f", "{{.Version}}", mod)
		c.Dir = "../.."
		v, err := c.Output()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range doc.Packages {
			found = found || p.PackageName == mod && p.PackageVersion == strings.TrimSpace(string(v))
		}
		if !found {
			t.Errorf("SBOM lacks %s %s", mod, v)
		}
	}

	// The signature, with the released racklet-image, then cosign.
	env := append(os.Environ(), "HOME="+work, "TUF_ROOT="+filepath.Join(work, "tuf"), "COSIGN_PASSWORD="+pass,
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1,localhost")
	tool := func(bin string, args ...string) (string, int) {
		c := exec.CommandContext(ctx, bin, args...)
		c.Env = env
		var b bytes.Buffer
		c.Stdout, c.Stderr = &b, &b
		err := c.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return b.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", bin, err)
		}
		return b.String(), 0
	}
	if out, code := tool(host, "verify", res.ImageRef, "--key", filepath.Join(work, "release.pub")); code != 0 || !strings.Contains(out, res.Digest.String()) {
		t.Errorf("racklet-image verify of the release: exit %d\n%s", code, out)
	}
	if out, code := tool(host, "verify", res.ImageRef, "--key", filepath.Join(work, "other.pub")); code != 77 {
		t.Errorf("racklet-image verify with a key that did not sign: exit %d, want 77\n%s", code, out)
	}
	ref := identity + ":v0.0.0-test"
	if err := Push(ctx, res, dist, ref, ociref.Options{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	if out, code := tool(skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+ref); code != 0 ||
		!strings.Contains(out, `"architecture":"amd64"`) || !strings.Contains(out, `"architecture":"arm64"`) {
		t.Errorf("skopeo inspect --raw of the pushed index: exit %d\n%s", code, out)
	}
	if out, code := tool(cosign, "verify", "--key", filepath.Join(work, "release.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", identity+"@"+res.Digest.String()); code != 0 {
		t.Errorf("cosign verify of the released image: exit %d\n%s", code, out)
	}
}
