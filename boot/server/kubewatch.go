package server

import (
	"context"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// kubePoll is how often racklet-boot asks the cluster for its nodes.
const kubePoll = 10 * time.Second

// kubeWatch asks the cluster the rack config names (with its
// token.kubeconfig) for its nodes every kubePoll, keeps the answer for node
// listings (`racklet-boot nodes`), and records each change of a configured
// node's state in its timeline: kubernetes.joined, kubernetes.ready,
// kubernetes.notready, kubernetes.left.
type kubeWatch struct {
	sec    *kubeSecrets // its API clients
	events interface {
		AddEvent(ctx context.Context, e store.Event) error
	}

	mu     sync.Mutex
	states map[string]store.KubeState
}

func (w *kubeWatch) run(ctx context.Context) {
	t := time.NewTicker(kubePoll)
	defer t.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll asks the cluster once; without a kubeconfig in the config it forgets
// what it knew.
func (w *kubeWatch) poll(ctx context.Context) {
	cfg := w.sec.inv.Load().Config()
	if cfg.Kubernetes == nil || cfg.Kubernetes.Token.Kubeconfig == "" {
		w.mu.Lock()
		w.states = nil
		w.mu.Unlock()
		return
	}
	c, err := w.sec.client(cfg.Kubernetes.Token.Kubeconfig)
	if err != nil {
		w.sec.log.Warn("kubernetes cluster", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, kubePoll)
	defer cancel()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		w.sec.log.Warn("kubernetes cluster", "err", err)
		return
	}
	now := time.Now().UTC()
	next := map[string]store.KubeState{}
	for _, n := range cfg.Nodes {
		cs := nodes[n.Name]
		next[n.Name] = store.KubeState{Joined: cs.Joined, Ready: cs.Ready, Version: cs.Version, Reason: cs.Reason, Seen: now}
	}
	w.mu.Lock()
	prev := w.states
	w.states = next
	w.mu.Unlock()
	for name, s := range next {
		p, seen := prev[name]
		typ := change(p, s, seen)
		if typ == "" {
			continue
		}
		detail := s.String()
		if s.Reason != "" {
			detail += ": " + s.Reason
		}
		w.sec.log.Info("kubernetes node state", "node", name, "state", detail)
		if err := w.events.AddEvent(ctx, store.Event{Time: now, Node: name, Type: typ, Detail: detail}); err != nil {
			w.sec.log.Warn("record kubernetes event", "node", name, "err", err)
		}
	}
}

// change names the event of a state change ("" for none). A node never
// seen joined is not reported as having left.
func change(prev, next store.KubeState, seen bool) string {
	switch {
	case !next.Joined && prev.Joined:
		return "kubernetes.left"
	case !next.Joined:
		return ""
	case !prev.Joined && next.Ready:
		return "kubernetes.ready"
	case !prev.Joined:
		return "kubernetes.joined"
	case next.Ready && !prev.Ready:
		return "kubernetes.ready"
	case !next.Ready && prev.Ready:
		return "kubernetes.notready"
	case seen && next.Version != prev.Version:
		return "kubernetes.joined"
	}
	return ""
}

// state is the last known state of a node (nil: unknown).
func (w *kubeWatch) state(node string) *store.KubeState {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	s, ok := w.states[node]
	if !ok {
		return nil
	}
	return &s
}
