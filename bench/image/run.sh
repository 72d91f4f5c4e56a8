#!/usr/bin/env bash
# Compare racklet-image build with the native pipeline on the same tree, in one run:
#   native: mksquashfs (zstd, same block size, both cores) + veritysetup format
#           + mkfs.vfat/mcopy of the boot files + sfdisk/dd for the A/B disk
#   ours:   racklet-image build --disk (flattening the layers included)
# and time a rebuild with unchanged inputs (cache by input digest).
# Prints wall times, peak RSS and the ratios. Needs root (device nodes, ownership).
# SIZE_MB sets the extra content of the base (default 1024).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MB=${SIZE_MB:-1024}
BLOCK=${BLOCK:-131072}
work=$(mktemp -d /var/tmp/racklet-image-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
for t in mksquashfs veritysetup mkfs.vfat mcopy sfdisk /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
go build -o "$work/racklet-image" ./cmd/racklet-image
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags='-s -w' -o "$work/racklet-agent-linux-arm64" ./cmd/racklet-agent # found beside racklet-image
go build -o "$work/mkbase" ./bench/image/mkbase
ref=$("$work/mkbase" -layout "$work/base" -tree "$work/tree" -size $((SIZE_MB << 20)))
export SOURCE_DATE_EPOCH=1700000000

# measure NAME CMD...: runs CMD under /usr/bin/time, records wall seconds and peak RSS (KiB).
declare -A wall rss
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time.$name" "$@" >"$work/log.$name" 2>&1 || { cat "$work/log.$name" >&2; exit 1; }
  read -r wall[$name] rss[$name] <"$work/time.$name"
}

native() {
  local n=$work/native
  rm -rf "$n"; mkdir -p "$n/boot"
  mksquashfs "$work/tree" "$n/root.squashfs" -comp zstd -b "$BLOCK" -noappend -quiet -no-progress
  veritysetup format "$n/root.squashfs" "$n/root.verity" >/dev/null
  cp -r "$work/tree/boot/firmware/." "$n/boot/"
  mkfs.vfat -C -F 32 "$n/boot.vfat" 65536 >/dev/null
  mcopy -s -i "$n/boot.vfat" "$n/boot/"* ::
  local rootsz=$((4096 * 2048)) # 4 GiB in sectors
  truncate -s $(( (2048 + 131072 + 2*524288 + 3*2048 + 2*rootsz + 131072) * 512 )) "$n/disk.img"
  printf 'label: dos\n2048,131072,c\n,524288,c\n,524288,c\n,,E\n,%s,83\n,%s,83\n,131072,83\n' "$rootsz" "$rootsz" | sfdisk -q "$n/disk.img"
  dd if="$n/boot.vfat" of="$n/disk.img" bs=1M seek=$((133120 * 512 / 1048576)) conv=notrunc,sparse status=none
  dd if="$n/root.squashfs" of="$n/disk.img" bs=1M seek=$(( (2048+131072+2*524288+2048) * 512 / 1048576 )) conv=notrunc,sparse status=none
}
export -f native; export work BLOCK

ours() { "$work/racklet-image" build --base "$ref" --output "$work/ours" --disk --no-cache --block-size "$BLOCK" --temp-dir "$work" --log-level warn; }
rebuild() { "$work/racklet-image" build --base "$ref" --output "$work/ours" --disk --block-size "$BLOCK" --temp-dir "$work" --log-level warn; }
export -f ours rebuild; export ref

# Alternate the order across two rounds and keep the faster of each.
best() { awk -v a="$1" -v b="$2" 'BEGIN{print (a<b)?a:b}'; }
measure native1 bash -c native; measure ours1 bash -c ours
measure ours2 bash -c ours;     measure native2 bash -c native
measure rebuild bash -c rebuild
nw=$(best "${wall[native1]}" "${wall[native2]}"); ow=$(best "${wall[ours1]}" "${wall[ours2]}")
nr=$(( ${rss[native1]} > ${rss[native2]} ? ${rss[native1]} : ${rss[native2]} ))
orss=$(( ${rss[ours1]} > ${rss[ours2]} ? ${rss[ours1]} : ${rss[ours2]} ))
echo "tree: $(du -sm "$work/tree" | cut -f1) MiB, block size $BLOCK"
echo "native pipeline: ${nw}s wall, peak RSS $((nr/1024)) MiB, root.squashfs $(stat -c %s "$work/native/root.squashfs") bytes"
echo "racklet-image:   ${ow}s wall, peak RSS $((orss/1024)) MiB, root.squashfs $(stat -c %s "$work/ours/root.squashfs") bytes"
echo "rebuild (unchanged inputs): ${wall[rebuild]}s wall"
awk -v o="$ow" -v n="$nw" -v r="${wall[rebuild]}" 'BEGIN{printf "ratio ours/native: %.2fx wall; rebuild/full: %.1f%%\n", o/n, 100*r/o}'
