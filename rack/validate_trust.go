package rack

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/racklet/racklet-boot/internal/ociref"
)

// trust checks the trust rules and reads their keys into TrustKey.Data.
func (v *validator) trust() {
	for i := range v.c.Trust {
		r := &v.c.Trust[i]
		p := fmt.Sprintf("trust[%d]", i)
		if len(r.Repositories) == 0 {
			v.at(p+".repositories", "required: the repositories this rule covers, as glob patterns like registry.lan:5000/racklet/*")
		}
		for j, pat := range r.Repositories {
			if _, err := path.Match(pat, ""); err != nil || pat == "" {
				v.at(fmt.Sprintf("%s.repositories[%d]", p, j), "%q is not a glob pattern (path.Match syntax: * ? [a-z])", pat)
			}
		}
		if len(r.Keys) == 0 {
			v.at(p+".keys", "required: at least one public key, as {file: cosign.pub} or {pem: \"-----BEGIN PUBLIC KEY-----...\"}")
		}
		for j := range r.Keys {
			v.trustKey(fmt.Sprintf("%s.keys[%d]", p, j), &r.Keys[j])
		}
	}
}

// trustKey reads and checks one key.
func (v *validator) trustKey(p string, k *TrustKey) {
	var pem []byte
	switch {
	case k.File != "" && k.PEM != "":
		v.at(p, "set only one of file or pem")
		return
	case k.File != "":
		orig := k.File
		k.File = absUnder(v.base, k.File)
		b, err := readKeyFile(k.File)
		if err != nil {
			v.at(p+".file", "cannot read public key %s: %v", orig, err)
			return
		}
		pem = b
	case k.PEM != "":
		pem = []byte(k.PEM)
	default:
		v.at(p, "needs file (a cosign.pub) or pem (the key's PEM text)")
		return
	}
	if err := checkPublicKey(pem); err != nil {
		field := ".pem"
		if k.File != "" {
			field = ".file"
		}
		v.at(p+field, "not a usable public key (want a PEM PUBLIC KEY, ECDSA P-256 or Ed25519, as cosign.pub): %v", err)
		return
	}
	k.Data = pem
}

// checkPublicKey accepts what signature verification can use: one PEM
// PUBLIC KEY block (PKIX) holding an ECDSA (P-256, P-384, P-521), Ed25519
// or RSA (2048 to 4096 bits) key.
func checkPublicKey(data []byte) error {
	block, rest := pem.Decode(data)
	if block == nil {
		return errors.New("no PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\"", block.Type)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("more than one PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return err
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 4096 {
			return fmt.Errorf("RSA key of %d bits, want 2048 to 4096", n)
		}
		return nil
	}
	return fmt.Errorf("%T keys are not supported", pub)
}

// maxKeyFile bounds a public key file: a PEM public key is a few hundred bytes.
const maxKeyFile = 64 << 10

// readKeyFile reads a regular file of at most maxKeyFile bytes.
func readKeyFile(p string) ([]byte, error) {
	// O_NONBLOCK: a FIFO named as the key must not hang the load; it is
	// refused below as not a regular file.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("larger than %d bytes: not a public key", maxKeyFile)
	}
	return b, nil
}

// images checks the images section.
func (v *validator) images() {
	im := &v.c.Images
	for i, h := range im.Insecure {
		if h == "" || strings.ContainsAny(h, "/ \t") {
			v.at(fmt.Sprintf("images.insecure[%d]", i), "%q is not a registry host (write host or host:port)", h)
		}
	}
	if im.Layout != "" {
		orig := im.Layout
		im.Layout = absUnder(v.base, im.Layout)
		v.exists("images.layout", orig, im.Layout, true)
	}
}

// image checks a boot.image reference: it parses, a trust rule covers it,
// and oci-layout directories are made absolute.
func (v *validator) image(p string, b *Boot) {
	r, err := ociref.Parse(b.Image)
	if err != nil {
		v.at(p, "%v", err)
		return
	}
	switch r.Kind {
	case ociref.Layout:
		r.Path = absUnder(v.base, r.Path)
		if r.Digest == "" {
			r.Tag = r.TagOr(ociref.DefaultTag)
		}
		b.Image = r.String()
	case ociref.Archive:
		v.at(p, "a docker-archive is not an image source: push it to a registry or an OCI layout (racklet-image copy)")
		return
	}
	repo := r.Repository()
	if _, _, _, ok := v.c.TrustFor(b.Image); !ok {
		v.at(p, "no trust rule covers repository %s: add one to trust: with the key its images are signed with (unsigned images are never booted)", repo)
	}
}
