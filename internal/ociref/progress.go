package ociref

import (
	"io"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Counting returns img with its layers' bytes counted into o.Progress as
// they are read, against the total of the layers' sizes; without a
// Progress it returns img itself. Wrapping hides a registry layer's
// mountability, so a copy within one registry uploads instead of mounting.
func (o Options) Counting(img v1.Image) v1.Image {
	if o.Progress == nil {
		return img
	}
	c := &counter{report: o.Progress}
	if ls, err := img.Layers(); err == nil {
		for _, l := range ls {
			if n, err := l.Size(); err == nil {
				c.total += n
			}
		}
	}
	return &countingImage{Image: img, c: c}
}

type counter struct {
	report func(done, total int64)
	total  int64
	done   atomic.Int64
}

func (c *counter) add(n int) {
	if n > 0 {
		c.report(c.done.Add(int64(n)), c.total)
	}
}

type countingImage struct {
	v1.Image
	c *counter
}

func (i *countingImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		out[n] = &countingLayer{Layer: l, c: i.c}
	}
	return out, nil
}

func (i *countingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return &countingLayer{Layer: l, c: i.c}, nil
}

func (i *countingImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return &countingLayer{Layer: l, c: i.c}, nil
}

type countingLayer struct {
	v1.Layer
	c *counter
}

func (l *countingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, c: l.c}, nil
}

func (l *countingLayer) MediaType() (types.MediaType, error) { return l.Layer.MediaType() }

type countingReader struct {
	io.ReadCloser
	c *counter
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.add(n)
	return n, err
}
