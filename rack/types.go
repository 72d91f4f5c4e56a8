// Package rack holds the declarative rack config: its types, parsing with
// line-numbered validation errors, and defaults. Consumers (DHCP, the resolver,
// the HTTP API) read a *Config snapshot; they never parse YAML themselves.
package rack

import (
	"net"
	"net/netip"
	"time"
)

// APIVersion and Kind identify the rack config format this package reads.
const (
	APIVersion = "racklet.io/v1alpha1"
	Kind       = "Rack"
)

// Config is one parsed, validated rack config.
type Config struct {
	APIVersion      string        `yaml:"apiVersion"`
	Kind            string        `yaml:"kind"`
	Server          Server        `yaml:"server"`
	DHCP            DHCP          `yaml:"dhcp"`
	Boot            BootSettings  `yaml:"boot"`
	UnknownMachines UnknownPolicy `yaml:"unknownMachines"`
	// Enrolment says how a node of the config without a hatKey gets a
	// trusted HAT key: preprovisioned (the default), approve or tofu.
	Enrolment EnrolmentMode `yaml:"enrolment"`
	Default   *Boot         `yaml:"default,omitempty"` // boot source for unknown machines when UnknownMachines is "default"
	Nodes     []Node        `yaml:"nodes"`
	// Trust says which keys must have signed the images of which
	// repositories; the first rule whose pattern matches wins.
	Trust []TrustRule `yaml:"trust,omitempty"`
	// Images tunes how images are fetched.
	Images Images `yaml:"images"`
	// Groups are sets of nodes that run one image and take new ones in
	// staged rollouts (groups.go).
	Groups []Group `yaml:"groups,omitempty"`
	// Kubernetes names the cluster the nodes join (kubeadm join with a
	// token released after attestation); nil when they join none.
	Kubernetes *Kubernetes `yaml:"kubernetes,omitempty"`
}

// TrustRule names the keys trusted for image repositories.
type TrustRule struct {
	// Repositories are glob patterns (path.Match) on the repository of a
	// reference, as in "registry.lan:5000/racklet/*" or "oci-layout:/srv/images".
	Repositories []string   `yaml:"repositories"`
	Keys         []TrustKey `yaml:"keys"`
	// Line is where the rule starts in the config file (for messages).
	Line int `yaml:"-"`
}

// TrustKey is one public key (PEM PKIX, as cosign.pub): a file or the PEM text.
type TrustKey struct {
	File string `yaml:"file,omitempty"` // relative to the config file's directory
	PEM  string `yaml:"pem,omitempty"`
	// Data is the key's PEM, as validation read it (from File or PEM): the
	// image store makes its verifiers from it.
	Data []byte `yaml:"-"`
}

// Images says how image references are fetched.
type Images struct {
	// Insecure lists registry hosts ("host:port") reached over plain HTTP.
	Insecure []string `yaml:"insecure,omitempty"`
	// Layout is an OCI layout directory used instead of registries (an
	// air-gapped rack): boot.image references are looked up in it by tag.
	Layout string `yaml:"layout,omitempty"`
}

// Server names where racklet-boot listens and what address clients use to reach it.
type Server struct {
	Interface string     `yaml:"interface"` // where DHCP listens
	Address   netip.Addr `yaml:"address"`   // what clients use for TFTP/HTTP (siaddr, URLs)
	DataDir   string     `yaml:"dataDir"`   // leases, node state, image cache
	HTTPPort  int        `yaml:"httpPort"`  // default 80
	TFTPPort  int        `yaml:"tftpPort"`  // default 69
	// BMCPort is where the nodes' HATs connect as board-management
	// controllers (power, console, enrolment); default 7070.
	BMCPort int `yaml:"bmcPort"`
	// RouterAdvertisements answers IPv6 router solicitations on Interface
	// with a router advertisement that configures nothing, so iPXE stops
	// waiting for IPv6 autoconfiguration (~13 s) at once. Default true; set
	// false where a real IPv6 router serves the segment.
	RouterAdvertisements *bool `yaml:"routerAdvertisements,omitempty"`
}

// AdvertiseRouter reports whether racklet-boot answers router
// solicitations (server.routerAdvertisements, default true).
func (s Server) AdvertiseRouter() bool {
	return s.RouterAdvertisements == nil || *s.RouterAdvertisements
}

// DHCPMode is how racklet-boot takes part in DHCP on the segment.
type DHCPMode string

// DHCP modes.
const (
	DHCPProxy DHCPMode = "proxy" // beside an existing router: boot options only, never addresses
	DHCPFull  DHCPMode = "full"  // racklet-boot hands out addresses from Pool
	DHCPOff   DHCPMode = "off"   // no DHCP at all (static or TFTP_IP-configured clients)
)

// DHCP is the DHCP section of the config.
type DHCP struct {
	Mode      DHCPMode      `yaml:"mode"`
	Pool      *Pool         `yaml:"pool,omitempty"` // full mode only
	Subnet    netip.Prefix  `yaml:"subnet"`         // full mode: defaults to the /24 around Server.Address
	Router    netip.Addr    `yaml:"router"`
	DNS       []netip.Addr  `yaml:"dns"`
	Domain    string        `yaml:"domain"`
	LeaseTime time.Duration `yaml:"leaseTime"` // default 1h
	// PiMenu is the option 43 menu text the Pi bootloader substring-matches
	// ("Raspberry Pi Boot" unless the EEPROM's PXE_OPTION43 says otherwise).
	PiMenu string `yaml:"piMenu"`
}

// Pool is an inclusive range of addresses handed out in full mode.
type Pool struct {
	Start netip.Addr `yaml:"start"`
	End   netip.Addr `yaml:"end"`
}

// BootSettings are server-wide boot file rules.
type BootSettings struct {
	// AllowEEPROMUpdate serves the bootloader self-update files
	// (pieeprom.upd, pieeprom.sig, vl805.*) to nodes whose source has them.
	// Nodes may override it.
	AllowEEPROMUpdate bool `yaml:"allowEEPROMUpdate"`
}

// UnknownPolicy says what happens to machines the config does not name.
type UnknownPolicy string

// Unknown-machine policies.
const (
	UnknownIgnore   UnknownPolicy = "ignore"   // no answer at all
	UnknownDefault  UnknownPolicy = "default"  // boot Config.Default
	UnknownDiscover UnknownPolicy = "discover" // record the machine for discovery, do not boot it
)

// EnrolmentMode says how a HAT key becomes trusted for a node of the
// config that names no hatKey.
type EnrolmentMode string

// Enrolment modes.
const (
	// EnrolPreprovisioned trusts only keys the config (or the approved-nodes
	// file) names, or an operator enrolled; others are refused, nothing is recorded.
	EnrolPreprovisioned EnrolmentMode = "preprovisioned"
	// EnrolApprove lists a node's unknown key as pending for an operator
	// (racklet-boot nodes approve); refused until then.
	EnrolApprove EnrolmentMode = "approve"
	// EnrolTOFU trusts the first key a node quotes with; a later different
	// key is a conflict shown to the operator, never a replacement.
	EnrolTOFU EnrolmentMode = "tofu"
)

// NodeKind is the hardware or firmware kind of a node.
type NodeKind string

// Node kinds.
const (
	KindRPi4      NodeKind = "rpi4"
	KindRPi5      NodeKind = "rpi5"
	KindUEFIARM64 NodeKind = "uefi-arm64"
	KindUEFIX8664 NodeKind = "uefi-x86_64"
	KindBIOS      NodeKind = "bios"
)

// IsPi reports whether the kind is a Raspberry Pi (booted by its own bootloader protocol).
func (k NodeKind) IsPi() bool { return k == KindRPi4 || k == KindRPi5 }

// Node is one machine the config names.
type Node struct {
	Name   string           `yaml:"name"`
	Kind   NodeKind         `yaml:"kind"`
	Serial string           `yaml:"serial,omitempty"` // Pi serial, low 32 bits, 8 lowercase hex digits
	MAC    net.HardwareAddr `yaml:"mac,omitempty"`
	// Address is a static reservation in full mode (optional).
	Address netip.Addr `yaml:"address,omitempty"`
	Boot    Boot       `yaml:"boot"`
	// AllowEEPROMUpdate overrides BootSettings.AllowEEPROMUpdate when set.
	AllowEEPROMUpdate *bool `yaml:"allowEEPROMUpdate,omitempty"`
	// HATKey is the public key of the node's RP2040 HAT ("ed25519:<base64>",
	// as `racklet-agent identity` prints it), enrolled for attestation at
	// start. Without it the first attestation enrolls the key as pending,
	// for an operator to approve.
	HATKey string `yaml:"hatKey,omitempty"`
	// Labels are free-form name=value tags that group selectors match.
	Labels map[string]string `yaml:"labels,omitempty"`
	// Power is whether the node should be powered: racklet-boot switches
	// it through its HAT to match (default on).
	Power Power `yaml:"power,omitempty"`
	// Source is the file the node was read from when it is not the rack
	// config itself: the approved-nodes overlay (see ApplyOverlay).
	Source string `yaml:"-"`
	// Line is the line in the config file where this node starts (for messages).
	Line int `yaml:"-"`
}

// Power is a node's desired power state.
type Power string

// Power states.
const (
	PowerOn  Power = "on"
	PowerOff Power = "off"
)

// Boot is a node's boot source and the facts the server renders into
// generated files (config.txt, cmdline.txt, iPXE scripts).
type Boot struct {
	Dir     string   `yaml:"dir,omitempty"`     // a directory on the server
	FAT     string   `yaml:"fat,omitempty"`     // a FAT boot-partition image file, read in place
	Image   string   `yaml:"image,omitempty"`   // an OCI image reference (signed images issue)
	Kernel  string   `yaml:"kernel,omitempty"`  // name inside the source (generic clients)
	Initrd  []string `yaml:"initrd,omitempty"`  // names inside the source
	Cmdline string   `yaml:"cmdline,omitempty"` // kernel command line
	// EFI is the EFI binary handed to UEFI PXE clients (name inside the source).
	EFI string `yaml:"efi,omitempty"`
	// RootHash is the dm-verity root hash (hex) of the root filesystem this
	// boot source mounts; attestation expects it measured. Image sources
	// carry their own in the image manifest.
	RootHash string `yaml:"rootHash,omitempty"`
}
