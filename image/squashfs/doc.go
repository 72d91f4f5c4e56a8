// Package squashfs writes a flattened root file system as a squashfs 4.0 image, the format
// the Linux kernel mounts (Documentation/filesystems/squashfs.rst) and squashfs-tools reads.
//
// Layout, in file order, as mksquashfs writes it:
//
//	superblock (96 bytes, little-endian)
//	data blocks of regular files and fragment blocks (tails of files smaller than a block)
//	inode table        metadata blocks (8 KiB before compression, u16 length header each)
//	directory table    metadata blocks
//	fragment table     metadata blocks of 16-byte entries, then u64 pointers (superblock points here)
//	id table           metadata blocks of u32 uids/gids, then u64 pointers
//	xattr table        key/value metadata, id metadata, then a header and u64 pointers
//	padding to 4 KiB
//
// Data blocks are compressed in parallel by a pool of workers and written in order, so the
// output depends only on the tree and the options: the same tree gives the same bytes. There is
// no export (NFS) table and no duplicate detection; hard links share one inode.
package squashfs
