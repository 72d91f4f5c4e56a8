// Package sign signs image artifacts and verifies their signatures, stored the way cosign
// stores them, so `cosign verify --key` accepts what racklet-image signs and Verify accepts
// what `cosign sign --key` signs.
//
// # The signed format
//
// A signature covers one manifest digest. Its payload is a "simple signing" JSON document
// (containers-signature(5), as cosign writes it):
//
//	{"critical":{"identity":{"docker-reference":"registry.lan:5000/os/pi"},
//	 "image":{"docker-manifest-digest":"sha256:3b5c…"},
//	 "type":"cosign container image signature"},"optional":null}
//
// The payload bytes are signed as they are: ECDSA P-256 with SHA-256 (an ASN.1 signature),
// or Ed25519 over the message itself. Signatures live in a signature image in the same
// repository, tagged after the digest it covers: sha256:3b5c… → "sha256-3b5c….sig". Each
// signature is one layer of that image:
//
//	layer media type   application/vnd.dev.cosign.simplesigning.v1+json
//	layer bytes        the payload (uncompressed; digest = sha256 of the payload)
//	layer annotation   dev.cosignproject.cosign/signature = base64(signature)
//
// The image itself is an OCI manifest with an OCI config listing the layers as diff IDs.
// Signing again appends a layer and keeps the others (signatures by other keys survive). In
// an OCI layout directory the signature image is stored in the same layout, named by the
// annotation org.opencontainers.image.ref.name = "sha256-3b5c….sig".
//
// # Verification
//
// Verify fetches the signature image and, for each layer, checks that the payload matches
// its digest, that the signature verifies under one of the given keys, and only then that
// the payload is a cosign container image signature whose docker-manifest-digest is the
// digest being verified. One valid layer is enough (as with cosign). The claimed
// docker-reference is reported but not enforced: an image copied to another repository
// (skopeo copy of the image and its .sig tag) keeps verifying, as it does with cosign.
//
// Failures branch on ErrNoSignature (no signature image, or one without signature layers),
// ErrBadSignature (no layer verifies under the keys, or a payload does not match its digest)
// and ErrDigestMismatch (a validly signed payload names another manifest digest).
//
// # Keys
//
// Private keys are PKCS#8, encrypted with scrypt and NaCl secretbox and PEM-encoded as
// "ENCRYPTED SIGSTORE PRIVATE KEY": the format cosign generate-key-pair writes, so cosign can
// sign with a racklet key and racklet-image with a cosign key. Public keys are PEM PKIX.
//
// # boot.sig, the Raspberry Pi's signed boot image
//
// A Pi that boots a boot.img over HTTP (or under secure boot) checks it against boot.sig
// with the RSA-2048 public key in its EEPROM. boot.sig is the text rpi-eeprom-digest
// writes: the image's SHA-256 in hex, a "ts:" line (seconds since the epoch; racklet-image
// writes the build's SOURCE_DATE_EPOCH time, so builds are reproducible), optionally
// "target-soc:", and "rsa2048:" with the PKCS#1 v1.5 signature of the image (SHA-256) in hex:
//
//	3f9a…c41e                      (64 hex digits: sha256 of boot.img)
//	ts: 1700000000
//	rsa2048: 5be1…09ad             (512 hex digits: 256 signature bytes)
//
// The signature covers the image bytes, not the text: `xxd -r -p` of the rsa2048 value is
// what `openssl dgst -sha256 -verify public.pem -signature sig.bin boot.img` accepts.
// SignBootImage writes it, ParseBootSig and VerifyBootImage check it, and
// GenerateKey(RSA2048) makes the key (stored encrypted like the others; LoadBootKey also
// reads a plain `openssl genrsa 2048` PEM).
package sign
