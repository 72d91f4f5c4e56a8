package attest

import "time"

// PathPrefix is where racklet-boot serves the attestation API.
const PathPrefix = "/api/v1/attest/"

// The JSON bodies of the HTTP API under /api/v1/attest/.

// ChallengeRequest asks for a nonce (POST challenge).
type ChallengeRequest struct {
	Node string `json:"node"`
}

// Challenge is a single-use nonce and when it stops being accepted.
type Challenge struct {
	Nonce   []byte    `json:"nonce"` // 32 bytes, base64 in JSON
	Expires time.Time `json:"expires"`
}

// QuoteSubmission is a node's signed quote (POST quote).
type QuoteSubmission struct {
	Node string `json:"node"`
	// Key is the HAT key the node claims to hold (hatlink.EncodeKey form).
	// It is only used to enroll on first use and to explain a mismatch;
	// the signature is always checked against the enrolled key.
	Key       string `json:"key,omitempty"`
	Statement []byte `json:"statement"` // hatlink.Statement encoding, base64 in JSON
	Signature []byte `json:"signature"` // Ed25519, base64 in JSON
}

// WrappedSecret is one secret encrypted to the node's HAT (hatlink.Wrap),
// bound to the registers of the node's assigned image.
type WrappedSecret struct {
	Name     string `json:"name"`     // "join-token", "disk-key"
	Envelope []byte `json:"envelope"` // base64 in JSON
}

// Release is the answer to an accepted quote.
type Release struct {
	Node        string          `json:"node"`
	BootCounter uint64          `json:"bootCounter"`
	Image       string          `json:"image,omitempty"`
	Secrets     []WrappedSecret `json:"secrets"`
}

// ErrorBody is the JSON body of a refusal (403) or bad request (400).
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// EnrollmentAction is an operator's decision (POST enrollments).
type EnrollmentAction struct {
	Node string `json:"node"`
	// Action is "approve" (a pending trust-on-first-use key), "enroll" (set
	// Key as the node's approved key) or "revoke".
	Action string `json:"action"`
	Key    string `json:"key,omitempty"`
}

// Names of the released secrets.
const (
	SecretJoinToken = "join-token"
	SecretDiskKey   = "disk-key"
	// SecretKubernetesJoin holds what kubeadm join needs (endpoint, bootstrap
	// token, CA hashes) as the JSON of package kube/join's Info; released
	// only when the rack config names a cluster.
	SecretKubernetesJoin = "kubernetes-join"
)

// EnrollState says whether a node's HAT key is trusted.
type EnrollState string

// Enrollment states.
const (
	Approved EnrollState = "approved" // pre-provisioned or approved by an operator
	Pending  EnrollState = "pending"  // seen on first use, waiting for an operator
)

// Enrollment binds a node name to its HAT's Ed25519 key.
type Enrollment struct {
	Node     string      `json:"node"`
	Key      string      `json:"key"` // hatlink.EncodeKey form
	State    EnrollState `json:"state"`
	Serial   string      `json:"serial,omitempty"` // as the HAT reported it
	Created  time.Time   `json:"created"`
	Approved time.Time   `json:"approved,omitzero"`
}
