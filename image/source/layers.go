package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layer is one layer of a base image, opened lazily.
type Layer struct {
	layer  v1.Layer
	diffID v1.Hash
	// Index is the position of the layer, 0 at the bottom.
	Index int
}

// Layers lists the layers of img bottom-up with the uncompressed digests its config records.
func Layers(img v1.Image) ([]Layer, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("list base image layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read base image config: %w", err)
	}
	if len(cf.RootFS.DiffIDs) != len(ls) {
		return nil, fmt.Errorf("base image has %d layers but its config lists %d: %w", len(ls), len(cf.RootFS.DiffIDs), ErrCorrupt)
	}
	out := make([]Layer, len(ls))
	for i, l := range ls {
		out[i] = Layer{layer: l, diffID: cf.RootFS.DiffIDs[i], Index: i}
	}
	return out, nil
}

// DiffID is the digest of the uncompressed layer as the image config records it.
func (l Layer) DiffID() v1.Hash { return l.diffID }

// Open returns the uncompressed tar stream of the layer. Its digest is checked as it is read:
// the final Read returns an error wrapping ErrCorrupt when the content does not match.
func (l Layer) Open() (io.ReadCloser, error) {
	if l.diffID.Algorithm != "sha256" {
		return nil, fmt.Errorf("layer %d: unsupported digest %q: %w", l.Index, l.diffID.String(), ErrCorrupt)
	}
	rc, err := l.layer.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("open layer %d (%s): %w", l.Index, l.diffID, errors.Join(ErrCorrupt, err))
	}
	return &verifier{rc: rc, h: sha256.New(), want: l.diffID.Hex, index: l.Index}, nil
}

type verifier struct {
	rc    io.ReadCloser
	h     hash.Hash
	want  string
	index int
	done  bool
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF && !v.done {
		v.done = true
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("layer %d: content digest sha256:%s, config says sha256:%s: %w", v.index, got, v.want, ErrCorrupt)
		}
	} else if err != nil && err != io.EOF {
		return n, fmt.Errorf("read layer %d: %w", v.index, errors.Join(ErrCorrupt, err))
	}
	return n, err
}

func (v *verifier) Close() error { return v.rc.Close() }
