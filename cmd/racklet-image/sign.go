package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/racklet/racklet-boot/internal/ociref"

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
		Use:   "keygen --out PREFIX [--type ecdsa-p256|ed25519]",
		Short: "Make a signing key pair: PREFIX.key (encrypted, cosign format) and PREFIX.pub",
		Args:  cobra.NoArgs,
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
	cmd.Flags().StringVar(&kind, "type", string(sign.ECDSAP256), "key type: ecdsa-p256 or ed25519")
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
			t, err := sign.ResolveTarget(cmd.Context(), args[0], g.registry())
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
			return signTarget(cmd.Context(), cmd.OutOrStdout(), t, signer, identity, g.registry())
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
			t, err := sign.ResolveTarget(cmd.Context(), args[0], g.registry())
			if err != nil {
				return err
			}
			ok, err := sign.CheckTarget(cmd.Context(), t, verifiers, g.registry())
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

func newCopyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image with its signatures between registries and oci-layout:DIR[:tag] (air-gapped racks)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := sign.Copy(cmd.Context(), args[0], args[1], g.registry())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %s to %s (%s) with %d signature(s)\n", args[0], args[1], res.Digest, res.Signatures)
			return nil
		},
	}
}

// signTarget signs a resolved image and says where the signature went.
func signTarget(ctx context.Context, w io.Writer, t sign.Target, signer signature.Signer, identity string, reg ociref.Options) error {
	if err := sign.SignTarget(ctx, t, signer, identity, reg); err != nil {
		return err
	}
	fmt.Fprintf(w, "signed %s (signature in %s)\n", t, sign.SignatureTag(t.Digest))
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
