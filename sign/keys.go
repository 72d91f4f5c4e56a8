package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// KeyType names a kind of signing key.
type KeyType string

// The key types GenerateKey makes. All are understood by cosign; RSA2048
// is also the customer key a Raspberry Pi's EEPROM holds for signed boot.img
// (see SignBootImage).
const (
	// ECDSAP256 is ECDSA on NIST P-256 with SHA-256: cosign's default.
	ECDSAP256 KeyType = "ecdsa-p256"
	// Ed25519 signs the payload itself (pure Ed25519).
	Ed25519 KeyType = "ed25519"
	// RSA2048 is RSA with a 2048-bit modulus: PKCS#1 v1.5 over SHA-256.
	RSA2048 KeyType = "rsa2048"
)

// ErrUnknownKeyType is returned for a key type GenerateKey does not make.
var ErrUnknownKeyType = errors.New("unknown key type (want ecdsa-p256, ed25519 or rsa2048)")

// GenerateKey makes a new private key of the given kind.
func GenerateKey(kind KeyType) (crypto.Signer, error) {
	switch kind {
	case ECDSAP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, BootSigKeyBits)
	}
	return nil, fmt.Errorf("%q: %w", kind, ErrUnknownKeyType)
}

// MarshalPrivateKey encodes priv as an "ENCRYPTED SIGSTORE PRIVATE KEY" PEM block (PKCS#8,
// scrypt + secretbox with pass), the format cosign reads and writes.
func MarshalPrivateKey(priv crypto.PrivateKey, pass []byte) ([]byte, error) {
	if pass == nil {
		pass = []byte{}
	}
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(pass))
	if err != nil {
		return nil, fmt.Errorf("encrypt private key: %w", err)
	}
	return cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der), nil
}

// MarshalPublicKey encodes pub as a PEM "PUBLIC KEY" (PKIX) block, as cosign verify --key reads.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return b, nil
}

// WriteKeyPair writes prefix.key (encrypted with pass, mode 0600) and prefix.pub. It refuses
// to replace existing files unless overwrite is set.
func WriteKeyPair(prefix string, priv crypto.Signer, pass []byte, overwrite bool) error {
	privPEM, err := MarshalPrivateKey(priv, pass)
	if err != nil {
		return err
	}
	pubPEM, err := MarshalPublicKey(priv.Public())
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags |= os.O_EXCL
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{prefix + ".key", privPEM, 0o600}, {prefix + ".pub", pubPEM, 0o644}} {
		if err := writeFile(f.path, f.data, flags, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, flags int, mode os.FileMode) error {
	fh, err := os.OpenFile(path, flags, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists (remove it or pass --force): %w", path, err)
		}
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ParsePrivateKey decrypts a PEM private key (cosign's encrypted format, or an unencrypted
// PKCS#8, PKCS#1 or SEC 1 key) and returns a signer for it. ECDSA signs with the hash that
// matches its curve (SHA-256 for P-256); Ed25519 signs the message itself.
func ParsePrivateKey(pemBytes, pass []byte) (signature.SignerVerifier, error) {
	if pass == nil {
		pass = []byte{}
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, cryptoutils.StaticPasswordFunc(pass))
	if err != nil {
		return nil, fmt.Errorf("read private key (wrong passphrase?): %w", err)
	}
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		return nil, fmt.Errorf("load private key: %w", err)
	}
	return sv, nil
}

// LoadPrivateKey reads and decrypts the private key file at path.
func LoadPrivateKey(path string, pass []byte) (signature.SignerVerifier, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	sv, err := ParsePrivateKey(b, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sv, nil
}

// ParsePublicKey returns a verifier for a PEM public key. ECDSA keys verify with SHA-256,
// as cosign verify does by default; Ed25519 keys accept pure Ed25519 signatures and the
// Ed25519ph signatures recent cosign versions make.
func ParsePublicKey(pemBytes []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	if err := cryptoutils.ValidatePubKey(pub); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	if _, ok := pub.(ed25519.PublicKey); ok {
		ph, err := signature.LoadVerifierWithOpts(pub, options.WithED25519ph())
		if err != nil {
			return nil, fmt.Errorf("load public key: %w", err)
		}
		return anyVerifier{v, ph}, nil
	}
	return v, nil
}

// LoadPublicKey returns a verifier for src: PEM text (starting with "-----BEGIN") or the
// path of a PEM file.
func LoadPublicKey(src string) (signature.Verifier, error) {
	if strings.HasPrefix(strings.TrimSpace(src), "-----BEGIN") {
		return ParsePublicKey([]byte(src))
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("read public key: %w", err)
	}
	v, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return v, nil
}

// anyVerifier accepts a signature any of its verifiers (all for one key) accepts.
type anyVerifier []signature.Verifier

func (a anyVerifier) PublicKey(opts ...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return a[0].PublicKey(opts...)
}

func (a anyVerifier) VerifySignature(sig, message io.Reader, opts ...signature.VerifyOption) error {
	s, err := io.ReadAll(sig)
	if err != nil {
		return err
	}
	m, err := io.ReadAll(message)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range a {
		err := v.VerifySignature(bytes.NewReader(s), bytes.NewReader(m), opts...)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
