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
)

// Stages lists every stage name.
var Stages = []string{StageNetwork, StageAttested, StageRootFetched, StageRootVerified, StageSwitched, StageHealthy, StageFailed}

// WhoAmI is the answer to GET WhoAmIPath.
type WhoAmI struct {
	Node string `json:"node"`
}

// Report is one boot stage of one node (POST ReportPath).
type Report struct {
	Node   string    `json:"node"`
	Stage  string    `json:"stage"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"` // why it failed, or a short note
	Image  string    `json:"image,omitempty"`  // the image being booted (racklet.root digest)
	Time   time.Time `json:"time"`             // the node's clock; may be unset in an initramfs
}
