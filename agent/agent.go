// Package agent is the node side of attestation, run from a node's
// initramfs: it measures what the node booted into its HAT, gets a nonce from
// racklet-boot (attest.Client), has the HAT quote, submits the quote and has
// the HAT open the secrets racklet-boot releases. cmd/racklet-agent is its
// command line.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/hatlink"
)

// Refused is racklet-boot's refusal of a quote: nothing was released.
type Refused = attest.Refused

// Options say where the server is and what the node booted.
type Options struct {
	Node   string // node name as the rack config has it
	Server string // racklet-boot base URL, e.g. http://10.0.0.2:80
	// Measurements of what the node booted (attest.MeasureFiles builds them).
	Measurements attest.Measurements
	HTTPClient   *http.Client // default http.DefaultClient
	Logger       *slog.Logger // nil discards
}

// Result is what a successful attestation brings back.
type Result struct {
	Secrets     map[string][]byte // by name: attest.SecretJoinToken, attest.SecretDiskKey
	BootCounter uint64
	Image       string
	// Remeasured is false when the registers already held these
	// measurements (the agent ran before in this boot).
	Remeasured bool
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Measure extends the HAT's boot registers with m, once per boot: if the
// registers already hold exactly m it does nothing and reports false. If
// they hold something else (this boot was measured differently), it leaves
// them alone, as a measured boot must, and returns an error saying so; the
// quote will carry the registers as they are.
func Measure(ctx context.Context, c *hatlink.Client, m attest.Measurements) (bool, error) {
	want, err := m.Registers()
	if err != nil {
		return false, err
	}
	cur, err := c.Read(ctx, hatlink.BootMask)
	if err != nil {
		return false, fmt.Errorf("read HAT registers: %w", err)
	}
	if cur == want {
		return false, nil
	}
	if cur.Values != [hatlink.NumRegisters][32]byte{} {
		return false, ErrMeasuredOtherwise
	}
	d, err := m.Digests()
	if err != nil {
		return false, err
	}
	for reg, digest := range d {
		if _, err := c.Extend(ctx, byte(reg), digest); err != nil {
			return false, fmt.Errorf("extend HAT register %d: %w", reg, err)
		}
	}
	return true, nil
}

// ErrMeasuredOtherwise: the registers already hold other measurements in this boot.
var ErrMeasuredOtherwise = errors.New("HAT registers already hold other measurements from this boot; power-cycle the node (or the HAT simulator) to measure anew")

// Attest runs the whole exchange and returns the opened secrets.
func Attest(ctx context.Context, c *hatlink.Client, o Options) (Result, error) {
	log := logger(o.Logger)
	id, err := c.Identity(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("HAT identity: %w", err)
	}
	res := Result{}
	res.Remeasured, err = Measure(ctx, c, o.Measurements)
	if errors.Is(err, ErrMeasuredOtherwise) {
		log.Warn("registers were measured before in this boot with other values; quoting them as they are", "node", o.Node)
	} else if err != nil {
		return Result{}, err
	}
	api := &attest.Client{Server: o.Server, HTTP: o.HTTPClient}
	ch, err := api.Challenge(ctx, o.Node)
	if err != nil {
		return Result{}, err
	}
	q, err := c.Quote(ctx, [32]byte(ch.Nonce), hatlink.BootMask)
	if err != nil {
		return Result{}, fmt.Errorf("HAT quote: %w", err)
	}
	sub := attest.QuoteSubmission{Node: o.Node, Key: hatlink.EncodeKey(id.SignKey), Statement: q.Statement, Signature: q.Signature[:]}
	rel, err := api.Quote(ctx, sub)
	if err != nil {
		return Result{}, err
	}
	res.BootCounter, res.Image, res.Secrets = rel.BootCounter, rel.Image, map[string][]byte{}
	for _, s := range rel.Secrets {
		plain, err := c.Unwrap(ctx, s.Envelope)
		if err != nil {
			return Result{}, fmt.Errorf("HAT could not open secret %q: %w", s.Name, err)
		}
		res.Secrets[s.Name] = plain
	}
	log.Info("attestation accepted", "node", o.Node, "secrets", len(res.Secrets), "bootCounter", res.BootCounter)
	return res, nil
}
