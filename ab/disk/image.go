package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ManifestFile is the image manifest in an image directory (what
// racklet-image build writes and racklet-image pull fetches).
const ManifestFile = "manifest.json"

// ErrNotSlotted means an image has no boot partition per slot: it was built
// without --disk-id (or --disk), so a disk cannot take it.
var ErrNotSlotted = errors.New("the image has no boot partition per slot (build it with racklet-image build --disk-id of the rack's disks)")

// manifest is what WriteSlot needs of the image manifest (package image's
// Manifest, read here without linking the image builder into the agent).
type manifest struct {
	Boot   manifestBlob  `json:"boot"`
	BootB  *manifestBlob `json:"bootB"`
	Root   manifestBlob  `json:"root"`
	Verity struct {
		manifestBlob
		Offset int64 `json:"offset"`
	} `json:"verity"`
}

// manifestBlob is one file of the manifest.
type manifestBlob struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

func (b manifestBlob) blob() Blob { return Blob{Path: b.File, Size: b.Size, Digest: b.Digest} }

// ReadImage reads an image directory for WriteSlot: slot A's boot partition
// (boot.vfat), slot B's (boot-b.vfat), the root and its verity tree, with
// the sizes and digests its manifest pins. The directory is trusted as far
// as its manifest is: pull it with racklet-image pull and check its
// signature first. WriteSlot verifies what it writes against these digests.
func ReadImage(dir string) (Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Image{}, fmt.Errorf("read the image manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Image{}, fmt.Errorf("read the image manifest %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	if m.BootB == nil {
		return Image{}, ErrNotSlotted
	}
	img := Image{Boot: [2]Blob{m.Boot.blob(), m.BootB.blob()}, Root: m.Root.blob(), Verity: m.Verity.blob(), VerityOffset: m.Verity.Offset}
	for _, p := range []*Blob{&img.Boot[0], &img.Boot[1], &img.Root, &img.Verity} {
		if p.Path == "" || filepath.Base(p.Path) != p.Path || p.Digest == "" {
			return Image{}, fmt.Errorf("image manifest names %q (%s): want a file of the image directory with its digest", p.Path, p.Digest)
		}
		p.Path = filepath.Join(dir, p.Path)
	}
	if img.VerityOffset <= 0 {
		return Image{}, fmt.Errorf("image manifest has no verity offset for the root partition")
	}
	return img, nil
}
