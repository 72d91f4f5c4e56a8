package imagestore

import (
	"errors"
	"fmt"
)

// Sentinel errors Ensure wraps; test with errors.Is. A *TrustError also wraps
// the sign package's reason (sign.ErrNoSignature, sign.ErrBadSignature,
// sign.ErrDigestMismatch).
var (
	// ErrUntrusted: the image's digest carries no signature that verifies
	// under the keys its repository's trust rule names.
	ErrUntrusted = errors.New("image is not signed by a trusted key")
	// ErrTampered: a manifest or blob fetched does not match its digest, or
	// its size or content disagrees with what the signed manifest pins.
	ErrTampered = errors.New("image content does not match its digest")
	// ErrNotArtifact: the signed manifest is not a racklet image artifact.
	ErrNotArtifact = errors.New("not a racklet image artifact")
	// ErrNoTrustRule: no trust rule of the rack covers the image's repository.
	ErrNoTrustRule = errors.New("no trust rule covers the image's repository")
)

// NoTrustRuleError is an image whose repository no trust rule covers: it is
// never booted, signed or not.
type NoTrustRuleError struct {
	Ref        string // the reference as configured
	Repository string // its repository, as trust rules match it
}

// Error says which image no rule covers, and that it is never booted.
func (e *NoTrustRuleError) Error() string {
	return fmt.Sprintf("image %s: no trust rule covers repository %s, so it is never booted", e.Ref, e.Repository)
}

// Unwrap returns ErrNoTrustRule.
func (e *NoTrustRuleError) Unwrap() error { return ErrNoTrustRule }

// TrustError is a refused image: which reference, which digest, which trust
// rule, and the reason from signature verification.
type TrustError struct {
	Ref     string // the reference as configured
	Digest  string // the digest it resolved to
	Pattern string // the trust rule's repository pattern, "" when not known
	Err     error  // the verification failure
}

// Error says which image was refused, under which rule, and why.
func (e *TrustError) Error() string {
	rule := ""
	if e.Pattern != "" {
		rule = " for " + e.Pattern
	}
	digest := ""
	if e.Digest != "" {
		digest = " (" + e.Digest + ")"
	}
	return fmt.Sprintf("image %s%s is not signed by a trusted key%s: %v", e.Ref, digest, rule, e.Err)
}

// Unwrap returns ErrUntrusted and the verification failure.
func (e *TrustError) Unwrap() []error { return []error{ErrUntrusted, e.Err} }

// IsRefusal reports whether err means the image must not be booted
// (untrusted, covered by no trust rule, tampered with, or not a racklet
// image) rather than that it could not be reached.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrUntrusted) || errors.Is(err, ErrNoTrustRule) || errors.Is(err, ErrTampered) || errors.Is(err, ErrNotArtifact)
}
