// Package initramfs writes racklet's initramfs: a reproducible newc cpio archive, compressed
// with what the kernel unpacks (zstd when CONFIG_RD_ZSTD=y, else gzip), whose /init is the
// static racklet-agent and which carries the kernel modules the boot path needs, copied from
// the base image's module directory and closed over modules.dep and the softdeps.
//
// Layout (the contract with racklet-agent as PID 1):
//
//	/init                                  racklet-agent, static, the image's architecture
//	/dev/console                           character device 5:1 (init's first console)
//	/dev /proc /sys /run /tmp              empty mount points (/tmp 1777)
//	/etc/racklet/modules                   the module files to load, one absolute path a line,
//	                                       in load order: every dependency and "pre:" softdep
//	                                       before the module that needs it, "post:" after
//	/lib/modules/<version>/kernel/...      the module files, as the kernel ships them
//	                                       (.ko, or .ko.xz/.ko.zst/.ko.gz when compressed)
//	/lib/modules/<version>/modules.dep     depmod's lines for exactly these files
//	/lib/modules/<version>/modules.alias   the base's aliases of these modules
//	/lib/modules/<version>/modules.softdep the softdeps of these modules
//	/lib/modules/<version>/modules.builtin as the base has it
//
// The modules are Required (the node boot path: dm-mod, dm-verity, dm-crypt, squashfs,
// overlay, loop, ext4), the image's extra modules (also required), and Drivers when the
// kernel has them (QEMU virtio; Pi 4 Ethernet on arm; a hardware RNG for each). A module
// built into the kernel needs no file.
// A softdep may name an alias ("softdep ext4 pre: crypto-crc32c"): it loads every module the
// alias names, as modprobe does; some of those fail on hardware they do not fit (crc32c_intel
// without SSE 4.2 returns ENODEV), so an init treats ENODEV from finit_module as "not for this
// machine", not as a failed boot. Compressed module files stay compressed: finit_module takes
// them with MODULE_INIT_COMPRESSED_FILE where the kernel has CONFIG_MODULE_DECOMPRESS, else the
// loader decompresses them (u-root's pkg/kmodule does). A tree of these files is also what
// pkg/kmodule reads (modules.dep, modules.builtin).
//
// Reproducible: members sorted by path, parents before children, inode numbers counted in
// that order, owner 0:0, one modification time (the build epoch), and a compressor without
// timestamps or names. The cpio records are written by github.com/u-root/u-root/pkg/cpio.
package initramfs
