// Package ctxio stops long copies when their context ends: io.Copy has no
// context, and a blob read from a layout or a slow registry can take minutes.
package ctxio

import (
	"context"
	"io"
)

// Reader returns r, failing every Read with ctx's error once ctx ends.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
