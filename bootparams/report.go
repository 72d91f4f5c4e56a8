package bootparams

import "time"

// The node API: what racklet-agent (in the initramfs, and as the health unit
// of the booted OS) says to racklet-boot, under AgentPathPrefix on its HTTP
// port. boot/nodeapi serves it.
const (
	// AgentPathPrefix starts every node API path.
	AgentPathPrefix = "/api/v1/agent/"
	// WhoAmIPath answers GET with a WhoAmI for the asking address.
	WhoAmIPath = AgentPathPrefix + "whoami"
	// ReportPath takes a POSTed Report.
	ReportPath = AgentPathPrefix + "report"
	// MaxReportSize bounds a report body.
	MaxReportSize = 4 << 10
	// ServerKeyFile is where the image's initramfs carries racklet-boot's
	// answer-signing public key ("ed25519:<base64>", package serverkey):
	// the image builder writes it (racklet-image build --server-key), the
	// signed manifest pins it, and the agent accepts a whoami, challenge or
	// release only when signed under it.
	ServerKeyFile = "/etc/racklet/server.pub"
)

// Boot stages a node reports, in the order a good boot passes them.
const (
	StageNetwork      = "network"       // address and server known
	StageAttested     = "attested"      // the HAT's quote was accepted (or skipped: no HAT)
	StageRootFetched  = "root-fetched"  // root.squashfs and root.verity in RAM, digests checked
	StageRootVerified = "root-verified" // dm-verity device made and the squashfs mounted through it
	StageSwitched     = "switched"      // about to exec the real init
	StageHealthy      = "healthy"       // the real init reached its default target
	StageFailed       = "failed"        // the boot stopped; Reason says why
	// StageKubernetes is the booted OS's kubeadm join (racklet-agent
	// kube-join): after healthy, its own outcome, not the boot's.
	StageKubernetes = "kubernetes"
)

// Stages lists every stage name.
var Stages = []string{StageNetwork, StageAttested, StageRootFetched, StageRootVerified, StageSwitched, StageHealthy, StageFailed, StageKubernetes}

// WhoAmI is the answer to GET WhoAmIPath.
type WhoAmI struct {
	Node string `json:"node"`
	// Boot is racklet-boot's A/B decision for the node's boot (package
	// ab); nil for a node that boots no versioned image.
	Boot *SlotBoot `json:"boot,omitempty"`
}

// SlotBoot is what racklet-boot serves a node now, as its agent needs it to
// drive the HAT's attempt counter: the slot, and whether this boot is an
// attempt of a trial image.
type SlotBoot struct {
	Image string `json:"image"`           // manifest digest of the image served
	Slot  string `json:"slot"`            // "a" or "b"
	Trial bool   `json:"trial,omitempty"` // an attempt of a trial image: BootAttempt(Slot) before attesting
	// Attempt of Allowed is the attempt racklet-boot counts now.
	Attempt int `json:"attempt,omitempty"`
	Allowed int `json:"allowed,omitempty"`
	// Rearm: reset the HAT's trial counter (BootCommit of the other,
	// committed slot) before BootAttempt; a previous image spent it.
	Rearm bool `json:"rearm,omitempty"`
}

// HATState is the HAT's A/B state as the agent read it in this boot
// (hatlink BootState, or the answer to its BootAttempt): the hardware
// witness of the attempts a trial used.
type HATState struct {
	Committed string `json:"committed"` // "a" or "b"
	Limit     int    `json:"limit"`
	Attempts  [2]int `json:"attempts"` // of slot a and slot b
	Counter   uint64 `json:"counter"`  // the HAT's boot counter
	// Allowed is false when the HAT refused this boot's attempt: the slot
	// spent its budget.
	Allowed bool `json:"allowed"`
}

// Report is one boot stage of one node (POST ReportPath).
type Report struct {
	Node   string    `json:"node"`
	Stage  string    `json:"stage"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"` // why it failed, or a short note
	Image  string    `json:"image,omitempty"`  // the image being booted (racklet.root digest)
	Time   time.Time `json:"time"`             // the node's clock; may be unset in an initramfs
	// HAT is the HAT's A/B state read in this boot, when the agent has one.
	HAT *HATState `json:"hat,omitempty"`
}
