package disk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/bootparams"
)

// Layout numbers the partitions of an A/B disk; slot 0 is A, 1 is B.
type Layout struct {
	Control int    // holds autoboot.txt
	Boot    [2]int // boot partitions of slots A and B
	Root    [2]int // root partitions of slots A and B
}

// DefaultLayout is image/disk's layout.
var DefaultLayout = Layout{Control: 1, Boot: [2]int{2, 3}, Root: [2]int{5, 6}}

// Blob is one file of a signed image as the agent has it, with the digest
// its verified manifest pins.
type Blob struct {
	Path   string
	Size   int64
	Digest string // "sha256:<hex>"
}

// Image is what WriteSlot writes: the boot partition image made for each
// slot (their cmdline.txt name that slot's root partition with
// racklet.rootdev), the root squashfs and its verity tree, which goes at
// VerityOffset in the root partition.
type Image struct {
	Boot         [2]Blob
	Root, Verity Blob
	VerityOffset int64
}

// Options tune WriteSlot and Commit.
type Options struct {
	Layout Layout // default DefaultLayout
	// Chunk is the size of each write (default 4 MiB).
	Chunk int64
	// Step, when set, is called before each write step with its name;
	// power-cut tests kill the process there.
	Step   func(name string)
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Layout == (Layout{}) {
		o.Layout = DefaultLayout
	}
	if o.Chunk <= 0 {
		o.Chunk = 4 << 20
	}
	if o.Step == nil {
		o.Step = func(string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// State is an A/B disk as autoboot.txt describes it.
type State struct {
	Table Table
	// Committed is the slot [all] boots; the other is the trial slot,
	// which [tryboot] boots.
	Committed int
	// autoboot.txt: its content, and where its one data sector is.
	Autoboot       []byte
	autobootOffset int64
}

// Trial is the slot a new image goes to.
func (s State) Trial() int { return 1 - s.Committed }

// Inspect reads the partition table and autoboot.txt of the A/B disk at
// dev (a block device or an image file).
func Inspect(dev string, o Options) (State, error) {
	o = o.withDefaults()
	f, err := os.Open(dev)
	if err != nil {
		return State{}, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	return inspect(f, o.Layout)
}

func inspect(f *os.File, l Layout) (State, error) {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return State{}, fmt.Errorf("size of disk %s: %w", f.Name(), err)
	}
	t, err := ReadTable(f, size)
	if err != nil {
		return State{}, fmt.Errorf("disk %s: %w", f.Name(), err)
	}
	for _, n := range []int{l.Control, l.Boot[0], l.Boot[1], l.Root[0], l.Root[1]} {
		if _, ok := t.Part(n); !ok {
			return State{}, fmt.Errorf("disk %s: %w: no partition %d: not an A/B disk", f.Name(), ErrTable, n)
		}
	}
	ctl, _ := t.Part(l.Control)
	v, err := openFAT(f, ctl.Offset(), ctl.Bytes())
	if err != nil {
		return State{}, fmt.Errorf("boot control partition %d: %w", l.Control, err)
	}
	file, err := v.find("autoboot.txt")
	if err != nil {
		return State{}, fmt.Errorf("boot control partition %d: %w", l.Control, err)
	}
	if file.size > AutobootMax {
		return State{}, fmt.Errorf("autoboot.txt is %d bytes: the firmware reads at most %d", file.size, AutobootMax)
	}
	ext, err := v.extents(file.cluster, file.size)
	if err != nil {
		return State{}, fmt.Errorf("autoboot.txt: %w", err)
	}
	content, err := v.read(ext)
	if err != nil {
		return State{}, err
	}
	committed, trial, err := parseAutoboot(content)
	if err != nil {
		return State{}, err
	}
	s := State{Table: t, Autoboot: content, autobootOffset: ext[0].off}
	switch {
	case committed == l.Boot[0] && trial == l.Boot[1]:
		s.Committed = 0
	case committed == l.Boot[1] && trial == l.Boot[0]:
		s.Committed = 1
	default:
		return State{}, fmt.Errorf("autoboot.txt boots partitions %d and %d, not this layout's %d and %d", committed, trial, l.Boot[0], l.Boot[1])
	}
	return s, nil
}

// ErrVerify means a slot did not read back what was written.
var ErrVerify = errors.New("slot does not read back the image")

// ErrWrongSlot means an image's boot partition was not made for the slot (or disk) it would go to.
var ErrWrongSlot = errors.New("boot image names another root partition")

// WriteSlot writes img into the disk's trial (inactive) slot, syncs it and
// verifies it by reading it back, and returns the slot (0 A, 1 B). Nothing
// the firmware reads on a normal boot is touched: a power cut at any point
// leaves the committed slot booting as before.
func WriteSlot(ctx context.Context, dev string, img Image, o Options) (int, error) {
	o = o.withDefaults()
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open disk: %w", err)
	}
	defer f.Close()
	st, err := inspect(f, o.Layout)
	if err != nil {
		return 0, err
	}
	slot := st.Trial()
	boot, _ := st.Table.Part(o.Layout.Boot[slot])
	root, _ := st.Table.Part(o.Layout.Root[slot])
	bootImg := img.Boot[slot]
	if err := checkRootDev(bootImg.Path, bootparams.PartUUID(st.Table.DiskID, root.Number)); err != nil {
		return 0, err
	}
	spans := []span{
		{name: "boot", blob: bootImg, off: boot.Offset(), room: boot.Bytes()},
		{name: "root", blob: img.Root, off: root.Offset(), room: img.VerityOffset},
		{name: "verity", blob: img.Verity, off: root.Offset() + img.VerityOffset, room: root.Bytes() - img.VerityOffset},
	}
	for _, s := range spans {
		if s.blob.Size > s.room || s.room < 0 {
			return 0, fmt.Errorf("%s of %d bytes does not fit its %d bytes in slot %c", s.name, s.blob.Size, s.room, 'A'+slot)
		}
	}
	o.Logger.Info("writing the inactive slot", "slot", string(rune('A'+slot)), "boot", boot.Number, "root", root.Number)
	for _, s := range spans {
		if err := s.write(ctx, f, o); err != nil {
			return 0, err
		}
	}
	o.Step("sync")
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync disk: %w", err)
	}
	o.Step("verify")
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // read the disk, not the page cache
	for _, s := range spans {
		if err := s.verify(f); err != nil {
			return 0, err
		}
	}
	return slot, nil
}

// span is one blob and where it goes on the disk.
type span struct {
	name      string
	blob      Blob
	off, room int64
}

func (s span) write(ctx context.Context, f *os.File, o Options) error {
	src, err := os.Open(s.blob.Path)
	if err != nil {
		return fmt.Errorf("open %s image: %w", s.name, err)
	}
	defer src.Close()
	buf := make([]byte, o.Chunk)
	for done := int64(0); done < s.blob.Size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(o.Chunk, s.blob.Size-done)
		if _, err := io.ReadFull(src, buf[:n]); err != nil {
			return fmt.Errorf("read %s image: %w", s.name, err)
		}
		o.Step(fmt.Sprintf("write %s @%d", s.name, done))
		if _, err := f.WriteAt(buf[:n], s.off+done); err != nil {
			return fmt.Errorf("write %s: %w", s.name, err)
		}
		done += n
	}
	return nil
}

func (s span) verify(f *os.File) error {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, s.off, s.blob.Size)); err != nil {
		return fmt.Errorf("read back %s: %w", s.name, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != s.blob.Digest {
		return fmt.Errorf("%s reads back as %s, the manifest pins %s: %w", s.name, got, s.blob.Digest, ErrVerify)
	}
	return nil
}
