package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/racklet/racklet-boot/ab/pifw"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestDiskModeUpdate: disk mode end to end with the commands a disk-booted
// Pi runs. racklet-image builds v1 with its A/B disk and v2 without one,
// both with the rack's disk id; v1's disk is flashed to a file.
// `racklet-agent disk write` puts v2 into slot B (boot-b.vfat, whose
// cmdline names root 6 of this disk, and the root with its verity tree);
// the partition table is as written (sfdisk), both FAT partitions pass
// fsck.vfat, the Pi firmware model boots v1 normally and v2 on a tryboot;
// `disk commit` of partition 3 makes v2 the committed slot; the next
// update (v1 again) goes to slot A.
func TestDiskModeUpdate(t *testing.T) {
	for _, tool := range []string{"busybox", "sfdisk", "fsck.vfat", "mcopy"} {
		testutil.NeedTool(t, tool)
	}
	dir := t.TempDir()
	base, err := imagetest.WriteLayout(filepath.Join(dir, "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake, err := imagetest.FakeAgent(dir, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	const id = "1a2b3c4d"
	sizes := []string{"--control-size", fmt.Sprint(64 << 20), "--boot-slot-size", fmt.Sprint(80 << 20), "--root-slot-size", fmt.Sprint(16 << 20), "--data-size", fmt.Sprint(4 << 20)}
	v1, v2 := filepath.Join(dir, "v1"), filepath.Join(dir, "v2")
	for _, b := range []struct {
		out, tag string
		extra    []string
	}{{v1, "v1", append([]string{"--disk"}, sizes...)}, {v2, "v2", nil}} {
		over := filepath.Join(dir, "overlay-"+b.tag)
		writeFile(t, over, "etc/racklet-version", b.tag+"\n")
		runImage(t, append([]string{"build", "--base", base, "--agent", fake, "--overlay", over, "--disk-id", id, "--dir", b.out}, b.extra...)...)
	}
	m1, err := image.ReadManifest(v1)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := image.ReadManifest(v2)
	if err != nil {
		t.Fatal(err)
	}
	if m1.Disk == nil || m1.Disk.DiskID != id || m2.BootB == nil || m2.Disk != nil {
		t.Fatalf("v1 disk %+v, v2 slot B %+v disk %+v: want v1's disk with id %s, v2 with both boot partitions and no disk", m1.Disk, m2.BootB, m2.Disk, id)
	}
	disk := filepath.Join(dir, "disk.img")
	unzstd(t, filepath.Join(v1, image.DiskFile), disk)

	agent := filepath.Join(bin, "racklet-agent")
	ra := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(agent, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("racklet-agent %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	inspect := func() (committed string, autoboot []byte) {
		t.Helper()
		var st struct{ Committed, Autoboot string }
		if err := json.Unmarshal([]byte(ra("disk", "inspect", disk, "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		return st.Committed, []byte(st.Autoboot)
	}
	table := sfdiskTable(t, disk)
	// boots returns what the firmware model boots next: the partition and
	// the root digest its cmdline names.
	boots := func(pi *pifw.Pi) (int, string) {
		t.Helper()
		_, ab := inspect()
		b, err := pi.Boot(ab)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("mcopy", "-n", "-i", fmt.Sprintf("%s@@%d", disk, table[b.Partition]), "::cmdline.txt", "-").Output()
		if err != nil {
			t.Fatalf("cmdline.txt of partition %d: %v", b.Partition, err)
		}
		root := "?"
		for _, w := range strings.Fields(string(out)) {
			if r, ok := strings.CutPrefix(w, "racklet.root="); ok {
				root = r
			}
			if dev, ok := strings.CutPrefix(w, "racklet.rootdev="); ok && dev != fmt.Sprintf("PARTUUID=%s-%02x", id, b.Partition+3) {
				t.Errorf("partition %d's cmdline names %s, want root %d of disk %s", b.Partition, dev, b.Partition+3, id)
			}
		}
		return b.Partition, root
	}
	var pi pifw.Pi
	if c, _ := inspect(); c != "A" {
		t.Fatalf("a fresh disk commits slot %s, want A", c)
	}
	if p, root := boots(&pi); p != 2 || root != m1.Root.Digest {
		t.Fatalf("the fresh disk boots partition %d with root %s, want 2 with v1's", p, root)
	}

	t.Log(strings.TrimSpace(ra("disk", "write", disk, "--image", v2)))
	if after := sfdiskTable(t, disk); fmt.Sprint(after) != fmt.Sprint(table) {
		t.Errorf("partition table changed: %v, was %v", after, table)
	}
	fsckPart(t, disk, table, 3)
	fsckPart(t, disk, table, 2)
	root6 := readAt(t, disk, table[6], m2.Root.Size)
	if want, _ := os.ReadFile(filepath.Join(v2, image.RootFile)); !bytes.Equal(root6, want) {
		t.Error("root partition 6 does not hold v2's root.squashfs")
	}
	if p, root := boots(&pi); p != 2 || root != m1.Root.Digest {
		t.Errorf("after the write, a normal boot runs partition %d (%s), want v1's 2", p, root)
	}
	pi.Reboot("0 tryboot")
	if p, root := boots(&pi); p != 3 || root != m2.Root.Digest {
		t.Fatalf("the tryboot runs partition %d with root %s, want 3 with v2's", p, root)
	}
	// No commit yet: a crash or power cut boots v1 again.
	if p, _ := boots(&pi); p != 2 {
		t.Errorf("the boot after the tryboot runs partition %d, want 2 (not committed)", p)
	}

	// The healthy report came: commit what the tryboot booted (partition 3).
	t.Log(strings.TrimSpace(ra("disk", "commit", disk, "--booted", "3")))
	if c, _ := inspect(); c != "B" {
		t.Fatalf("after commit slot %s is committed, want B", c)
	}
	if p, root := boots(&pi); p != 3 || root != m2.Root.Digest {
		t.Errorf("after commit a normal boot runs partition %d (%s), want v2's 3", p, root)
	}
	fsckPart(t, disk, table, 1)
	ra("disk", "commit", disk, "--booted", "3") // again: a no-op

	// The next update goes to slot A.
	if out := ra("disk", "write", disk, "--image", v1); !strings.Contains(out, "slot A written") {
		t.Errorf("the next write: %q, want slot A", out)
	}
	pi.Reboot("0 tryboot")
	if p, root := boots(&pi); p != 2 || root != m1.Root.Digest {
		t.Errorf("the next tryboot runs partition %d (%s), want v1's 2", p, root)
	}
}

// unzstd decompresses src into dst.
func unzstd(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dec, err := zstd.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := dec.WriteTo(out); err != nil {
		t.Fatal(err)
	}
}

// sfdiskTable reads the partition table with sfdisk: byte offsets by
// partition number.
func sfdiskTable(t *testing.T, disk string) map[int]int64 {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", disk).Output()
	if err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	var pt struct {
		PartitionTable struct {
			ID         string `json:"id"`
			Partitions []struct {
				Node  string `json:"node"`
				Start int64  `json:"start"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &pt); err != nil {
		t.Fatal(err)
	}
	parts := map[int]int64{}
	for _, p := range pt.PartitionTable.Partitions {
		var n int
		fmt.Sscanf(p.Node[len(disk):], "%d", &n)
		parts[n] = p.Start * 512
	}
	return parts
}

// fsckPart runs fsck.vfat -n on a FAT partition of the disk (copied out up
// to where the next entry of the table starts).
func fsckPart(t *testing.T, disk string, table map[int]int64, part int) {
	t.Helper()
	size := table[part+1] - table[part]
	img := filepath.Join(t.TempDir(), fmt.Sprintf("part%d.vfat", part))
	if err := os.WriteFile(img, readAt(t, disk, table[part], size), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n partition %d: %v\n%s", part, err, out)
	}
}

func readAt(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}
