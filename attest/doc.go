// Package attest is the node side of attestation and the API both sides
// speak. A node's initramfs agent measures what it booted (Measurements,
// MeasureFiles) into its HAT's registers, asks racklet-boot for a single-use
// nonce (Client.Challenge), has the HAT sign a quote over nonce and
// registers, and submits it (Client.Quote); racklet-boot answers with the
// node's secrets encrypted to the HAT and bound to those register values
// (Release), or a refusal with the reason (*Refused).
//
// The verifier — enrolments, nonces, the check and the release — is the
// server's and lives in attest/verifier. This package links no state store:
// racklet-agent imports it. See hatlink/PROTOCOL.md for the byte layouts.
package attest
