package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/internal/ociref"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/racklet/racklet-boot/sign"
)

// passwordEnv holds the private key passphrase; without it (or cosignPasswordEnv, which
// cosign users already have set) the commands prompt on a terminal.
const (
	passwordEnv       = "RACKLET_KEY_PASSWORD"
	cosignPasswordEnv = "COSIGN_PASSWORD"
)

// signingCommands returns keygen, sign and verify.
func signingCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newKeygenCmd(), newSignCmd(g), newVerifyCmd(g), newCopyCmd(g)}
}

// keys is what keygen prints with -o json|yaml.
type keys struct {
	Private string `json:"private"`
	Public  string `json:"public"`
	Type    string `json:"type"`
}

func newKeygenCmd() *cobra.Command {
	var prefix, kind string
	var force bool
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "keygen --prefix PREFIX [--type ecdsa-p256|ed25519|rsa2048]",
		Short: "Make a signing key pair: PREFIX.key (encrypted, cosign format) and PREFIX.pub",
		Long: `Make a signing key pair: PREFIX.key (PKCS#8, encrypted with the passphrase, cosign's
format) and PREFIX.pub (PEM public key).

--type rsa2048 makes the key a Raspberry Pi's EEPROM trusts for signed boot.img (HTTP boot,
secure boot): sign with "racklet-image build --boot-key PREFIX.key"; give the Pi PREFIX.pub
with "rpi-eeprom-config --pubkey PREFIX.pub" (see "racklet-boot eeprom").`,
		Example: `  RACKLET_KEY_PASSWORD=… racklet-image keygen --prefix /etc/racklet/signing
  racklet-image keygen --prefix racklet --type ed25519     # prompts for the passphrase twice
  racklet-image keygen --prefix boot --type rsa2048        # the Pi EEPROM's key for signed boot.img`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			if prefix == "" {
				return cli.Usagef("--prefix is required: the path prefix of the key files")
			}
			priv, err := sign.GenerateKey(sign.KeyType(kind))
			if err != nil {
				return err
			}
			pass, err := passphrase(cmd.ErrOrStderr(), true)
			if err != nil {
				return err
			}
			if err := sign.WriteKeyPair(prefix, priv, pass, force); err != nil {
				return err
			}
			v := keys{Private: prefix + ".key", Public: prefix + ".pub", Type: kind}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "wrote %s (private, encrypted) and %s\n", v.Private, v.Public)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&prefix, "prefix", "", "path prefix of the key files (required)")
	cmd.Flags().StringVar(&prefix, "out", "", "old spelling of --prefix")
	_ = cmd.Flags().MarkDeprecated("out", "use --prefix")
	cmd.Flags().StringVar(&kind, "type", string(sign.ECDSAP256), "key type: ecdsa-p256, ed25519 or rsa2048 (the Pi EEPROM key for boot.img)")
	cmd.Flags().BoolVar(&force, "force", false, "replace existing key files")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions([]string{"ecdsa-p256", "ed25519", "rsa2048"}, cobra.ShellCompDirectiveNoFileComp))
	out.Register(cmd)
	return cmd
}

func newSignCmd(g *globals) *cobra.Command {
	var key, identity string
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "sign REF --key KEY",
		Short: "Sign an image in a registry or oci-layout:DIR[:tag], the way cosign does",
		Example: `  racklet-image sign registry.lan:5000/racklet/os:v1 --key racklet.key
  racklet-image sign oci-layout:/srv/airgap:v1 --key racklet.key --identity registry.lan:5000/racklet/os`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
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
			if out.Format != "table" {
				if err := sign.SignTarget(cmd.Context(), t, signer, identity, g.registry()); err != nil {
					return err
				}
				return out.Write(cmd.OutOrStdout(), signed{Target: t.String(), Digest: t.Digest.String(), Signature: sign.SignatureTag(t.Digest)}, nil)
			}
			return signTarget(cmd.Context(), cmd.OutOrStdout(), t, signer, identity, g.registry())
		},
		ValidArgsFunction: completeArgs(g, refArg),
	}
	cmd.Flags().StringVar(&key, "key", "", "private key file (required)")
	cmd.Flags().StringVar(&identity, "identity", "", "docker-reference an oci-layout signature claims (default localhost/image)")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagFilename("key", "key")
	out.Register(cmd)
	return cmd
}

// signed is what sign prints with -o json|yaml.
type signed struct {
	Target    string `json:"target"`
	Digest    string `json:"digest"`
	Signature string `json:"signature"` // the tag of the signature image
}

func newVerifyCmd(g *globals) *cobra.Command {
	var keys []string
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "verify REF --key PUB",
		Short: "Verify an image's cosign-style signatures against public keys",
		Long: `Verify checks that the image carries at least one signature, in its sha256-<digest>.sig
image as cosign stores them, that verifies under one of the keys and covers exactly the image's
digest. An unsigned image or one no key verifies is refused (exit 77).`,
		Example: `  racklet-image verify registry.lan:5000/racklet/os:v1 --key racklet.pub
  racklet-image verify oci-layout:/srv/airgap:v1 --key old.pub --key new.pub -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
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
			v := verified{Target: t.String(), Digest: t.Digest.String()}
			for _, s := range ok {
				v.Signatures = append(v.Signatures, verifiedSig{Layer: s.Layer.String(), Key: keys[s.Key], Identity: s.Payload.Identity})
			}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintf(w, "verified %s: %d valid signature(s)\n", v.Target, len(v.Signatures))
				for _, s := range v.Signatures {
					fmt.Fprintf(w, "  %s by %s, claims %s\n", s.Layer, s.Key, s.Identity)
				}
				return nil
			})
		},
		ValidArgsFunction: completeArgs(g, refArg),
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "public key file (required; repeat to accept any of several)")
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagFilename("key", "pub")
	out.Register(cmd)
	return cmd
}

// verified is what verify prints with -o json|yaml.
type verified struct {
	Target     string        `json:"target"`
	Digest     string        `json:"digest"`
	Signatures []verifiedSig `json:"signatures"`
}

type verifiedSig struct {
	Layer    string `json:"layer"`
	Key      string `json:"key"`
	Identity string `json:"identity"`
}

// copied is what copy prints with -o json|yaml.
type copied struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Digest      string `json:"digest"`
	Signatures  int    `json:"signatures"`
}

func newCopyCmd(g *globals) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy an image with its signatures between registries and oci-layout:DIR[:tag] (air-gapped racks)",
		Example: `  racklet-image copy registry.lan:5000/racklet/os:v1 oci-layout:/media/usb/racklet:v1
  racklet-image copy oci-layout:/media/usb/racklet:v1 rack-registry:5000/racklet/os:v1 --insecure`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			p := cli.Stderr.NewProgress("copy "+args[0], g.logger())
			reg := g.registry()
			reg.Progress = p.Update
			res, err := sign.Copy(cmd.Context(), args[0], args[1], reg)
			p.Done()
			if err != nil {
				return err
			}
			v := copied{Source: args[0], Destination: args[1], Digest: res.Digest.String(), Signatures: res.Signatures}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "copied %s to %s (%s) with %d signature(s)\n", v.Source, v.Destination, v.Digest, v.Signatures)
				return err
			})
		},
		ValidArgsFunction: completeArgs(g, refArg, refArg),
	}
	out.Register(cmd)
	return cmd
}

// signTarget signs a resolved image and says where the signature went.
func signTarget(ctx context.Context, w io.Writer, t sign.Target, signer signature.Signer, identity string, reg ociref.Options) error {
	if err := sign.SignTarget(ctx, t, signer, identity, reg); err != nil {
		return err
	}
	fmt.Fprintf(w, "signed %s (signature in %s)\n", t, sign.SignatureTag(t.Digest))
	return nil
}

// passphrase reads the key passphrase from RACKLET_KEY_PASSWORD, else COSIGN_PASSWORD, else
// from the terminal (twice when confirm is set).
func passphrase(prompt io.Writer, confirm bool) ([]byte, error) {
	for _, env := range []string{passwordEnv, cosignPasswordEnv} {
		if p, ok := os.LookupEnv(env); ok {
			return []byte(p), nil
		}
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, cli.Usagef("no passphrase: set %s (or %s) or run on a terminal", passwordEnv, cosignPasswordEnv)
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
