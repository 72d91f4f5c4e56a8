// Package verity builds the dm-verity hash tree of a data image (SHA-256, format version 1,
// 4 KiB blocks) as a separate hash device that starts with the verity superblock, the layout
// `veritysetup format DATA HASH` writes and `veritysetup open/verify` and the kernel read.
//
// Hash device layout: block 0 holds the 512-byte superblock (zero-padded to a block); then the
// tree levels, the top level (closest to the root) first. Level 0 holds the SHA-256 of
// salt||data block for every data block, 128 per hash block, zero-padded; each higher level
// hashes the blocks of the level below. The root hash is SHA-256(salt||top-level block).
package verity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

const (
	// BlockSize is the data and hash block size.
	BlockSize     = 4096
	digestSize    = sha256.Size
	hashesPerBlk  = BlockSize / digestSize
	superblockLen = 512
	maxSalt       = 256
)

// ErrInput means the data or options cannot be hashed (size not a multiple of 4 KiB, salt too long).
var ErrInput = errors.New("invalid dm-verity input")

// Options tunes Build.
type Options struct {
	// Salt is hashed before every block; derive it from the build inputs for reproducible
	// output. At most 256 bytes.
	Salt []byte
	// UUID goes into the superblock; derive it from the build inputs too.
	UUID [16]byte
}

// Result describes a built hash tree.
type Result struct {
	RootHash   []byte
	Salt       []byte
	UUID       [16]byte
	DataBlocks uint64
	// HashSize is the length of the hash device in bytes.
	HashSize int64
}

// RootHashHex is the root hash in hex, as veritysetup and the kernel command line want it.
func (r Result) RootHashHex() string { return hex.EncodeToString(r.RootHash) }

// UUIDString formats the UUID as veritysetup prints it.
func (r Result) UUIDString() string {
	u := r.UUID
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Build reads dataSize bytes of data (a multiple of 4 KiB) and writes the hash device to out.
func Build(ctx context.Context, data io.Reader, dataSize int64, out io.Writer, opts Options) (*Result, error) {
	if dataSize <= 0 || dataSize%BlockSize != 0 {
		return nil, fmt.Errorf("%w: data size %d is not a positive multiple of %d", ErrInput, dataSize, BlockSize)
	}
	if len(opts.Salt) > maxSalt {
		return nil, fmt.Errorf("%w: salt of %d bytes (at most %d)", ErrInput, len(opts.Salt), maxSalt)
	}
	n := uint64(dataSize / BlockSize)
	res := &Result{Salt: bytes.Clone(opts.Salt), UUID: opts.UUID, DataBlocks: n}
	leaf, err := hashData(ctx, data, n, opts.Salt)
	if err != nil {
		return nil, err
	}
	// levels[0] is the list of hashes of the data blocks; levels[i] the hash blocks of level i-1.
	var blocks [][]byte // blocks[i]: level i packed into hash blocks
	hashes := leaf
	if n == 1 {
		res.RootHash = hashes
	}
	for n > 1 && (len(blocks) == 0 || len(blocks[len(blocks)-1]) > BlockSize) {
		packed := pack(hashes)
		blocks = append(blocks, packed)
		hashes = hashBlocks(packed, opts.Salt)
	}
	if len(blocks) > 0 {
		res.RootHash = hashes
	}
	w := &countWriter{w: out}
	w.write(superblock(res))
	for i := len(blocks) - 1; i >= 0; i-- {
		w.write(blocks[i])
	}
	if w.err != nil {
		return nil, fmt.Errorf("write dm-verity hash tree: %w", w.err)
	}
	res.HashSize = w.n
	return res, nil
}

// hashData hashes every data block with the salt, the blocks of each read spread over the CPUs.
func hashData(ctx context.Context, r io.Reader, n uint64, salt []byte) ([]byte, error) {
	out := make([]byte, n*digestSize)
	const chunkBlocks = 1024
	buf := make([]byte, BlockSize*chunkBlocks)
	workers := runtime.GOMAXPROCS(0)
	for done := uint64(0); done < n; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		chunk := min(n-done, chunkBlocks)
		b := buf[:chunk*BlockSize]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("read data for dm-verity: %w", err)
		}
		var wg sync.WaitGroup
		per := (chunk + uint64(workers) - 1) / uint64(workers)
		for w := uint64(0); w < chunk; w += per {
			end := min(w+per, chunk)
			wg.Add(1)
			go func(from, to uint64) {
				defer wg.Done()
				h := sha256.New()
				for i := from; i < to; i++ {
					h.Reset()
					h.Write(salt)
					h.Write(b[i*BlockSize : (i+1)*BlockSize])
					h.Sum(out[(done+i)*digestSize : (done+i)*digestSize])
				}
			}(w, end)
		}
		wg.Wait()
		done += chunk
	}
	return out, nil
}

// pack zero-pads a run of hashes to whole hash blocks.
func pack(hashes []byte) []byte {
	if r := len(hashes) % BlockSize; r != 0 {
		hashes = append(hashes, make([]byte, BlockSize-r)...)
	}
	return hashes
}

func hashBlocks(blocks []byte, salt []byte) []byte {
	out := make([]byte, 0, len(blocks)/BlockSize*digestSize)
	h := sha256.New()
	for off := 0; off < len(blocks); off += BlockSize {
		h.Reset()
		h.Write(salt)
		h.Write(blocks[off : off+BlockSize])
		out = h.Sum(out)
	}
	return out
}

// superblock encodes the verity superblock, padded to one hash block.
func superblock(r *Result) []byte {
	b := make([]byte, 0, BlockSize)
	b = append(b, "verity\x00\x00"...)
	b = binary.LittleEndian.AppendUint32(b, 1) // version
	b = binary.LittleEndian.AppendUint32(b, 1) // hash type: normal (salt first)
	b = append(b, r.UUID[:]...)
	alg := make([]byte, 32)
	copy(alg, "sha256")
	b = append(b, alg...)
	b = binary.LittleEndian.AppendUint32(b, BlockSize)
	b = binary.LittleEndian.AppendUint32(b, BlockSize)
	b = binary.LittleEndian.AppendUint64(b, r.DataBlocks)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.Salt)))
	b = append(b, make([]byte, 6)...)
	salt := make([]byte, maxSalt)
	copy(salt, r.Salt)
	b = append(b, salt...)
	b = append(b, make([]byte, 168)...)
	return append(b, make([]byte, BlockSize-superblockLen)...)
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
}
