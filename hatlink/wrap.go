package hatlink

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// Envelope layout (see PROTOCOL.md, "Secrets encrypted to the node"):
//
//	version   1 byte (1)
//	mask      1 byte
//	policy    32 bytes (PolicyDigest of the registers the secret is bound to)
//	ephemeral 32 bytes (X25519 public key)
//	sealed    AES-256-GCM ciphertext and 16-byte tag, nonce all-zero
//
// key = HKDF-SHA256(X25519(ephemeral, box key), salt = ephemeral || box key,
// info = WrapInfo), AAD = the first 66 bytes. Each envelope has a fresh
// ephemeral key, so its AES key is used exactly once and a zero nonce is safe.
const (
	WrapVersion  = 1
	WrapInfo     = "racklet-hat-wrap-v1"
	wrapHeader   = 1 + 1 + 32 + 32
	wrapOverhead = wrapHeader + 16
	// MaxWrappedSecret is the largest secret one envelope can carry and still
	// fit in an Unwrap request frame.
	MaxWrappedSecret = MaxPayload - 2 - wrapOverhead
)

// ErrEnvelope is returned for envelopes that cannot be parsed or opened.
var ErrEnvelope = errors.New("envelope cannot be opened")

func wrapAEAD(shared, eph, box []byte) (cipher.AEAD, error) {
	salt := append(append(make([]byte, 0, 64), eph...), box...)
	key, err := hkdf.Key(sha256.New, shared, salt, WrapInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Wrap encrypts secret to a HAT's X25519 box key, bound to policy: the HAT
// opens it only while PolicyDigest of its registers under policy.Mask equals
// PolicyDigest(policy). rand supplies the ephemeral key.
func Wrap(rand io.Reader, boxKey [32]byte, policy Registers, secret []byte) ([]byte, error) {
	if len(secret) > MaxWrappedSecret {
		return nil, fmt.Errorf("%w: secret of %d bytes, limit %d", ErrPayloadTooLarge, len(secret), MaxWrappedSecret)
	}
	pub, err := ecdh.X25519().NewPublicKey(boxKey[:])
	if err != nil {
		return nil, fmt.Errorf("HAT box key: %w", err)
	}
	eph, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	shared, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("key agreement: %w", err)
	}
	aead, err := wrapAEAD(shared, eph.PublicKey().Bytes(), boxKey[:])
	if err != nil {
		return nil, err
	}
	pd := PolicyDigest(policy)
	env := make([]byte, 0, wrapOverhead+len(secret))
	env = append(env, WrapVersion, policy.Mask)
	env = append(env, pd[:]...)
	env = append(env, eph.PublicKey().Bytes()...)
	var nonce [12]byte
	return aead.Seal(env, nonce[:], secret, env[:wrapHeader]), nil
}

// EnvelopePolicy returns the mask and policy digest an envelope is bound to.
func EnvelopePolicy(env []byte) (mask byte, policy [32]byte, err error) {
	if len(env) < wrapOverhead || env[0] != WrapVersion {
		return 0, policy, fmt.Errorf("%w: bad version or length", ErrEnvelope)
	}
	copy(policy[:], env[2:34])
	return env[1], policy, nil
}

// Unwrap opens an envelope with the HAT's X25519 private key. It does not
// check the policy: the device must compare EnvelopePolicy with its registers
// before calling it.
func Unwrap(priv *ecdh.PrivateKey, env []byte) ([]byte, error) {
	if _, _, err := EnvelopePolicy(env); err != nil {
		return nil, err
	}
	eph, err := ecdh.X25519().NewPublicKey(env[34:66])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	shared, err := priv.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	aead, err := wrapAEAD(shared, env[34:66], priv.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	var nonce [12]byte
	out, err := aead.Open(nil, nonce[:], env[wrapHeader:], env[:wrapHeader])
	if err != nil {
		return nil, fmt.Errorf("%w: not addressed to this HAT or corrupted", ErrEnvelope)
	}
	return out, nil
}
