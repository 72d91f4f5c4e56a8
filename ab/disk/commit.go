package disk

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/racklet/racklet-boot/bootparams"
)

// checkRootDev reads cmdline.txt from a boot partition image and checks it
// mounts the root partition the image is written beside.
func checkRootDev(bootImage, want string) error {
	f, err := os.Open(bootImage)
	if err != nil {
		return fmt.Errorf("open boot image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open boot image: %w", err)
	}
	line, err := readFAT(f, 0, fi.Size(), "cmdline.txt", 4096)
	if err != nil {
		return fmt.Errorf("boot image %s: %w", bootImage, err)
	}
	p, _, err := bootparams.Parse(string(line))
	if err != nil {
		return fmt.Errorf("boot image %s: %w", bootImage, err)
	}
	if p.RootDev != want {
		return fmt.Errorf("boot image %s mounts racklet.rootdev=%q, this slot is %s: %w (build the image with this disk's id, and give the agent the boot image of this slot)",
			bootImage, p.RootDev, want, ErrWrongSlot)
	}
	return nil
}

// Commit makes the trial slot the committed one, after the node booted it
// (from partition booted, as the firmware reports it) and reported healthy:
// autoboot.txt is rewritten in place, one sector, with [all] and [tryboot]
// swapped.
func Commit(ctx context.Context, dev string, booted int, o Options) error {
	o = o.withDefaults()
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	st, err := inspect(f, o.Layout)
	if err != nil {
		return err
	}
	l := o.Layout
	if booted == l.Boot[st.Committed] {
		return nil // already committed (a commit that completed before a crash)
	}
	if booted != l.Boot[st.Trial()] {
		return fmt.Errorf("commit: the node booted partition %d, the trial slot is partition %d", booted, l.Boot[st.Trial()])
	}
	content, err := Autoboot(l.Boot[st.Trial()], l.Boot[st.Committed], len(st.Autoboot))
	if err != nil {
		return err
	}
	sector := make([]byte, SectorSize)
	if _, err := f.ReadAt(sector, st.autobootOffset); err != nil {
		return fmt.Errorf("read autoboot.txt: %w", err)
	}
	copy(sector, content)
	o.Step("commit autoboot.txt")
	if _, err := f.WriteAt(sector, st.autobootOffset); err != nil {
		return fmt.Errorf("rewrite autoboot.txt: %w", err)
	}
	o.Step("commit sync")
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync autoboot.txt: %w", err)
	}
	back := make([]byte, len(content))
	if _, err := f.ReadAt(back, st.autobootOffset); err != nil || !bytes.Equal(back, content) {
		return fmt.Errorf("autoboot.txt does not read back what was written (%v): %w", err, ErrVerify)
	}
	o.Logger.Info("committed", "partition", booted)
	return nil
}
