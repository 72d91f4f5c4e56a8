// Package bootparams is the contract between the image builder, which writes a
// node's kernel command line, and racklet-agent, which reads it as PID 1 of the
// initramfs. Everything on the command line is signed (the image manifest pins
// it) and measured (the agent extends it into the HAT), so it may name what the
// node must boot, never a secret.
//
// The keys, all prefixed "racklet.":
//
//	racklet.roothash=HEX      dm-verity root hash of the root squashfs
//	racklet.salt=HEX          dm-verity salt ("-" for none)
//	racklet.datablocks=N      4096-byte data blocks of the root squashfs
//	racklet.hashoffset=N      byte offset of the verity superblock in the hash device (0: root.verity)
//	racklet.root=sha256:HEX   digest of root.squashfs (checked while it streams)
//	racklet.verity=sha256:HEX digest of root.verity
//	racklet.rootdev=PARTUUID=SSSSSSSS-PP  the root slot on a disk-booted node: MBR disk
//	                          signature and partition number, both zero-filled hex
//	                          (the kernel's root=PARTUUID= form); absent on network-booted nodes
//	racklet.hat=PATH|none     the HAT link's device (default /dev/virtio-ports/racklet.hat, then /dev/ttyAMA1... as the agent decides)
//	racklet.server=URL        racklet-boot's base URL; default: learned from DHCP
//	racklet.node=NAME         the node's name; default: asked of racklet-boot
//	racklet.kernel=NAME       the boot file name racklet-boot serves this kernel as (measured into the HAT)
//	racklet.overlay=tmpfs|data  where the overlay's upper directory lives (default tmpfs)
//	racklet.onfailure=reboot:SECONDS|halt|shell  what a failed boot does (default reboot:10)
//	racklet.debug             verbose console output; allows onfailure=shell
//
// Words that are not racklet.* keys (console=, quiet, ...) are the kernel's and
// are kept as they are.
package bootparams

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Prefix starts every key of this package on the command line.
const Prefix = "racklet."

// Failure actions (Params.OnFailure).
const (
	FailReboot = "reboot"
	FailHalt   = "halt"
	FailShell  = "shell"
)

// Overlay upper directory locations (Params.Overlay).
const (
	OverlayTmpfs = "tmpfs"
	OverlayData  = "data"
)

// Params are the racklet.* words of a kernel command line.
type Params struct {
	RootHash   string // hex
	Salt       string // hex, "" for none
	DataBlocks uint64
	HashOffset uint64
	Root       string // "sha256:<hex>" of root.squashfs
	Verity     string // "sha256:<hex>" of root.verity
	// RootDev is the root partition of a disk-booted node, "PARTUUID=SSSSSSSS-PP"
	// ("" on nodes that fetch their root over the network).
	RootDev string
	HAT     string // device path, "none", or "" for the agent's default
	Server  string // base URL, "" to learn it from DHCP
	Node    string // "" to ask racklet-boot
	// Kernel is the name of the kernel among the node's boot files (e.g.
	// "vmlinuz", "kernel8.img"); the agent fetches it from racklet-boot to
	// measure it. Required when the node attests.
	Kernel    string
	Overlay   string // OverlayTmpfs (default) or OverlayData
	OnFailure string // FailReboot (default), FailHalt or FailShell
	// RebootAfter is the delay before FailReboot, in seconds (default 10).
	RebootAfter int
	Debug       bool
}

var (
	hexRe     = regexp.MustCompile(`^[0-9a-f]+$`)
	digestRe  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	fileRe    = regexp.MustCompile(`^[A-Za-z0-9._-][A-Za-z0-9._/+-]{0,254}$`)
	rootDevRe = regexp.MustCompile(`^PARTUUID=[0-9a-f]{8}-[0-9a-f]{2}$`)
)

// PartUUID renders the racklet.rootdev value of partition part of an MBR
// disk with signature diskID, as the kernel matches it: both in zero-filled
// lower-case hex ("PARTUUID=1234abcd-06" for partition 6).
func PartUUID(diskID uint32, part int) string {
	return fmt.Sprintf("PARTUUID=%08x-%02x", diskID, part)
}

// ParsePartUUID reads a racklet.rootdev value back into its disk signature
// and partition number.
func ParsePartUUID(s string) (diskID uint32, part int, err error) {
	if !rootDevRe.MatchString(s) {
		return 0, 0, fmt.Errorf("racklet.rootdev %q: want PARTUUID=SSSSSSSS-PP (lower-case hex)", s)
	}
	id, _ := strconv.ParseUint(s[9:17], 16, 32)
	pp, _ := strconv.ParseUint(s[18:], 16, 8)
	if pp == 0 {
		return 0, 0, fmt.Errorf("racklet.rootdev %q: partitions are numbered from 1", s)
	}
	return uint32(id), int(pp), nil
}

// Validate checks a complete set of parameters (what an image must carry).
func (p Params) Validate() error {
	var errs []error
	if len(p.RootHash) != 64 || !hexRe.MatchString(p.RootHash) {
		errs = append(errs, fmt.Errorf("racklet.roothash %q: want 64 lower-case hex digits", p.RootHash))
	}
	if p.Salt != "" && (len(p.Salt)%2 != 0 || len(p.Salt) > 512 || !hexRe.MatchString(p.Salt)) {
		errs = append(errs, fmt.Errorf("racklet.salt %q: want an even number of lower-case hex digits", p.Salt))
	}
	if p.DataBlocks == 0 {
		errs = append(errs, errors.New("racklet.datablocks: want the number of 4096-byte blocks of the root"))
	}
	if p.HashOffset%4096 != 0 {
		errs = append(errs, fmt.Errorf("racklet.hashoffset %d: want a multiple of 4096", p.HashOffset))
	}
	for _, d := range []struct{ key, v string }{{"racklet.root", p.Root}, {"racklet.verity", p.Verity}} {
		if !digestRe.MatchString(d.v) {
			errs = append(errs, fmt.Errorf("%s %q: want sha256:<64 hex digits>", d.key, d.v))
		}
	}
	if p.Kernel != "" && (!fileRe.MatchString(p.Kernel) || strings.Contains(p.Kernel, "..")) {
		errs = append(errs, fmt.Errorf("racklet.kernel %q: not a boot file name", p.Kernel))
	}
	if p.RootDev != "" {
		if _, _, err := ParsePartUUID(p.RootDev); err != nil {
			errs = append(errs, err)
		}
	}
	if p.Node != "" && !nameRe.MatchString(p.Node) {
		errs = append(errs, fmt.Errorf("racklet.node %q: not a node name", p.Node))
	}
	switch p.Overlay {
	case "", OverlayTmpfs, OverlayData:
	default:
		errs = append(errs, fmt.Errorf("racklet.overlay %q: want tmpfs or data", p.Overlay))
	}
	switch p.OnFailure {
	case "", FailReboot, FailHalt, FailShell:
	default:
		errs = append(errs, fmt.Errorf("racklet.onfailure %q: want reboot[:SECONDS], halt or shell", p.OnFailure))
	}
	if p.RebootAfter < 0 {
		errs = append(errs, fmt.Errorf("racklet.onfailure reboot delay %d is negative", p.RebootAfter))
	}
	return errors.Join(errs...)
}

// WithDefaults fills in the defaults an agent applies.
func (p Params) WithDefaults() Params {
	if p.Overlay == "" {
		p.Overlay = OverlayTmpfs
	}
	if p.OnFailure == "" {
		p.OnFailure = FailReboot
	}
	if p.OnFailure == FailReboot && p.RebootAfter == 0 {
		p.RebootAfter = 10
	}
	if p.OnFailure == FailShell && !p.Debug {
		// A shell on a node is an open door; only a debug command line asks for one.
		p.OnFailure = FailReboot
		if p.RebootAfter == 0 {
			p.RebootAfter = 10
		}
	}
	return p
}

// String renders the parameters as racklet.* words, in a fixed order, leaving
// out the empty ones.
func (p Params) String() string {
	var w []string
	add := func(k, v string) {
		if v != "" {
			w = append(w, Prefix+k+"="+v)
		}
	}
	add("roothash", p.RootHash)
	salt := p.Salt
	if salt == "" && p.RootHash != "" {
		salt = "-"
	}
	add("salt", salt)
	if p.DataBlocks > 0 {
		add("datablocks", strconv.FormatUint(p.DataBlocks, 10))
	}
	if p.HashOffset > 0 {
		add("hashoffset", strconv.FormatUint(p.HashOffset, 10))
	}
	add("root", p.Root)
	add("verity", p.Verity)
	add("rootdev", p.RootDev)
	add("hat", p.HAT)
	add("server", p.Server)
	add("node", p.Node)
	add("kernel", p.Kernel)
	add("overlay", p.Overlay)
	switch {
	case p.OnFailure == FailReboot && p.RebootAfter != 0:
		add("onfailure", FailReboot+":"+strconv.Itoa(p.RebootAfter))
	default:
		add("onfailure", p.OnFailure)
	}
	if p.Debug {
		w = append(w, Prefix+"debug")
	}
	return strings.Join(w, " ")
}

// Parse reads the racklet.* words of a kernel command line (as in
// /proc/cmdline) and returns them with the remaining words. Unknown racklet.*
// keys and malformed values are errors: the command line is signed, so a word
// the agent does not understand means agent and image do not match.
// Parse does not call Validate.
func Parse(cmdline string) (Params, []string, error) {
	var p Params
	var rest []string
	var errs []error
	for _, word := range strings.Fields(cmdline) {
		if !strings.HasPrefix(word, Prefix) {
			rest = append(rest, word)
			continue
		}
		k, v, hasValue := strings.Cut(strings.TrimPrefix(word, Prefix), "=")
		var err error
		switch k {
		case "roothash":
			p.RootHash = v
		case "salt":
			if v != "-" {
				p.Salt = v
			}
		case "datablocks":
			p.DataBlocks, err = strconv.ParseUint(v, 10, 64)
		case "hashoffset":
			p.HashOffset, err = strconv.ParseUint(v, 10, 64)
		case "root":
			p.Root = v
		case "verity":
			p.Verity = v
		case "rootdev":
			p.RootDev = v
		case "hat":
			p.HAT = v
		case "server":
			p.Server = v
		case "node":
			p.Node = v
		case "kernel":
			p.Kernel = v
		case "overlay":
			p.Overlay = v
		case "onfailure":
			action, secs, hasSecs := strings.Cut(v, ":")
			p.OnFailure = action
			if hasSecs {
				if action != FailReboot {
					err = errors.New("only reboot takes a delay")
				} else {
					p.RebootAfter, err = strconv.Atoi(secs)
				}
			}
		case "debug":
			if hasValue {
				err = errors.New("takes no value")
			}
			p.Debug = true
		default:
			errs = append(errs, fmt.Errorf("unknown key %q", word))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", word, err))
		} else if !hasValue && k != "debug" {
			errs = append(errs, fmt.Errorf("%s: missing =value", word))
		}
	}
	if len(errs) > 0 {
		return Params{}, nil, fmt.Errorf("kernel command line: %w", errors.Join(errs...))
	}
	return p, rest, nil
}
