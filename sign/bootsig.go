package sign

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// BootSigKeyBits is the only RSA size the Raspberry Pi bootloader verifies.
const BootSigKeyBits = 2048

// maxBootSig bounds a boot.sig: a digest, a timestamp, a target line and a
// 512-hex-digit signature fit in well under 1 KiB.
const maxBootSig = 4 << 10

// Errors of boot.sig signing and verification.
var (
	// ErrBootSigFormat means a boot.sig is not in rpi-eeprom-digest's format.
	ErrBootSigFormat = errors.New("malformed boot.sig")
	// ErrBootSigMismatch means the image is not the one boot.sig describes
	// (its SHA-256 differs) or the RSA signature does not verify.
	ErrBootSigMismatch = errors.New("boot.sig does not match the image")
	// ErrNotRSA2048 means a key is not the RSA-2048 key the bootloader takes.
	ErrNotRSA2048 = errors.New("not an RSA-2048 key (the Raspberry Pi bootloader verifies only RSA-2048)")
)

// BootSig is the content of a boot.sig as rpi-eeprom-digest writes it.
type BootSig struct {
	// SHA256 is the image's digest, 32 bytes.
	SHA256 []byte
	// TS is the "ts:" line: seconds since the epoch.
	TS int64
	// TargetSoC is the optional "target-soc:" line ("" when absent).
	TargetSoC string
	// RSA2048 is the PKCS#1 v1.5 SHA-256 signature of the image, 256 bytes;
	// nil for an unsigned digest file.
	RSA2048 []byte
}

// Marshal writes the file: the digest in lowercase hex, "ts: N", the
// target line when set, then "rsa2048: HEX" when signed, each ending in a
// newline, exactly as rpi-eeprom-digest lays it out.
func (s *BootSig) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%x\nts: %d\n", s.SHA256, s.TS)
	if s.TargetSoC != "" {
		fmt.Fprintf(&b, "target-soc: %s\n", s.TargetSoC)
	}
	if s.RSA2048 != nil {
		fmt.Fprintf(&b, "rsa2048: %x\n", s.RSA2048)
	}
	return b.Bytes()
}

// ParseBootSig reads a boot.sig: the first line is the image's SHA-256 in
// hex, then "key: value" lines of which ts, target-soc and rsa2048 are
// understood and others ignored. ts is required; rsa2048, when present,
// must be 256 bytes of hex.
func ParseBootSig(b []byte) (*BootSig, error) {
	if len(b) > maxBootSig {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBootSigFormat, len(b), maxBootSig)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() {
		return nil, fmt.Errorf("%w: empty", ErrBootSigFormat)
	}
	first := strings.TrimSpace(sc.Text())
	sum, err := hex.DecodeString(first)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%w: first line %q is not a SHA-256 in hex", ErrBootSigFormat, short(first))
	}
	s := &BootSig{SHA256: sum, TS: -1}
	for line := 2; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		key, val, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("%w: line %d %q is not \"key: value\"", ErrBootSigFormat, line, short(text))
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "ts":
			if s.TS, err = strconv.ParseInt(val, 10, 64); err != nil || s.TS < 0 {
				return nil, fmt.Errorf("%w: line %d: ts %q is not a Unix time", ErrBootSigFormat, line, short(val))
			}
		case "target-soc":
			s.TargetSoC = val
		case "rsa2048":
			sig, err := hex.DecodeString(val)
			if err != nil || len(sig) != BootSigKeyBits/8 {
				return nil, fmt.Errorf("%w: line %d: rsa2048 is not %d bytes of hex", ErrBootSigFormat, line, BootSigKeyBits/8)
			}
			s.RSA2048 = sig
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBootSigFormat, err)
	}
	if s.TS < 0 {
		return nil, fmt.Errorf("%w: no ts line", ErrBootSigFormat)
	}
	return s, nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// SignBootImage reads the image from r and returns its boot.sig, stamped
// with ts and signed by key (an RSA-2048 private key, or any crypto.Signer
// over one: PKCS#1 v1.5 over SHA-256). PKCS#1 v1.5 is deterministic, so the
// same image, ts and key always give the same bytes.
func SignBootImage(r io.Reader, key crypto.Signer, ts int64) (*BootSig, error) {
	if err := checkRSA2048(key.Public()); err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, fmt.Errorf("read boot image: %w", err)
	}
	sum := h.Sum(nil)
	sig, err := key.Sign(nil, sum, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign boot image: %w", err)
	}
	return &BootSig{SHA256: sum, TS: ts, RSA2048: sig}, nil
}

// VerifyBootImage checks an image against its boot.sig the way the
// bootloader does: the SHA-256 of the image must equal the first line and
// the rsa2048 signature must verify under pub. A boot.sig without a
// signature is refused.
func VerifyBootImage(r io.Reader, s *BootSig, pub *rsa.PublicKey) error {
	if err := checkRSA2048(pub); err != nil {
		return err
	}
	if s.RSA2048 == nil {
		return fmt.Errorf("%w: it carries no rsa2048 signature", ErrBootSigMismatch)
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("read boot image: %w", err)
	}
	sum := h.Sum(nil)
	if !bytes.Equal(sum, s.SHA256) {
		return fmt.Errorf("%w: image sha256 %x, boot.sig says %x", ErrBootSigMismatch, sum, s.SHA256)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum, s.RSA2048); err != nil {
		return fmt.Errorf("%w: rsa2048 signature: %v", ErrBootSigMismatch, err)
	}
	return nil
}

func checkRSA2048(pub crypto.PublicKey) error {
	k, ok := pub.(*rsa.PublicKey)
	if !ok || k == nil {
		return fmt.Errorf("%w: key is %T", ErrNotRSA2048, pub)
	}
	if k.N.BitLen() != BootSigKeyBits {
		return fmt.Errorf("%w: key has %d bits", ErrNotRSA2048, k.N.BitLen())
	}
	return nil
}

// LoadBootKey reads the private key that signs boot.img: racklet-image's
// encrypted format (keygen --type rsa2048, decrypted with pass) or a plain
// PEM RSA key as `openssl genrsa 2048` writes it for rpi-eeprom-digest.
func LoadBootKey(path string, pass []byte) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read boot signing key: %w", err)
	}
	if pass == nil {
		pass = []byte{}
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(b, cryptoutils.StaticPasswordFunc(pass))
	if err != nil {
		return nil, fmt.Errorf("%s: read boot signing key (wrong passphrase?): %w", path, err)
	}
	k, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %w: it is %T (make one with racklet-image keygen --type rsa2048)", path, ErrNotRSA2048, priv)
	}
	if err := checkRSA2048(&k.PublicKey); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadBootPublicKey reads the PEM public key a Pi's EEPROM trusts (PKIX
// "PUBLIC KEY" as rpi-eeprom-config --pubkey and openssl take it, or
// PKCS#1 "RSA PUBLIC KEY").
func LoadBootPublicKey(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read boot public key: %w", err)
	}
	k, err := ParseBootPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// ParseBootPublicKey parses a PEM RSA-2048 public key (see LoadBootPublicKey).
func ParseBootPublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	var pub crypto.PublicKey
	if blk, _ := pem.Decode(pemBytes); blk != nil && blk.Type == "RSA PUBLIC KEY" {
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read boot public key: %w", err)
		}
		pub = k
	} else {
		k, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("read boot public key: %w", err)
		}
		pub = k
	}
	if err := checkRSA2048(pub); err != nil {
		return nil, err
	}
	return pub.(*rsa.PublicKey), nil
}

// KeyID names a public key: "sha256:" and the hex SHA-256 of its PKIX DER.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256(der)), nil
}
