package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
)

var (
	imageBinOnce sync.Once
	imageBin     string
	imageBinErr  error
)

// rackletImage builds cmd/racklet-image once per run and returns its path.
func rackletImage(t *testing.T) string {
	t.Helper()
	imageBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "racklet-image-bin-")
		if err != nil {
			imageBinErr = err
			return
		}
		imageBin = filepath.Join(dir, "racklet-image")
		out, err := exec.Command("go", "build", "-o", imageBin, "../cmd/racklet-image").CombinedOutput()
		if err != nil {
			imageBinErr = fmt.Errorf("build racklet-image: %v\n%s", err, out)
		}
	})
	if imageBinErr != nil {
		t.Fatal(imageBinErr)
	}
	return imageBin
}

// runImage runs racklet-image with a bound on time and returns its stdout.
func runImage(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rackletImage(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("racklet-image %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestImageBuildPushPullFlash drives the racklet-image CLI end to end against real peers:
// docker-registry and skopeo for OCI, sfdisk, veritysetup and fsck.vfat for the flashed disk.
func TestImageBuildPushPullFlash(t *testing.T) {
	for _, tool := range []string{"busybox", "docker-registry", "skopeo", "sfdisk", "veritysetup", "fsck.vfat"} {
		testutil.NeedTool(t, tool)
	}
	work := t.TempDir()
	base, err := imagetest.WriteLayout(filepath.Join(work, "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "out")
	runImage(t, "build", "--base", base, "--platform", "linux/arm64", "--output", out, "--disk", "--copy-slot-b",
		"--root-slot-size", "16777216", "--boot-slot-size", "83886080")
	var m image.Manifest
	if err := json.Unmarshal([]byte(runImage(t, "inspect", out, "-o", "json")), &m); err != nil {
		t.Fatal(err)
	}
	if m.Verity.RootHash == "" || m.Disk == nil {
		t.Fatalf("manifest lacks root hash or disk: %+v", m)
	}

	reg := imagetest.StartRegistry(t)
	ref := reg + "/racklet/it:v1"
	runImage(t, "push", "--insecure", out, ref)
	raw, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--raw", "docker://"+ref).Output()
	if err != nil || !bytes.Contains(raw, []byte(`"artifactType":"application/vnd.racklet.image.v1"`)) {
		t.Fatalf("skopeo inspect --raw: %v\n%s", err, raw)
	}
	pulled := filepath.Join(work, "pulled")
	runImage(t, "pull", "--insecure", ref, pulled)
	if got := runImage(t, "inspect", "--insecure", ref); !strings.Contains(got, m.Verity.RootHash) {
		t.Errorf("inspect of the registry copy lacks the root hash:\n%s", got)
	}
	runImage(t, "build", "--base", base, "--push", reg+"/racklet/it:direct", "--insecure")

	dev := filepath.Join(work, "sdcard")
	runImage(t, "flash", filepath.Join(pulled, image.DiskFile), dev)
	dump, err := exec.Command("sfdisk", "-d", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -d: %v\n%s", err, dump)
	}
	if !strings.Contains(string(dump), "label-id: 0x"+m.Disk.DiskID) || strings.Count(string(dump), "type=83") != 3 {
		t.Errorf("sfdisk sees an unexpected table:\n%s", dump)
	}
	for _, n := range []int{5, 6} {
		p := m.Disk.Partitions[n-2]
		part := extractPart(t, dev, p.Start*512, p.Size*512)
		o, err := exec.Command("veritysetup", "verify", fmt.Sprintf("--hash-offset=%d", m.Verity.Offset),
			fmt.Sprintf("--data-blocks=%d", m.Verity.DataBlocks), part, part, m.Verity.RootHash).CombinedOutput()
		if err != nil {
			t.Errorf("veritysetup verify of root slot %d: %v\n%s", n, err, o)
		}
	}
	if o, err := exec.Command("fsck.vfat", "-n", extractPart(t, dev, m.Disk.Partitions[1].Start*512, m.Disk.Partitions[1].Size*512)).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat of boot A: %v\n%s", err, o)
	}
}

func extractPart(t *testing.T, dev string, off, size int64) string {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := filepath.Join(t.TempDir(), "part")
	o, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.Copy(o, io.NewSectionReader(f, off, size)); err != nil {
		t.Fatal(err)
	}
	return p
}
