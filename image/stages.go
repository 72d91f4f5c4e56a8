package image

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/image/disk"
	"github.com/racklet/racklet-boot/image/fat"
	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/image/squashfs"
	"github.com/racklet/racklet-boot/image/verity"
	"github.com/racklet/racklet-boot/kube/profile"
	"github.com/racklet/racklet-boot/sign"
)

// writeRoot writes root.squashfs and root.verity.
func writeRoot(ctx context.Context, tree *flatten.Tree, spec Spec, work string, m *Manifest, epoch int64, log *slog.Logger, prog Progress) error {
	prog("write squashfs", 0, 0)
	f, err := os.Create(filepath.Join(work, RootFile))
	if err != nil {
		return fmt.Errorf("create root squashfs: %w", err)
	}
	defer f.Close()
	st, err := squashfs.Write(ctx, f, tree, squashfs.Options{
		Compression: squashfs.Compression(spec.Compression), Level: spec.Level, BlockSize: spec.BlockSize, ModTime: epoch,
	})
	if err != nil {
		return fmt.Errorf("write root squashfs: %w", err)
	}
	log.Info("root squashfs written", "bytes", st.Size, "inodes", st.Inodes)
	prog("write verity", 0, 0)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read root squashfs: %w", err)
	}
	vf, err := os.Create(filepath.Join(work, VerityFile))
	if err != nil {
		return fmt.Errorf("create verity tree: %w", err)
	}
	defer vf.Close()
	var uuid [16]byte
	copy(uuid[:], derive(m.InputDigest, "verity uuid", 16))
	uuid[6] = uuid[6]&0x0f | 0x40
	uuid[8] = uuid[8]&0x3f | 0x80
	vr, err := verity.Build(ctx, f, st.Size, vf, verity.Options{Salt: derive(m.InputDigest, "verity salt", 32), UUID: uuid})
	if err != nil {
		return fmt.Errorf("build verity tree: %w", err)
	}
	if err := vf.Sync(); err != nil {
		return fmt.Errorf("write verity tree: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write root squashfs: %w", err)
	}
	if m.Root.Blob, err = blobOf(work, RootFile); err != nil {
		return err
	}
	m.Root.Compression, m.Root.BlockSize, m.Root.Inodes = spec.Compression, spec.BlockSize, st.Inodes
	if m.Verity.Blob, err = blobOf(work, VerityFile); err != nil {
		return err
	}
	m.Verity.Algorithm, m.Verity.RootHash, m.Verity.Salt = "sha256", vr.RootHashHex(), hex.EncodeToString(vr.Salt)
	m.Verity.UUID, m.Verity.DataBlocks, m.Verity.Offset = vr.UUIDString(), vr.DataBlocks, disk.VerityOffset(st.Size)
	log.Info("verity tree written", "root_hash", m.Verity.RootHash)
	return nil
}

// cmdlineFor renders the command line for a root slot (5 is A, 6 is B) of a boot partition
// that a Pi firmware (pi) or a generic loader boots.
func cmdlineFor(spec Spec, m *Manifest, part int, pi bool, kernel string) (string, error) {
	slot := "a"
	if part == 6 {
		slot = "b"
	}
	p, err := spec.Node.params()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSpec, err)
	}
	p.RootHash, p.Salt, p.DataBlocks = m.Verity.RootHash, m.Verity.Salt, m.Verity.DataBlocks
	p.Root, p.Verity = m.Root.Digest, m.Verity.Digest
	// The agent measures the kernel as racklet-boot serves it under this name.
	p.Kernel = kernel
	// A slotted build names each boot partition's own root partition (racklet.rootdev),
	// which ab/disk checks before writing a slot. racklet.hashoffset stays 0: over the
	// network the tree is root.verity itself; on a disk it sits at Verity.Offset of the
	// root partition (the manifest's), which a disk-booting initramfs has to be told apart.
	id := spec.diskID(m.InputDigest)
	if spec.slotted() {
		p.RootDev = bootparams.PartUUID(id, part)
	}
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("kernel command line: %w", err)
	}
	line, err := RenderCmdline(spec.Cmdline, CmdlineVars{
		RootHash: m.Verity.RootHash, Salt: m.Verity.Salt, Slot: slot,
		RootDevice: bootparams.PartUUID(id, part),
		DataBlocks: m.Verity.DataBlocks, DataSectors: m.Verity.DataBlocks * 8,
		VerityOffset: uint64(m.Verity.Offset), HashStartBlock: uint64(m.Verity.Offset)/verity.BlockSize + 1,
		KernelVersion: m.KernelVersion, Console: consoleFor(spec.Platform, pi), Racklet: p.String(),
	})
	if err != nil || spec.Kubernetes == nil {
		return line, err
	}
	return line + " " + strings.Join(profile.CmdlineArgs, " "), nil
}

// consoleFor is the console= words of a platform, the serial line last (/dev/console).
func consoleFor(platform string, pi bool) string {
	switch {
	case pi:
		return "console=tty1 console=serial0,115200"
	case strings.HasPrefix(platform, "linux/amd64") || strings.HasPrefix(platform, "linux/386"):
		return "console=tty0 console=ttyS0,115200"
	}
	return "console=tty0 console=ttyAMA0,115200"
}

// writeBoot writes boot.vfat: the boot directory's files with the kernel and racklet's
// initramfs (initrd) under the names of the boot layout, config.txt for a Pi, and
// cmdline.txt. m.Boot.Initramfs holds what Build knows of the initramfs; the names, sizes
// and digests are filled in here.
func writeBoot(ctx context.Context, tree *flatten.Tree, spec Spec, work string, m *Manifest, initrd []byte, epoch int64, log *slog.Logger, prog Progress) error {
	prog("write boot partition", 0, 0)
	dir, _, err := bootDir(tree, spec.BootDir)
	if err != nil {
		return err
	}
	files, config, err := bootFiles(tree, dir)
	if err != nil {
		return err
	}
	if spec.ConfigTxt != "" {
		config = []byte(spec.ConfigTxt)
	}
	l, files, config, err := layoutBoot(tree, dir, files, config, spec, m.KernelVersion)
	if err != nil {
		return err
	}
	for _, f := range files {
		if f.Path == l.kernel {
			b, err := fileBlob(f)
			if err != nil {
				return fmt.Errorf("read kernel %s: %w", f.Path, err)
			}
			m.Boot.Kernel = &b
		}
	}
	if m.Boot.Initramfs == nil {
		m.Boot.Initramfs = &InitramfsInfo{}
	}
	m.Boot.Initramfs.Blob = Blob{File: l.initramfs, Size: int64(len(initrd)), Digest: digestOf(initrd)}
	cmd, err := cmdlineFor(spec, m, 5, l.pi, l.kernel)
	if err != nil {
		return err
	}
	m.Cmdline = cmd
	if !l.pi {
		var kf fat.File
		for _, f := range files {
			if f.Path == l.kernel {
				kf = f
			}
		}
		_, arch, _ := strings.Cut(spec.Platform, "/")
		arch, _, _ = strings.Cut(arch, "/")
		u, err := unifiedImage(tree, arch, kf, initrd, cmd)
		if err != nil {
			return err
		}
		if u != nil {
			b, err := fileBlob(*u)
			if err != nil {
				return err
			}
			m.Boot.UKI = &b
			files = append(files, *u)
		}
	}
	files = append(files, memFile(l.initramfs, initrd))
	if l.pi {
		files = append(files, memFile("config.txt", config))
	}
	files = append(files, memFile("cmdline.txt", []byte(cmd+"\n")))
	serial := derive32(m.InputDigest, "boot serial")
	if err := fat.Write(ctx, filepath.Join(work, BootFile), files, fat.Options{Size: spec.BootSize, Serial: serial, Epoch: epoch}); err != nil {
		return err
	}
	if m.Boot.Blob, err = blobOf(work, BootFile); err != nil {
		return err
	}
	for _, f := range files {
		m.Boot.Files = append(m.Boot.Files, f.Path)
	}
	m.Boot.Serial = fmt.Sprintf("%04X-%04X", serial>>16, serial&0xffff)
	log.Info("boot partition written", "dir", "/"+dir, "files", len(files), "bytes", m.Boot.Size,
		"kernel", l.kernel, "initramfs", l.initramfs)
	if spec.slotted() {
		// Slot B's boot partition: the same files, its command line naming root 6.
		cmdB, err := cmdlineFor(spec, m, 6, l.pi, l.kernel)
		if err != nil {
			return err
		}
		files[len(files)-1] = memFile("cmdline.txt", []byte(cmdB+"\n"))
		err = fat.Write(ctx, filepath.Join(work, BootBFile), files, fat.Options{Size: spec.BootSize, Serial: serial + 1, Epoch: epoch})
		if err != nil {
			return err
		}
		b, err := blobOf(work, BootBFile)
		if err != nil {
			return err
		}
		m.BootB = &BootBInfo{Blob: b, Cmdline: cmdB}
	}
	return nil
}

// fileBlob names a boot file with its size and digest.
func fileBlob(f fat.File) (Blob, error) {
	rc, err := f.Open()
	if err != nil {
		return Blob{}, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return Blob{}, err
	}
	return Blob{File: f.Path, Size: n, Digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// ErrBootImgTooLarge means boot.vfat is past what the Pi bootloader loads as boot.img.
var ErrBootImgTooLarge = errors.New("boot partition too large for a Raspberry Pi boot.img")

// writeBootSig signs boot.vfat as the Pi's boot.img and writes boot.sig.
func writeBootSig(work string, m *Manifest, key crypto.Signer, epoch int64, log *slog.Logger, prog Progress) error {
	prog("sign boot.img", 0, 0)
	if m.Boot.Size > MaxBootImg {
		return fmt.Errorf("%w: boot.vfat is %d MiB, the bootloader loads at most %d MiB: make the boot files smaller (or --boot-size smaller)",
			ErrBootImgTooLarge, (m.Boot.Size+1<<20-1)>>20, MaxBootImg>>20)
	}
	f, err := os.Open(filepath.Join(work, BootFile))
	if err != nil {
		return fmt.Errorf("sign boot.img: %w", err)
	}
	defer f.Close()
	bs, err := sign.SignBootImage(f, key, epoch)
	if err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(bs.SHA256); got != m.Boot.Digest {
		return fmt.Errorf("sign boot.img: boot.vfat changed while signing (%s, manifest says %s)", got, m.Boot.Digest)
	}
	if err := os.WriteFile(filepath.Join(work, BootSigFile), bs.Marshal(), 0o644); err != nil {
		return fmt.Errorf("write boot.sig: %w", err)
	}
	id, err := sign.KeyID(key.Public())
	if err != nil {
		return err
	}
	m.BootSig = &BootSigInfo{KeyID: id, TS: epoch}
	if m.BootSig.Blob, err = blobOf(work, BootSigFile); err != nil {
		return err
	}
	log.Info("boot.img signed", "file", BootSigFile, "key", id, "ts", epoch)
	return nil
}
