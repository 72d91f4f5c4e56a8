package resolve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Images answers "which verified boot files does this image reference
// name?" for nodes whose boot source is boot.image. The server implements
// it over imagestore: resolve the tag, verify the signature against the
// rack's trust rules, fetch the blobs. Errors for images that must not be
// booted (unsigned, signed by an untrusted key, tampered with) wrap
// ErrRefused, with the reason worded for the operator; other errors (a
// registry that cannot be reached) are server-side problems.
type Images interface {
	Boot(ctx context.Context, ref string) (*ImageBoot, error)
}

// ImageBoot is one verified image, as the resolver serves it.
type ImageBoot struct {
	FAT      string // path of the image's boot.vfat, served in place
	Root     string // path of root.squashfs, served as "root.squashfs"
	Verity   string // path of the dm-verity hash tree, served as "root.verity"
	Digest   string // manifest digest the signature covers ("sha256:…")
	RootHash string // dm-verity root hash of Root
	Cmdline  string // kernel command line the image was built with
}

// Names under which an image's root filesystem and hash tree are served.
const (
	ImageRootName   = "root.squashfs"
	ImageVerityName = "root.verity"
)

// imageFATs remembers the boot.vfat each image reference last resolved to,
// so the FAT index of a replaced image is dropped rather than kept open.
type imageFATs struct {
	mu    sync.Mutex
	byRef map[string]string
}

// swap records path for ref and returns the path it replaces ("" if none).
func (m *imageFATs) swap(ref, path string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byRef == nil {
		m.byRef = map[string]string{}
	}
	old := m.byRef[ref]
	m.byRef[ref] = path
	if old == path {
		return ""
	}
	for _, p := range m.byRef {
		if p == old {
			return "" // another reference still uses it
		}
	}
	return old
}

// imageSourceFor asks Images for a node's image.
func (r *Resolver) imageSourceFor(ctx context.Context, ref string) (source, error) {
	if r.images == nil {
		return nil, fmt.Errorf("boot image %s: %w", ref, ErrImageSource)
	}
	ib, err := r.images.Boot(ctx, ref)
	switch {
	case errors.Is(err, ErrRefused):
		return nil, fmt.Errorf("boot image %s: %w", ref, err)
	case err != nil:
		return nil, fmt.Errorf("%w: boot image %s: %w", ErrSourceUnavailable, ref, err)
	case ib == nil || ib.FAT == "":
		return nil, fmt.Errorf("%w: boot image %s has no boot partition", ErrSourceUnavailable, ref)
	}
	if old := r.imageFAT.swap(ref, ib.FAT); old != "" {
		r.fat.drop(old)
	}
	return &imageSource{fat: fatSource{path: ib.FAT, cache: r.fat}, img: ib, ref: ref}, nil
}

// imageSource serves a verified image: boot files from its boot.vfat, read
// in place, and its root filesystem and hash tree as two more files.
type imageSource struct {
	fat fatSource
	img *ImageBoot
	ref string
}

func (s *imageSource) String() string { return fmt.Sprintf("image %s (%s)", s.ref, s.img.Digest) }

func (s *imageSource) done() { s.fat.done() }

// blob returns the path served under name, "" for names of the boot.vfat.
func (s *imageSource) blob(name string) string {
	switch name {
	case ImageRootName:
		return s.img.Root
	case ImageVerityName:
		return s.img.Verity
	}
	return ""
}

func (s *imageSource) exists(ctx context.Context, name string) bool {
	if p := s.blob(name); p != "" {
		return true
	}
	return s.fat.exists(ctx, name)
}

func (s *imageSource) open(ctx context.Context, name string) (*File, error) {
	p := s.blob(name)
	if p == "" {
		return s.fat.open(ctx, name)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s of %s: %v", ErrSourceUnavailable, name, s, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s of %s is not a regular file (%v)", ErrSourceUnavailable, name, s, err)
	}
	return &File{
		Content: f,
		Closer:  f,
		Size:    st.Size(),
		ModTime: st.ModTime(),
		// The store names blobs by their sha256: a strong validator.
		ETag: fmt.Sprintf("\"sha256:%s\"", filepath.Base(p)),
		Path: name,
	}, nil
}
