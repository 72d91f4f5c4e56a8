// Package enrol is racklet-boot's one list of HAT keys waiting for an
// operator, whichever way they arrived:
//
//   - machines the config does not name (a HAT that connected to the BMC
//     listener with its serial and key, joined with what DHCP saw of that
//     serial: MAC and kind), with unknownMachines: discover;
//   - keys asking to be a config node's (Pending.Node) when the node quoted
//     with a key the config does not trust, with enrolment: approve (or a
//     second key under tofu).
//
// Two keys asking for one node are a conflict (Pending.Conflict): neither
// replaces the other, and only the key's fingerprint approves one. An
// approval of a machine the config does not name is written to the
// approved-nodes overlay in the data directory (rack.OverlayFile), which
// racklet-boot merges into the config on every load: the declarative file
// stays the operator's, the approvals stay racklet-boot's, and
// `racklet-boot config validate` shows both. An approval for a config node
// enrolls the key for attestation (boot/server does that; Claims here).
package enrol

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/internal/atomicfile"
	"github.com/racklet/racklet-boot/rack"
)

// PendingFile is the pending machines' file in the data directory.
const PendingFile = "pending-nodes.json"

// Pending is a machine waiting for an operator's approval.
type Pending struct {
	Key         string `json:"key"` // the HAT's Ed25519 key (hatlink.EncodeKey form)
	Fingerprint string `json:"fingerprint"`
	Serial      string `json:"serial"`
	MAC         string `json:"mac,omitempty"`  // from DHCP, when it was seen there
	Kind        string `json:"kind,omitempty"` // as DHCP classified it
	// Node is the config node this key asks to be (from a quote), "" for a
	// machine the config does not name.
	Node string `json:"node,omitempty"`
	// Conflict: another pending key asks to be the same node.
	Conflict  bool      `json:"conflict,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
}

// Fingerprint is how a HAT key is shown for approval: "SHA256:" and the
// unpadded base64 of the SHA-256 of the raw 32-byte key, as ssh shows keys.
func Fingerprint(key string) string {
	pub, err := hatlink.ParseKey(key)
	if err != nil {
		return "invalid key"
	}
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// Book holds the pending machines and writes approvals. Safe for concurrent use.
type Book struct {
	dir string
	mu  sync.Mutex
	m   map[string]Pending // by key
}

// Open loads the pending machines of the data directory dir.
func Open(dir string) (*Book, error) {
	b := &Book{dir: dir, m: map[string]Pending{}}
	data, err := os.ReadFile(filepath.Join(dir, PendingFile))
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pending nodes: %w", err)
	}
	var list []Pending
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("pending nodes file %s is corrupt (move it away; HATs report again when they reconnect): %w", filepath.Join(dir, PendingFile), err)
	}
	for _, p := range list {
		b.m[p.Key] = p
	}
	return b, nil
}

// OverlayPath is the approved-nodes overlay in the data directory.
func (b *Book) OverlayPath() string { return filepath.Join(b.dir, rack.OverlayFile) }

// Seen records (or refreshes) a pending machine. It reports whether the
// machine is new.
func (b *Book) Seen(p Pending) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now().UTC()
	old, had := b.m[p.Key]
	if had {
		p.FirstSeen = old.FirstSeen
		if p.Node == "" {
			p.Node = old.Node
		}
		if p.MAC == "" {
			p.MAC = old.MAC
		}
		if p.Kind == "" {
			p.Kind = old.Kind
		}
	} else {
		p.FirstSeen = now
		if len(b.m) >= maxPending {
			return false, fmt.Errorf("%d machines are pending already: approve or forget some", maxPending)
		}
	}
	p.LastSeen, p.Fingerprint, p.Conflict = now, Fingerprint(p.Key), false
	b.m[p.Key] = p
	return !had, b.save()
}

// Bounds of the pending list (a LAN full of fake HATs).
const (
	maxPending       = 256
	maxClaimsPerNode = 4
)

// Claim records that key (a HAT with serial) asks to be the config node
// node. A key claims one node; past maxClaimsPerNode keys for a node, or
// maxPending in all, it is refused.
func (b *Book) Claim(node, key, serial string) error {
	b.mu.Lock()
	if old, ok := b.m[key]; ok && old.Node != "" && old.Node != node {
		b.mu.Unlock()
		return fmt.Errorf("HAT key %s already asks to be node %s", Fingerprint(key), old.Node)
	}
	if _, ok := b.m[key]; !ok && len(b.claims(node)) >= maxClaimsPerNode {
		b.mu.Unlock()
		return fmt.Errorf("%d keys are pending for node %s already: approve or forget some", maxClaimsPerNode, node)
	}
	b.mu.Unlock()
	_, err := b.Seen(Pending{Key: key, Serial: serial, Node: node})
	return err
}

// Claimed lists the keys pending for the config node node.
func (b *Book) Claimed(node string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.claims(node)
}

func (b *Book) claims(node string) []string {
	var keys []string
	for _, p := range b.m {
		if p.Node == node {
			keys = append(keys, p.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// ForgetNode drops every key pending for the config node node (once one is
// approved, or the node is enrolled otherwise).
func (b *Book) ForgetNode(node string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.m)
	maps.DeleteFunc(b.m, func(_ string, p Pending) bool { return p.Node == node })
	if len(b.m) == n {
		return nil
	}
	return b.save()
}

// List returns the pending machines, oldest first.
func (b *Book) List() []Pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Pending, 0, len(b.m))
	perNode := map[string]int{}
	for _, p := range b.m {
		if p.Node != "" {
			perNode[p.Node]++
		}
	}
	for _, p := range b.m {
		p.Conflict = p.Node != "" && perNode[p.Node] > 1
		out = append(out, p)
	}
	slices.SortFunc(out, func(x, y Pending) int {
		if c := x.FirstSeen.Compare(y.FirstSeen); c != 0 {
			return c
		}
		return strings.Compare(x.Key, y.Key)
	})
	return out
}

// Find returns the pending machine ref names: its serial, MAC, key or
// fingerprint (or a prefix of the fingerprint's base64 of 8 or more
// characters). Ambiguity is an error, and so is a key in conflict named by
// anything but its whole fingerprint or key: serials and MACs are claimed
// by the HAT, and the operator must pick the key checked on the machine.
func (b *Book) Find(ref string) (Pending, error) {
	var hits []Pending
	r := strings.TrimPrefix(ref, "SHA256:")
	for _, p := range b.List() {
		fp := strings.TrimPrefix(p.Fingerprint, "SHA256:")
		if strings.EqualFold(ref, p.Serial) || (p.MAC != "" && strings.EqualFold(ref, p.MAC)) || ref == p.Key ||
			(len(r) >= 8 && strings.HasPrefix(fp, r)) || strings.EqualFold(ref, p.Node) {
			hits = append(hits, p)
		}
	}
	switch len(hits) {
	case 0:
		return Pending{}, fmt.Errorf("%w: %q (give a serial, MAC or key fingerprint from racklet-boot nodes pending)", ErrNotPending, ref)
	case 1:
		p := hits[0]
		if p.Conflict && ref != p.Key && r != strings.TrimPrefix(p.Fingerprint, "SHA256:") {
			return Pending{}, fmt.Errorf("%w: node %s has several HAT keys pending (a conflict): approve the one whose fingerprint you checked on the machine (racklet-agent identity), giving the whole fingerprint", ErrConflict, p.Node)
		}
		return p, nil
	}
	if hits[0].Node != "" && allNode(hits, hits[0].Node) {
		return Pending{}, fmt.Errorf("%w: node %s has %d HAT keys pending: approve the one whose fingerprint you checked on the machine (racklet-agent identity), giving the whole fingerprint", ErrConflict, hits[0].Node, len(hits))
	}
	return Pending{}, fmt.Errorf("%q names %d pending machines: give the key fingerprint", ref, len(hits))
}

// ErrNotPending is returned for a machine that is not waiting for approval.
var ErrNotPending = errors.New("no such pending machine")

// ErrConflict is returned when several keys ask to be one node and the
// reference does not pick one by its fingerprint.
var ErrConflict = errors.New("conflicting keys")

func allNode(list []Pending, node string) bool {
	for _, p := range list {
		if p.Node != node {
			return false
		}
	}
	return true
}

// Approval is an operator's decision to admit a pending machine.
type Approval struct {
	Ref  string // which pending machine (Find)
	As   string // its node name
	Kind string // its kind; default what DHCP classified, else rpi4 when it has a Pi serial
	By   string // who approved, for the log and the overlay's comment
}

// Approve adds the pending machine as a node to the overlay, checked
// against cfg (the config without the overlay) exactly as racklet-boot
// will load it, and forgets it as pending. It returns the node written and
// the merged config.
func (b *Book) Approve(cfg *rack.Config, a Approval) (rack.Node, *rack.Config, error) {
	p, err := b.Find(a.Ref)
	if err != nil {
		return rack.Node{}, nil, err
	}
	if p.Node != "" {
		return rack.Node{}, nil, fmt.Errorf("HAT key %s asks to be node %s of the config: enroll it for that node, not as a new machine", p.Fingerprint, p.Node)
	}
	kind := a.Kind
	if kind == "" {
		kind = p.Kind
	}
	if kind == "" {
		kind = string(rack.KindRPi4)
	}
	n := rack.Node{Name: a.As, Kind: rack.NodeKind(kind), Serial: p.Serial, HATKey: p.Key, Power: rack.PowerOn}
	if p.MAC != "" {
		n.MAC, _ = parseMAC(p.MAC)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	path := b.OverlayPath()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rack.Node{}, nil, err
	}
	ov, err := rack.ReadOverlay(data, path)
	if err != nil {
		return rack.Node{}, nil, fmt.Errorf("the approved-nodes file is broken; fix it first: %w", err)
	}
	ov.Nodes = append(ov.Nodes, n)
	data, err = rack.WriteOverlay(ov)
	if err != nil {
		return rack.Node{}, nil, err
	}
	merged, warnings, err := rack.ApplyOverlay(cfg, data, path)
	if err != nil {
		return rack.Node{}, nil, fmt.Errorf("approve %s as %s: %w", p.Serial, a.As, err)
	}
	if got, ok := nodeNamed(merged, a.As); !ok || got.Source != path {
		msg := "the rack config names this machine or this name already"
		if len(warnings) > 0 {
			msg = warnings[len(warnings)-1].Msg
		}
		return rack.Node{}, nil, fmt.Errorf("approve %s as %s: %s", p.Serial, a.As, msg)
	}
	if err := atomicfile.Write(path, data, 0o640); err != nil {
		return rack.Node{}, nil, fmt.Errorf("write approved nodes: %w", err)
	}
	delete(b.m, p.Key)
	if err := b.save(); err != nil {
		return rack.Node{}, nil, err
	}
	return n, merged, nil
}

// Forget drops a pending machine (it is listed again if it reconnects).
func (b *Book) Forget(ref string) error {
	p, err := b.Find(ref)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, p.Key)
	return b.save()
}

// save writes the pending list with b.mu held.
func (b *Book) save() error {
	list := make([]Pending, 0, len(b.m))
	for _, p := range b.m {
		list = append(list, p)
	}
	slices.SortFunc(list, func(x, y Pending) int { return strings.Compare(x.Key, y.Key) })
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(b.dir, PendingFile), data, 0o640)
}

func nodeNamed(cfg *rack.Config, name string) (rack.Node, bool) {
	for _, n := range cfg.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return rack.Node{}, false
}
