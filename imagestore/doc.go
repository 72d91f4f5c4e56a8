// Package imagestore keeps the signed OS images racklet-boot boots from: it
// resolves an image reference to a digest, verifies the digest's
// cosign-style signature against the keys the rack trusts for its repository
// BEFORE fetching anything else, then pulls the artifact's config, boot.vfat,
// root.squashfs and root.verity into a content-addressed directory:
//
//	<dir>/blobs/sha256/<hex>    one file per blob or manifest, read-only
//
// Every blob is written to a temporary name while its sha256 is computed,
// and renamed into place only when size and digest match. A manifest that
// is not a racklet artifact (artifact.ConfigMediaType config, boot, root
// and verity layers) is refused, as is an image manifest (the config blob)
// that pins other blobs than the layers. Images already stored and
// verified under the same keys are served without network I/O other than
// resolving the tag. GC removes blobs no kept image references.
//
// Cached blobs are what was signed: a blob is hashed in full when it is
// written, when the Store first loads it (a server start, or a blob written
// by another process) and whenever its file changed since (size, mtime,
// ctime, inode); otherwise a load costs one stat per blob. Booter rechecks
// on every Boot, before a file is served or measurements are expected from
// it. A blob that no longer matches its digest is removed (ErrDamaged,
// logged) and Ensure fetches it again; until then the image is not served.
package imagestore
