// Package verifier is racklet-boot's attestation verifier. It issues
// single-use nonces, checks a node's HAT quote against the node's enrolled
// HAT key, the nonce, and the register values computed from the node's
// assigned image (attest.Measurements); only then it releases the node's
// secrets (cluster join token, data-disk key), each encrypted to the HAT and
// bound to those register values, so only that HAT, in that measured state,
// can open them. Every decision lands in the node's event log.
//
// The consumer interfaces (Enrollments, Expected, Secrets, EventSink) are
// defined here; boot/server adapts its node index, resolver and store to
// them. EnrollmentFile and SecretFile are file-backed implementations for a
// data directory. The HTTP API is served by Verifier.Handler under
// attest.PathPrefix; attest.Client is its node-side client.
package verifier
