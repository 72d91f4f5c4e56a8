// Package enrol is zero-touch enrolment: machines racklet-boot saw but the
// config does not name (a HAT that connected to the BMC listener with its
// serial and key, joined with what DHCP saw of that serial: MAC and kind)
// wait as pending until an operator approves one under a node name. An
// approval is written to the approved-nodes overlay in the data directory
// (rack.OverlayFile), which racklet-boot merges into the config on every
// load: the declarative file stays the operator's, the approvals stay
// racklet-boot's, and `racklet-boot config validate` shows both.
package enrol

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	Key         string    `json:"key"` // the HAT's Ed25519 key (hatlink.EncodeKey form)
	Fingerprint string    `json:"fingerprint"`
	Serial      string    `json:"serial"`
	MAC         string    `json:"mac,omitempty"`  // from DHCP, when it was seen there
	Kind        string    `json:"kind,omitempty"` // as DHCP classified it
	Remote      string    `json:"remote,omitempty"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
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
	p.LastSeen, p.Fingerprint = now, Fingerprint(p.Key)
	b.m[p.Key] = p
	return !had, b.save()
}

// maxPending bounds the pending list (a LAN full of fake HATs).
const maxPending = 256

// List returns the pending machines, oldest first.
func (b *Book) List() []Pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Pending, 0, len(b.m))
	for _, p := range b.m {
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
// characters). Ambiguity is an error.
func (b *Book) Find(ref string) (Pending, error) {
	var hits []Pending
	for _, p := range b.List() {
		fp := strings.TrimPrefix(p.Fingerprint, "SHA256:")
		r := strings.TrimPrefix(ref, "SHA256:")
		if strings.EqualFold(ref, p.Serial) || (p.MAC != "" && strings.EqualFold(ref, p.MAC)) || ref == p.Key ||
			(len(r) >= 8 && strings.HasPrefix(fp, r)) {
			hits = append(hits, p)
		}
	}
	switch len(hits) {
	case 0:
		return Pending{}, fmt.Errorf("%w: %q (give a serial, MAC or key fingerprint from racklet-boot nodes pending)", ErrNotPending, ref)
	case 1:
		return hits[0], nil
	}
	return Pending{}, fmt.Errorf("%q names %d pending machines: give the key fingerprint", ref, len(hits))
}

// ErrNotPending is returned for a machine that is not waiting for approval.
var ErrNotPending = errors.New("no such pending machine")

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
