package server

import (
	"context"
	"fmt"

	httpboot "github.com/racklet/racklet-boot/boot/http"
	"github.com/racklet/racklet-boot/inventory"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/store"
)

// syncNodes records the inventory's nodes as known in the state store,
// keeping what the server learned of them (addresses, first and last seen),
// so `racklet-boot nodes --data-dir` lists them while the server is stopped.
func syncNodes(ctx context.Context, st store.Store, inv *inventory.Inventory) error {
	for i := range inv.Nodes() {
		n := &inv.Nodes()[i]
		rec, _, err := st.Node(ctx, n.Name)
		if err != nil {
			return err
		}
		if err := st.PutNode(ctx, knownNode(rec, n)); err != nil {
			return fmt.Errorf("record node %s: %w", n.Name, err)
		}
	}
	return nil
}

// knownNode is the record of a config node: its identity from the config,
// what the server observed from rec.
func knownNode(rec store.Node, n *rack.Node) store.Node {
	rec.Key, rec.Name, rec.Known = n.Name, n.Name, true
	rec.Kind, rec.Serial = string(n.Kind), n.Serial
	if n.MAC != nil {
		rec.MAC = n.MAC.String()
	}
	return rec
}

// nodeReader serves the node API from the state store, with each record's
// identity taken from the live node index: a node the config names is
// known with its configured kind, serial and MAC; a stored node the config
// no longer names is shown as not known.
type nodeReader struct {
	inv   *inventory.Live
	state store.Store
	kube  *kubeWatch // the cluster's view of known nodes (nil: none)
}

var _ httpboot.NodeReader = (*nodeReader)(nil)

func (r *nodeReader) view(inv *inventory.Inventory, rec store.Node) store.Node {
	if n, ok := inv.ByName(rec.Key); ok {
		rec = knownNode(rec, n)
		rec.Kubernetes = r.kube.state(n.Name)
		return rec
	}
	if rec.Known {
		rec.Known = false
	}
	return rec
}

func (r *nodeReader) Nodes(ctx context.Context) ([]store.Node, error) {
	recs, err := r.state.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	inv := r.inv.Load()
	for i := range recs {
		recs[i] = r.view(inv, recs[i])
	}
	return dropAdopted(recs), nil
}

// dropAdopted leaves out the records of machines discovered before the
// config named them: a discovered record (not known) whose MAC or serial
// a known node has is that node's past, not a second machine.
func dropAdopted(recs []store.Node) []store.Node {
	macs, serials := map[string]bool{}, map[string]bool{}
	for _, n := range recs {
		if n.Known {
			macs[n.MAC], serials[n.Serial] = n.MAC != "", n.Serial != ""
		}
	}
	out := recs[:0]
	for _, n := range recs {
		if !n.Known && n.Name == "" && ((n.MAC != "" && macs[n.MAC]) || (n.Serial != "" && serials[n.Serial])) {
			continue
		}
		out = append(out, n)
	}
	return out
}

func (r *nodeReader) Node(ctx context.Context, key string) (store.Node, bool, error) {
	rec, ok, err := r.state.Node(ctx, key)
	if err != nil || !ok {
		return rec, ok, err
	}
	return r.view(r.inv.Load(), rec), true, nil
}

func (r *nodeReader) Events(ctx context.Context, node string, limit int) ([]store.Event, error) {
	return r.state.Events(ctx, node, limit)
}

func (r *nodeReader) Leases(ctx context.Context) ([]store.Lease, error) {
	return r.state.Leases(ctx)
}
