package disk_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	abdisk "github.com/racklet/racklet-boot/ab/disk"
	"github.com/racklet/racklet-boot/ab/pifw"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// Environment of the power-cut child: what it does (write or commit), on
// which disk, with which image, killed at which step (0: never).
const (
	childOp     = "RACKLET_ABDISK_CHILD"
	childDisk   = "RACKLET_ABDISK_DISK"
	childImage  = "RACKLET_ABDISK_IMAGE"
	childKillAt = "RACKLET_ABDISK_KILL_AT"
)

func TestMain(m *testing.M) {
	if op := os.Getenv(childOp); op != "" {
		os.Exit(powerCutChild(op))
	}
	os.Exit(m.Run())
}

// powerCutChild is the agent writing a slot or committing it; it prints
// each step's name before taking it and kills itself (SIGKILL: no deferred
// closes, no flush) at the configured one.
func powerCutChild(op string) int {
	killAt, _ := strconv.Atoi(os.Getenv(childKillAt))
	out := bufio.NewWriter(os.Stdout)
	o := abdisk.Options{Chunk: 1 << 20, Step: testutil.KillAt(killAt, func(name string) {
		fmt.Fprintln(out, name) // the step about to be taken, for the parent's log
		out.Flush()
	})}
	var err error
	switch op {
	case "write":
		var img abdisk.Image
		if err = json.Unmarshal([]byte(os.Getenv(childImage)), &img); err == nil {
			_, err = abdisk.WriteSlot(context.Background(), os.Getenv(childDisk), img, o)
		}
	case "commit":
		err = abdisk.Commit(context.Background(), os.Getenv(childDisk), 3, o)
	default:
		err = fmt.Errorf("unknown op %q", op)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// child runs op on disk; it returns whether the child was killed, and the
// last step it announced.
func (r *rig) child(op, disk string, killAt int) (bool, string) {
	r.t.Helper()
	out, killed := testutil.Reexec(r.t, childOp+"="+op, childDisk+"="+disk, childImage+"="+jsonImage(r.t, r.v2), fmt.Sprintf("%s=%d", childKillAt, killAt))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return killed, lines[len(lines)-1]
}

// copyDisk makes a sparse copy of a disk image.
func (r *rig) copyDisk(src string) string {
	r.t.Helper()
	dst := filepath.Join(r.t.TempDir(), "disk.img")
	run(r.t, "cp", "--sparse=always", src, dst)
	return dst
}

// TestPowerCutMatrix cuts the power (kills the agent with SIGKILL, and
// clears the firmware's flags) at every write step of an update and of its
// commit, on a real disk image. After each cut the disk's partition table
// is intact (sfdisk -d), its FAT partitions pass fsck.vfat -n, and the
// firmware model boots a whole image; the agent, run again, finishes the
// update and the tryboot boots the new image.
func TestPowerCutMatrix(t *testing.T) {
	r := newRig(t)
	cuts := 0
	for k := 1; k < 100; k++ {
		disk := r.copyDisk(r.disk)
		killed, step := r.child("write", disk, k)
		if !killed {
			break
		}
		var pi pifw.Pi // the power cut: whatever the firmware kept is gone
		if name, slot := r.boots(disk, &pi, r.both()); name != "v1" || slot != 0 {
			t.Fatalf("cut before %q: boots %s in slot %d, want v1 in A", step, name, slot)
		}
		if again, _ := r.child("write", disk, 0); again {
			t.Fatal("the resumed write was killed")
		}
		pi.Reboot("0 tryboot")
		if name, slot := r.boots(disk, &pi, r.both()); name != "v2" || slot != 1 {
			t.Fatalf("cut before %q, then resumed: the tryboot runs %s in slot %d", step, name, slot)
		}
		t.Logf("write: cut before %-20q boots v1; resumed, tryboot boots v2", step)
		cuts++
	}
	written := r.copyDisk(r.disk)
	if killed, _ := r.child("write", written, 0); killed {
		t.Fatal("write killed")
	}
	for k := 1; k < 100; k++ {
		disk := r.copyDisk(written)
		killed, step := r.child("commit", disk, k)
		if !killed {
			break
		}
		var pi pifw.Pi
		name, _ := r.boots(disk, &pi, r.both())
		if again, _ := r.child("commit", disk, 0); again {
			t.Fatal("the resumed commit was killed")
		}
		if after, slot := r.boots(disk, &pi, r.both()); after != "v2" || slot != 1 {
			t.Fatalf("cut before %q, then resumed: boots %s in slot %d", step, after, slot)
		}
		t.Logf("commit: cut before %-20q boots %s; resumed, boots v2", step, name)
		cuts++
	}
	if cuts < 10 {
		t.Fatalf("only %d power cuts made", cuts)
	}
}
