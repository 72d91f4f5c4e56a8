package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/racklet/racklet-boot/sign"
)

// passwordEnv holds the private key passphrase; without it the commands prompt on a terminal.
const passwordEnv = "RACKLET_KEY_PASSWORD"

// signingCommands returns keygen, sign and verify.
func signingCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newKeygenCmd(), newSignCmd(g), newVerifyCmd(g), newCopyCmd(g)}
}

func newKeygenCmd() *cobra.Command {
	var out, kind string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen --out PREFIX [--type ecdsa-p256|ed25519|rsa2048]",
		Short: "Make a signing key pair: PREFIX.key (encrypted, cosign format) and PREFIX.pub",
		Long: `Make a signing key pair: PREFIX.key (PKCS#8, encrypted with the passphrase, cosign's
format) and PREFIX.pub (PEM public key).

--type rsa2048 makes the key a Raspberry Pi's EEPROM trusts for signed boot.img (HTTP boot,
secure boot): sign with "racklet-image build --boot-key PREFIX.key"; give the Pi PREFIX.pub
with "rpi-eeprom-config --pubkey PREFIX.pub" (see "racklet-boot eeprom").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			priv, err := sign.GenerateKey(sign.KeyType(kind))
			if err != nil {
				return err
			}
			pass, err := passphrase(cmd.ErrOrStderr(), true)
			if err != nil {
				return err
			}
			if err := sign.WriteKeyPair(out, priv, pass, force); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s.key (private, encrypted) and %s.pub\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "path prefix of the key files (required)")
	cmd.Flags().StringVar(&kind, "type", string(sign.ECDSAP256), "key type: ecdsa-p256, ed25519 or rsa2048 (the Pi EEPROM key for boot.img)")
	cmd.Flags().BoolVar(&force, "force", false, "replace existing key files")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newSignCmd(g *globals) *cobra.Command {
	var key, identity string
	cmd := &cobra.Command{
		Use:   "sign REF --key KEY",
		Short: "Sign an image in a registry or oci-layout:DIR[:tag], the way cosign does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := resolveTarget(cmd.Context(), args[0], g.insecure)
			if err != nil {
				return err
			}
			pass, err := passphrase(cmd.ErrOrStderr(), false)
			if err != nil {
				return err
			}
			signer, err := sign.LoadPrivateKey(key, pass)
			if err != nil {
				return err
			}
			return signTarget(cmd.Context(), cmd.OutOrStdout(), t, signer, identity)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "private key file (required)")
	cmd.Flags().StringVar(&identity, "identity", "", "docker-reference an oci-layout signature claims (default localhost/image)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func newVerifyCmd(g *globals) *cobra.Command {
	var keys []string
	cmd := &cobra.Command{
		Use:   "verify REF --key PUB",
		Short: "Verify an image's cosign-style signatures against public keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var verifiers []signature.Verifier
			for _, k := range keys {
				v, err := sign.LoadPublicKey(k)
				if err != nil {
					return err
				}
				verifiers = append(verifiers, v)
			}
			t, err := resolveTarget(cmd.Context(), args[0], g.insecure)
			if err != nil {
				return err
			}
			var ok []sign.Verified
			if t.layout != "" {
				ok, err = sign.VerifyLayout(cmd.Context(), t.layout, t.digest, verifiers)
			} else {
				ok, err = sign.Check(cmd.Context(), t.ref, verifiers, remoteOptions(cmd.Context())...)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "verified %s: %d valid signature(s)\n", t, len(ok))
			for _, v := range ok {
				fmt.Fprintf(w, "  %s by %s, claims %s\n", v.Layer, keys[v.Key], v.Payload.Identity)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "public key file (required; repeat to accept any of several)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// target is a resolved image: a registry digest reference or a digest in an OCI layout.
type target struct {
	ref    name.Digest
	layout string
	digest v1.Hash
}

func (t target) String() string {
	if t.layout != "" {
		return "oci-layout:" + t.layout + "@" + t.digest.String()
	}
	return t.ref.String()
}

// resolveTarget turns REF (host/repo:tag, host/repo@sha256:…, oci-layout:DIR[:tag|@sha256:…])
// into a digest, asking the registry for a tag's digest.
func resolveTarget(ctx context.Context, ref string, insecure bool) (target, error) {
	if spec, ok := strings.CutPrefix(ref, "oci-layout:"); ok {
		dir, tag := spec, "latest"
		if i := strings.LastIndex(spec, "@"); i > 0 {
			dir, tag = spec[:i], spec[i+1:]
		} else if i := strings.LastIndex(spec, ":"); i > 0 && !strings.Contains(spec[i:], "/") {
			dir, tag = spec[:i], spec[i+1:]
		}
		d, err := sign.ResolveLayout(dir, tag)
		if err != nil {
			return target{}, err
		}
		return target{layout: dir, digest: d}, nil
	}
	if strings.HasPrefix(ref, "docker-archive:") {
		return target{}, fmt.Errorf("%s: a signature needs a registry or an OCI layout to live in", ref)
	}
	var no []name.Option
	if insecure {
		no = append(no, name.Insecure)
	}
	r, err := name.ParseReference(ref, no...)
	if err != nil {
		return target{}, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	dr, ok := r.(name.Digest)
	if !ok {
		desc, err := remote.Head(r, remoteOptions(ctx)...)
		if err != nil {
			return target{}, fmt.Errorf("resolve %s: %w", ref, err)
		}
		dr = r.Context().Digest(desc.Digest.String())
	}
	d, err := v1.NewHash(dr.DigestStr())
	if err != nil {
		return target{}, fmt.Errorf("digest of %s: %w", ref, err)
	}
	return target{ref: dr, digest: d}, nil
}

func remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
}

func newCopyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image with its signatures between registries and oci-layout:DIR[:tag] (air-gapped racks)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := sign.Copy(cmd.Context(), args[0], args[1], g.insecure, remoteOptions(cmd.Context())...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %s to %s (%s) with %d signature(s)\n", args[0], args[1], res.Digest, res.Signatures)
			return nil
		},
	}
}

// signTarget signs a resolved image and says where the signature went.
func signTarget(ctx context.Context, w io.Writer, t target, signer signature.Signer, identity string) error {
	var err error
	if t.layout != "" {
		err = sign.SignLayout(ctx, t.layout, t.digest, identity, signer)
	} else {
		err = sign.Sign(ctx, t.ref, signer, remoteOptions(ctx)...)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "signed %s (signature in %s)\n", t, sign.SignatureTag(t.digest))
	return nil
}

// passphrase reads the key passphrase from RACKLET_KEY_PASSWORD, else from the terminal
// (twice when confirm is set).
func passphrase(prompt io.Writer, confirm bool) ([]byte, error) {
	if p, ok := os.LookupEnv(passwordEnv); ok {
		return []byte(p), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, fmt.Errorf("no passphrase: set %s or run on a terminal", passwordEnv)
	}
	fmt.Fprint(prompt, "Key passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(prompt)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if confirm {
		fmt.Fprint(prompt, "Again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, fmt.Errorf("read passphrase: %w", err)
		}
		if string(again) != string(p) {
			return nil, errors.New("passphrases differ")
		}
	}
	return p, nil
}
