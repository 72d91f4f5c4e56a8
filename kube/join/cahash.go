package join

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
)

// CAHash is the hash kubeadm join pins the cluster CA to
// (--discovery-token-ca-cert-hash): "sha256:" and the hex SHA-256 of the
// CA certificate's DER SubjectPublicKeyInfo.
func CAHash(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CAHashesPEM returns the CAHash of every certificate in a PEM bundle.
func CAHashesPEM(data []byte) ([]string, error) {
	var out []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("cluster CA: %w", err)
		}
		out = append(out, CAHash(c))
	}
	if len(out) == 0 {
		return nil, errors.New("cluster CA: no PEM CERTIFICATE found")
	}
	return out, nil
}

var caHashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidCAHash reports whether s is written as kubeadm takes it.
func ValidCAHash(s string) bool { return caHashRE.MatchString(s) }
