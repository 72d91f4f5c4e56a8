package devmapper

import (
	"encoding/hex"
	"fmt"
)

// VerityBlockSize is the data and hash block size racklet images use.
const VerityBlockSize = 4096

// Verity describes a dm-verity target (format version 1, SHA-256) over a
// data device and a hash device whose superblock sits at HashOffset.
type Verity struct {
	DataDev, HashDev uint64 // device numbers (unix.Mkdev)
	DataBlocks       uint64 // 4096-byte blocks of data
	HashOffset       uint64 // byte offset of the verity superblock in the hash device
	RootHash         string // hex
	Salt             string // hex; "" for none
}

// Target is the verity table line veritysetup open would load for the same
// devices: the tree starts one block after the superblock.
func (v Verity) Target() (Target, error) {
	if b, err := hex.DecodeString(v.RootHash); err != nil || len(b) != 32 {
		return Target{}, fmt.Errorf("verity root hash %q: want 64 hex digits", v.RootHash)
	}
	salt := v.Salt
	if salt == "" {
		salt = "-"
	} else if _, err := hex.DecodeString(salt); err != nil {
		return Target{}, fmt.Errorf("verity salt %q is not hex", v.Salt)
	}
	if v.DataBlocks == 0 {
		return Target{}, fmt.Errorf("verity data of 0 blocks")
	}
	if v.HashOffset%VerityBlockSize != 0 {
		return Target{}, fmt.Errorf("verity hash offset %d is not a multiple of %d", v.HashOffset, VerityBlockSize)
	}
	hashStart := v.HashOffset/VerityBlockSize + 1
	params := fmt.Sprintf("1 %s %s %d %d %d %d sha256 %s %s", devString(v.DataDev), devString(v.HashDev),
		VerityBlockSize, VerityBlockSize, v.DataBlocks, hashStart, v.RootHash, salt)
	return Target{Start: 0, Length: v.DataBlocks * (VerityBlockSize / 512), Type: "verity", Params: params}, nil
}
