package squashfs

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/racklet/racklet-boot/image/flatten"
)

const (
	dataUncompressed = 1 << 24
	noFragment       = 0xFFFFFFFF
)

// fileData is where the content of one regular file went.
type fileData struct {
	blocksStart uint64
	started     bool
	sizes       []uint32
	fragIndex   uint32
	fragOffset  uint32
}

// fragEntry is one entry of the fragment table.
type fragEntry struct {
	start uint64
	size  uint32
}

// job is one block to compress; file is nil for a fragment block.
type job struct {
	raw  []byte
	file *fileData
	res  chan result
}

type result struct {
	data []byte
	size uint32 // on-disk size field, with dataUncompressed when stored raw
	err  error
}

// writeData writes the data and fragment blocks of every regular inode, in walk order, to w
// starting at offset pos; it returns the new offset.
func (b *builder) writeData(ctx context.Context, w io.Writer, pos uint64) (uint64, error) {
	workers := b.opts.Workers
	jobs := make(chan *job, workers*2)
	order := make(chan *job, workers*4)
	g, gctx := errgroup.WithContext(ctx)
	for range workers {
		comp, err := newCompressor(b.opts.Compression, b.opts.Level, b.opts.BlockSize)
		if err != nil {
			return 0, err
		}
		g.Go(func() error {
			for j := range jobs {
				j.res <- compressBlock(comp, j.raw)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(order)
		defer close(jobs)
		return b.produce(gctx, jobs, order)
	})
	var werr error
	for j := range order {
		r := <-j.res
		if werr != nil {
			continue
		}
		if r.err != nil {
			werr = r.err
			continue
		}
		if _, err := w.Write(r.data); err != nil {
			werr = fmt.Errorf("write squashfs data: %w", err)
			continue
		}
		if j.file != nil {
			if !j.file.started {
				j.file.blocksStart, j.file.started = pos, true
			}
			j.file.sizes = append(j.file.sizes, r.size)
		} else {
			b.frags = append(b.frags, fragEntry{start: pos, size: r.size})
		}
		pos += uint64(len(r.data))
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return pos, werr
}

func compressBlock(c compressor, raw []byte) result {
	out, err := c.compress(raw)
	if err != nil {
		return result{err: err}
	}
	if len(out) < len(raw) {
		return result{data: out, size: uint32(len(out))}
	}
	return result{data: raw, size: uint32(len(raw)) | dataUncompressed}
}

// produce reads every regular file once, queueing full blocks and packing small files into
// fragment blocks.
func (b *builder) produce(ctx context.Context, jobs, order chan<- *job) error {
	bs := b.opts.BlockSize
	var frag []byte
	send := func(raw []byte, f *fileData) error {
		j := &job{raw: raw, file: f, res: make(chan result, 1)}
		select {
		case order <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			j.res <- result{err: ctx.Err()}
			return ctx.Err()
		}
		if f == nil {
			b.fragCount++
		}
		return nil
	}
	for _, in := range b.files {
		fd := b.data[in]
		if in.Size == 0 {
			continue
		}
		f, err := os.Open(in.Data)
		if err != nil {
			return fmt.Errorf("read spilled file content: %w", err)
		}
		if in.Size < int64(bs) {
			if len(frag)+int(in.Size) > bs {
				if err := send(frag, nil); err != nil {
					f.Close()
					return err
				}
				frag = nil
			}
			if frag == nil {
				frag = make([]byte, 0, bs)
			}
			fd.fragIndex, fd.fragOffset = uint32(b.fragCount), uint32(len(frag))
			n, err := io.ReadFull(f, frag[len(frag):len(frag)+int(in.Size)])
			f.Close()
			if err != nil {
				return fmt.Errorf("read spilled file content (%d of %d bytes): %w", n, in.Size, err)
			}
			frag = frag[:len(frag)+n]
			continue
		}
		for left := in.Size; left > 0; {
			n := int64(bs)
			if left < n {
				n = left
			}
			raw := make([]byte, n)
			if _, err := io.ReadFull(f, raw); err != nil {
				f.Close()
				return fmt.Errorf("read spilled file content: %w", err)
			}
			if err := send(raw, fd); err != nil {
				f.Close()
				return err
			}
			left -= n
		}
		f.Close()
	}
	if len(frag) > 0 {
		return send(frag, nil)
	}
	return nil
}

// planFiles lists the regular inodes in walk order, once each, for the data pass.
func (b *builder) planFiles(t *flatten.Tree) {
	t.Walk(func(_ string, n *flatten.Node) error {
		in := n.Inode
		if in.Kind != flatten.Regular {
			return nil
		}
		if _, ok := b.data[in]; ok {
			return nil
		}
		b.data[in] = &fileData{fragIndex: noFragment}
		b.files = append(b.files, in)
		return nil
	})
}
