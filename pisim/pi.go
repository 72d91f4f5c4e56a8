package pisim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"
)

// PrefixMode is the EEPROM's TFTP_PREFIX setting.
type PrefixMode int

// TFTP prefix modes.
const (
	PrefixSerial PrefixMode = 0 // the serial as 8 lowercase hex digits and a slash: "5b154510/"
	PrefixString PrefixMode = 1 // Pi.PrefixStr verbatim (TFTP_PREFIX_STR, includes its own slash)
	PrefixMAC    PrefixMode = 2 // the MAC with dashes and a slash: "dc-a6-32-01-36-c2/"
)

// Default board revisions sent in option 97.
const (
	BoardRevPi4 = 0x00a03111 // Pi 4 Model B 4GB, rev 1.1 (the docs/design.md capture)
	BoardRevPi5 = 0x00d04170 // Pi 5 8GB, rev 1.0
)

// Timing defaults, from the bootloader's documented behaviour.
const (
	DefaultDHCPRetry   = 4 * time.Second  // gap between DISCOVERs
	DefaultDHCPTimeout = 45 * time.Second // DHCP gives up after this
	DefaultFileTimeout = 30 * time.Second // TFTP_FILE_TIMEOUT, per whole file
	DefaultTFTPRetry   = time.Second      // retransmit after this much silence
	DefaultBlksize     = 1468             // firmware since late 2022; older sends 1024
)

// Pi is one simulated Raspberry Pi bootloader. Zero fields take the
// defaults documented on them. A Pi is not safe for concurrent Boots.
type Pi struct {
	Model     int              // 4 or 5
	Serial    uint32           // low 32 bits of the board serial
	MAC       net.HardwareAddr // the Pi's Ethernet address
	BoardRev  uint32           // option 97 board revision; default BoardRevPi4/BoardRevPi5
	FourCC    string           // option 97 FourCC: FourCCPi4 (default on Pi 4), FourCCPi5 (default on Pi 5), FourCCPi4New, FourCCPi5New, FourCCOld or any 4 bytes
	Prefix    PrefixMode       // TFTP_PREFIX
	PrefixStr string           // TFTP_PREFIX_STR, used with PrefixString
	Blksize   int              // TFTP blksize to ask for; default DefaultBlksize
	Menu      string           // option 43 menu text to look for (PXE_OPTION43); default DefaultMenu
	// BroadcastFlag sets the BOOTP broadcast flag. Real Pis leave it clear.
	BroadcastFlag bool
	// SignedBoot asks for boot.sig beside boot.img (SIGNED_BOOT=1).
	SignedBoot  bool
	DHCPRetry   time.Duration // default DefaultDHCPRetry
	DHCPTimeout time.Duration // default DefaultDHCPTimeout
	FileTimeout time.Duration // default DefaultFileTimeout
	TFTPRetry   time.Duration // default DefaultTFTPRetry
	Logger      *slog.Logger  `json:"-"` // nil discards
}

// Name is the Pi's serial as 8 lowercase hex digits, as in its TFTP prefix.
func (p *Pi) Name() string { return fmt.Sprintf("%08x", p.Serial) }

// fourCC returns the option 97 FourCC after defaults.
func (p *Pi) fourCC() string {
	if p.FourCC != "" {
		return p.FourCC
	}
	if p.Model == 5 {
		return FourCCPi5
	}
	return FourCCPi4
}

// boardRev returns the option 97 board revision after defaults.
func (p *Pi) boardRev() uint32 {
	switch {
	case p.BoardRev != 0:
		return p.BoardRev
	case p.Model == 5:
		return BoardRevPi5
	}
	return BoardRevPi4
}

// prefix returns the TFTP path prefix the Pi starts with.
func (p *Pi) prefix() string {
	switch p.Prefix {
	case PrefixString:
		return p.PrefixStr
	case PrefixMAC:
		return strings.ReplaceAll(p.MAC.String(), ":", "-") + "/"
	}
	return p.Name() + "/"
}

func (p *Pi) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return p.Logger
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// validate checks the fields a boot cannot do without.
func (p *Pi) validate() error {
	if p.Model != 4 && p.Model != 5 {
		return fmt.Errorf("pi model %d: want 4 or 5", p.Model)
	}
	if len(p.MAC) != 6 {
		return fmt.Errorf("pi %s: mac address %q is not 6 bytes", p.Name(), p.MAC)
	}
	if b := p.Blksize; b != 0 && (b < 8 || b > 65464) {
		return fmt.Errorf("pi %s: blksize %d outside 8..65464", p.Name(), b)
	}
	if _, err := option97(p.fourCC(), p.boardRev(), p.MAC, p.Serial); err != nil {
		return fmt.Errorf("pi %s: %w", p.Name(), err)
	}
	return nil
}

// Boot runs the Pi's network boot on a macvlan of the Linux interface iface
// (root needed) and returns its timeline. The error is non-nil only when the
// simulation itself could not run (bad Pi, no macvlan); a boot that fails on
// the wire is a Result with KernelLoaded false and the reason in Error.
func (p *Pi) Boot(ctx context.Context, iface string) (*Result, error) {
	if iface == "" {
		return nil, errors.New("no interface given for the simulated pi")
	}
	return p.BootOn(ctx, &MacvlanTransport{Parent: iface})
}

// BootOn runs the Pi's network boot over tr.
func (p *Pi) BootOn(ctx context.Context, tr Transport) (*Result, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	link, err := tr.Open(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("pi %s: open network link: %w", p.Name(), err)
	}
	defer link.Close()
	stop := context.AfterFunc(ctx, func() { link.Close() })
	defer stop()
	b := newBooter(p, link)
	b.run(ctx)
	return b.res, nil
}

// NewPis returns n Pis of the given model (4 or 5) with distinct serials and
// MACs (OUI dc:a6:32 on Pi 4, d8:3a:dd on Pi 5) drawn from seed, so one seed
// always gives the same rack.
func NewPis(n int, model int, seed uint64) []*Pi {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	oui := []byte{0xdc, 0xa6, 0x32}
	if model == 5 {
		oui = []byte{0xd8, 0x3a, 0xdd}
	}
	serials := map[uint32]bool{}
	macs := map[uint32]bool{}
	pis := make([]*Pi, 0, n)
	for len(pis) < n {
		s := rng.Uint32()
		m := rng.Uint32() & 0xffffff
		if s == 0 || serials[s] || macs[m] {
			continue
		}
		serials[s], macs[m] = true, true
		mac := net.HardwareAddr{oui[0], oui[1], oui[2], byte(m >> 16), byte(m >> 8), byte(m)}
		pis = append(pis, &Pi{Model: model, Serial: s, MAC: mac})
	}
	return pis
}

// NewMixedRack returns n Pis alternating Pi 4 and Pi 5, Pi 4 first: the Pi
// 4s are NewPis(…, 4, seed) and the Pi 5s NewPis(…, 5, seed+1), so the same
// seed always gives the same rack, and a smaller rack is a prefix of a
// larger one. It fails if the two draws share a serial.
func NewMixedRack(n int, seed uint64) ([]*Pi, error) {
	p4, p5 := NewPis((n+1)/2, 4, seed), NewPis(n/2, 5, seed+1)
	out := make([]*Pi, 0, n)
	seen := map[uint32]bool{}
	for i := 0; i < n; i++ {
		p := p4[i/2]
		if i%2 == 1 {
			p = p5[i/2]
		}
		if seen[p.Serial] {
			return nil, fmt.Errorf("seed %d gives two Pis serial %08x: pick another seed", seed, p.Serial)
		}
		seen[p.Serial] = true
		out = append(out, p)
	}
	return out, nil
}
