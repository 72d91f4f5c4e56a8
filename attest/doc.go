// Package attest is racklet-boot's attestation verifier. A node's initramfs
// agent measures what it booted into its HAT's registers, asks this package
// for a single-use nonce, has the HAT sign a quote over nonce and registers,
// and submits it. The Verifier checks the quote against the node's enrolled
// HAT key, the nonce, and the register values computed from the node's
// assigned image (Measurements); only then it releases the node's secrets
// (cluster join token, data-disk key), each encrypted to the HAT and bound to
// those register values, so only that HAT, in that measured state, can open
// them. Every decision lands in the node's event log.
//
// The consumer interfaces (Enrollments, Expected, Secrets, EventSink) are
// defined here; racklet-boot adapts its config and store to them.
// EnrollmentFile and SecretFile are file-backed implementations for a data
// directory. The HTTP API is served by Verifier.Handler under PathPrefix.
// See hatlink/PROTOCOL.md for the byte layouts.
package attest
