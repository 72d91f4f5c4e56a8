package bmc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
)

// session is one HAT's board-management link.
type session struct {
	link     *hatlink.Link
	remote   string
	key      string
	serial   string
	firmware uint32
	since    time.Time
	wake     chan struct{}

	mu sync.Mutex // one hatlink call at a time (Client is not concurrent)
	c  *hatlink.Client

	st stateMu // what it learned, and the console position and scanner
}

// stateMu is what the session last learned, read by Status.
type stateMu struct {
	sync.Mutex
	on      bool
	counter uint64
	slot    string
	next    string
	known   bool // power read at least once
	conBoot uint64
	conOff  uint64 // console position read up to
	scan    lineScanner
}

func (s *session) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// open does the handshake and proves the HAT holds the key it names: a
// quote over a fresh nonce must verify under the key, and carry the same
// box key and serial as the identity.
func (s *Server) open(ctx context.Context, rw io.ReadWriter, remote string) (*session, error) {
	link := hatlink.NewLink(rw)
	link.Timeout, link.Retries = s.opts.Timeout, 2
	link.Logger = s.log
	hctx, cancel := context.WithTimeout(ctx, 8*s.opts.Timeout)
	defer cancel()
	fail := func(err error) (*session, error) {
		link.Close()
		return nil, err
	}
	c, err := hatlink.NewClient(hctx, link)
	if err != nil {
		return fail(err)
	}
	id, err := c.Identity(hctx)
	if err != nil {
		return fail(fmt.Errorf("HAT identity: %w", err))
	}
	var nonce [32]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return fail(err)
	}
	q, err := c.Quote(hctx, nonce, 0)
	if err != nil {
		return fail(fmt.Errorf("HAT quote: %w", err))
	}
	st, err := hatlink.VerifyQuote(ed25519.PublicKey(id.SignKey[:]), q.Statement, q.Signature[:])
	switch {
	case err != nil:
		return fail(fmt.Errorf("the HAT's quote does not verify under the key it names: %w", err))
	case st.Nonce != nonce:
		return fail(errors.New("the HAT's quote is not over racklet-boot's nonce (a replay)"))
	case st.BoxKey != id.BoxKey || st.Serial != id.Serial:
		return fail(errors.New("the HAT's quote and identity disagree"))
	}
	return &session{link: link, remote: remote, key: hatlink.EncodeKey(id.SignKey), serial: id.Serial,
		firmware: id.Firmware, since: time.Now().UTC(), wake: make(chan struct{}, 1), c: c}, nil
}

func (s *session) powerState(ctx context.Context) (hatlink.PowerStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps, err := s.c.PowerState(ctx)
	if err == nil {
		s.setPower(ps)
	}
	return ps, err
}

func (s *session) setPower(ps hatlink.PowerStatus) (changed bool) {
	s.st.Lock()
	defer s.st.Unlock()
	changed = !s.st.known || s.st.on != ps.On || s.st.counter != ps.Counter
	s.st.on, s.st.counter, s.st.known = ps.On, ps.Counter, true
	return changed
}

// errNotNode ends managing a link whose HAT no longer belongs to the node.
var errNotNode = errors.New("the HAT no longer belongs to this node")

// manage keeps node's power as wanted and reads its console until the
// link fails, ctx ends, or the HAT stops being the node's.
func (s *Server) manage(ctx context.Context, sess *session, node string) error {
	s.mu.Lock()
	if old := s.sessions[node]; old != nil && old != sess {
		s.log.Warn("a second HAT link for the node: the newer one takes over", "node", node, "ip", sess.remote)
		old.link.Close()
	}
	s.sessions[node] = sess
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.sessions[node] == sess {
			delete(s.sessions, node)
		}
		s.mu.Unlock()
		s.changed(node)
	}()
	s.log.Info("HAT connected", "node", node, "serial", sess.serial, "ip", sess.remote)
	s.event(ctx, node, "bmc.connected", fmt.Sprintf("HAT %s (serial %s) from %s", sess.key, sess.serial, sess.remote), nil)
	if err := s.startConsole(sess, node); err != nil {
		s.log.Warn("console position", "node", node, "err", err)
	}
	power := time.NewTicker(s.opts.PowerInterval)
	defer power.Stop()
	con := time.NewTicker(s.opts.ConsoleInterval)
	defer con.Stop()
	checkPower := true
	for {
		if checkPower {
			if n, ok := s.opts.Directory.NodeForKey(ctx, sess.key); !ok || n != node {
				return errNotNode
			}
			if err := s.reconcile(ctx, sess, node); err != nil {
				return err
			}
			checkPower = false
		}
		if err := s.readConsole(ctx, sess, node); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.wake:
			checkPower = true
		case <-power.C:
			checkPower = true
		case <-con.C:
		}
	}
}

// reconcile switches the node's power to what is wanted and refreshes the
// A/B slots the HAT reports.
func (s *Server) reconcile(ctx context.Context, sess *session, node string) error {
	cfgOn, ok := s.opts.Directory.ConfigPower(node)
	if !ok {
		return errNotNode
	}
	want, by := s.intents.desired(node, cfgOn)
	sess.mu.Lock()
	defer sess.mu.Unlock()
	ps, err := sess.c.PowerState(ctx)
	if err != nil {
		return fmt.Errorf("read power: %w", err)
	}
	changed := sess.setPower(ps)
	if ps.On != want {
		if ps, err = sess.c.PowerSet(ctx, want); err != nil {
			return fmt.Errorf("switch power %s: %w", onOff(want), err)
		}
		sess.setPower(ps)
		s.log.Info("node power switched", "node", node, "on", want, "by", by)
		s.event(ctx, node, "power."+onOff(want), askedBy(by), nil)
		changed = false // the event told
	}
	if bs, err := sess.c.BootState(ctx); err == nil {
		sess.st.Lock()
		slot, next := slotName(bs.Committed), slotName(bs.Next)
		if slot != sess.st.slot || next != sess.st.next {
			sess.st.slot, sess.st.next, changed = slot, next, true
		}
		sess.st.Unlock()
	}
	if changed {
		s.changed(node)
	}
	return nil
}

func askedBy(by string) string {
	if by == "config" {
		return "the rack config asks for it"
	}
	return "asked by " + by
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func slotName(s byte) string {
	if s == hatlink.SlotB {
		return "B"
	}
	return "A"
}

func powerStatus(on bool, counter uint64) hatlink.PowerStatus {
	return hatlink.PowerStatus{On: on, Counter: counter}
}
