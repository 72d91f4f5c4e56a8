// Package eeprom tells an operator what to put in a Raspberry Pi's
// bootloader EEPROM for a rack: the rpi-eeprom-config lines (BOOT_ORDER,
// TFTP_PREFIX, TFTP_IP, HTTP_HOST/HTTP_PORT/HTTP_PATH, PXE_OPTION43) that
// match the rack config racklet-boot serves, and for HTTP boot the public
// key the EEPROM must hold to accept the signed boot.img.
//
// It only renders: nothing here talks to a Pi or writes an EEPROM image.
// The operator feeds the lines to rpi-eeprom-config, as Settings.Apply
// spells out.
package eeprom

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strconv"

	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/sign"
)

// Mode is how the Pis fetch their boot files.
type Mode string

// Boot modes.
const (
	// ModeTFTP is network boot (BOOT_ORDER digit 2): DHCP, then TFTP of the
	// boot files under the Pi's serial.
	ModeTFTP Mode = "tftp"
	// ModeHTTP is HTTP boot (digit 7): GET boot.sig and the signed boot.img
	// from one URL for the whole rack.
	ModeHTTP Mode = "http"
)

// Prefix is the TFTP_PREFIX the rack uses; racklet-boot serves both forms.
type Prefix string

// TFTP prefixes.
const (
	PrefixSerial Prefix = "serial" // TFTP_PREFIX=0: "<serial>/" (the firmware default)
	PrefixMAC    Prefix = "mac"    // TFTP_PREFIX=2: "<mac with dashes>/"
)

// DefaultHTTPPath is the bootloader's own HTTP_PATH default; any path works
// with racklet-boot, which answers every .../boot.img by client address.
const DefaultHTTPPath = "net_install"

// Options choose what the rack's Pis do.
type Options struct {
	// Mode is ModeTFTP (default) or ModeHTTP.
	Mode Mode
	// SDFirst tries the SD card before the network (BOOT_ORDER 0xf21 or
	// 0xf71), for nodes that keep an A/B disk; default network only.
	SDFirst bool
	// Prefix is the TFTP_PREFIX form; default PrefixSerial.
	Prefix Prefix
	// HTTPPath is HTTP_PATH; default DefaultHTTPPath.
	HTTPPath string
	// PubKeyFile is the PEM RSA-2048 public key that verifies boot.img
	// (racklet-image keygen --type rsa2048). Required for ModeHTTP.
	PubKeyFile string
}

// Setting is one line of the bootloader config.
type Setting struct {
	Name  string `json:"name" yaml:"name"`
	Value string `json:"value" yaml:"value"`
	// Why says what the line is for, for the operator.
	Why string `json:"why" yaml:"why"`
}

// PubKey is the key the EEPROM must hold for signed HTTP boot.
type PubKey struct {
	File  string `json:"file" yaml:"file"`
	KeyID string `json:"keyId" yaml:"keyId"` // sha256 of its PKIX DER, as image manifests record it
}

// Settings are what a rack's Pis need in their EEPROM.
type Settings struct {
	Mode     Mode      `json:"mode" yaml:"mode"`
	Server   string    `json:"server" yaml:"server"`
	Settings []Setting `json:"settings" yaml:"settings"`
	// PubKey is set for ModeHTTP.
	PubKey *PubKey `json:"pubkey,omitempty" yaml:"pubkey,omitempty"`
	// Apply are the commands that write the settings (and key) into an
	// EEPROM image and schedule the update, with boot.conf holding Conf().
	Apply []string `json:"apply" yaml:"apply"`
}

// ErrOptions means the options do not fit the rack config.
var ErrOptions = errors.New("eeprom settings")

// For renders the settings cfg's Pis need under opts.
func For(cfg *rack.Config, opts Options) (*Settings, error) {
	if opts.Mode == "" {
		opts.Mode = ModeTFTP
	}
	if opts.Prefix == "" {
		opts.Prefix = PrefixSerial
	}
	if opts.HTTPPath == "" {
		opts.HTTPPath = DefaultHTTPPath
	}
	if !cfg.Server.Address.Is4() {
		return nil, fmt.Errorf("%w: server.address %q is not an IPv4 address the bootloader can reach", ErrOptions, cfg.Server.Address)
	}
	addr := cfg.Server.Address.String()
	s := &Settings{Mode: opts.Mode, Server: addr}
	add := func(name, value, why string) { s.Settings = append(s.Settings, Setting{name, value, why}) }
	order := map[bool]map[Mode]string{
		false: {ModeTFTP: "0xf2", ModeHTTP: "0xf7"},
		true:  {ModeTFTP: "0xf21", ModeHTTP: "0xf71"},
	}[opts.SDFirst][opts.Mode]
	switch opts.Mode {
	case ModeTFTP:
		why := "network boot (2), then start over (f)"
		if opts.SDFirst {
			why = "SD card (1), then network boot (2), then start over (f)"
		}
		add("BOOT_ORDER", order, why)
		switch opts.Prefix {
		case PrefixSerial:
			add("TFTP_PREFIX", "0", "ask for <serial>/file: racklet-boot knows each node by its serial")
		case PrefixMAC:
			add("TFTP_PREFIX", "2", "ask for <mac-with-dashes>/file: racklet-boot knows each node by its MAC")
		default:
			return nil, fmt.Errorf("%w: prefix %q: want serial or mac", ErrOptions, opts.Prefix)
		}
		if cfg.DHCP.Mode == rack.DHCPOff {
			add("TFTP_IP", addr, "dhcp.mode is off: the router's DHCP names no TFTP server, so name racklet-boot")
		}
		if cfg.Server.TFTPPort != 0 && cfg.Server.TFTPPort != 69 {
			return nil, fmt.Errorf("%w: server.tftpPort is %d; the bootloader only asks port 69", ErrOptions, cfg.Server.TFTPPort)
		}
	case ModeHTTP:
		why := "HTTP boot (7), then start over (f)"
		if opts.SDFirst {
			why = "SD card (1), then HTTP boot (7), then start over (f)"
		}
		add("BOOT_ORDER", order, why)
		port := cfg.Server.HTTPPort
		if port == 0 {
			port = 80
		}
		add("HTTP_HOST", addr, "racklet-boot's address; plain HTTP, one URL for the rack (the node is chosen by its address)")
		add("HTTP_PORT", strconv.Itoa(port), "server.httpPort")
		add("HTTP_PATH", opts.HTTPPath, "any path: racklet-boot answers <path>/boot.sig and <path>/boot.img")
		if opts.PubKeyFile == "" {
			return nil, fmt.Errorf("%w: HTTP boot needs the RSA-2048 public key that signs boot.img (--pubkey FILE; racklet-image keygen --type rsa2048)", ErrOptions)
		}
		k, err := sign.LoadBootPublicKey(opts.PubKeyFile)
		if err != nil {
			return nil, err
		}
		s.PubKey = &PubKey{File: opts.PubKeyFile, KeyID: keyID(k)}
	default:
		return nil, fmt.Errorf("%w: mode %q: want tftp or http", ErrOptions, opts.Mode)
	}
	if cfg.DHCP.PiMenu != "" && cfg.DHCP.PiMenu != rack.DefaultPiMenu && opts.Mode == ModeTFTP {
		add("PXE_OPTION43", cfg.DHCP.PiMenu, "dhcp.piMenu: the menu text the bootloader looks for in option 43")
	}
	apply := "rpi-eeprom-config --config boot.conf --out pieeprom.upd pieeprom.bin"
	if s.PubKey != nil {
		apply = "rpi-eeprom-config --config boot.conf --pubkey " + s.PubKey.File + " --out pieeprom.upd pieeprom.bin"
	}
	s.Apply = []string{apply, "rpi-eeprom-update -d -f pieeprom.upd"}
	return s, nil
}

func keyID(k *rsa.PublicKey) string {
	id, err := sign.KeyID(k)
	if err != nil {
		return ""
	}
	return id
}
