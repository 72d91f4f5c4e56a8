package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/kube/nodejoin"
)

// KubeJoinOptions configure KubeJoin.
type KubeJoinOptions struct {
	// Handover is the file the initramfs agent left (default
	// bootparams.HandoverFile): racklet-boot's URL and the node's name.
	Handover string
	// Join says how to run kubeadm join; its Node defaults to the
	// hand-over's node name, so the node registers under its rack name.
	Join nodejoin.Options
	// Attempts and Wait: the report is tried up to Attempts times (default
	// 1), Wait apart.
	Attempts int
	Wait     time.Duration
}

// KubeJoin is the booted OS's Kubernetes join (racklet-kube-join.service
// runs it through `racklet-agent kube-join`): kubeadm join with the facts
// the initramfs agent kept after the attested release (nodejoin.Join), its
// one-line result reported to racklet-boot as the kubernetes stage of the
// node's timeline. It returns the summary, or the join's error (reported
// too); an undelivered report is an error only after a good join.
func KubeJoin(ctx context.Context, o KubeJoinOptions) (string, error) {
	if o.Handover == "" {
		o.Handover = bootparams.HandoverFile
	}
	h, err := bootparams.ReadHandover(o.Handover)
	if err != nil {
		return "", err
	}
	if h.Server == "" || h.Node == "" {
		return "", fmt.Errorf("boot hand-over %s names no server or node", o.Handover)
	}
	if o.Join.Node == "" {
		o.Join.Node = h.Node
	}
	summary, jerr := nodejoin.Join(ctx, o.Join)
	rep := bootparams.Report{Node: h.Node, Stage: bootparams.StageKubernetes, OK: jerr == nil, Reason: oneLine(summary), Image: h.Image, Time: time.Now().UTC()}
	if jerr != nil {
		rep.Reason = oneLine(jerr.Error())
	}
	hc := newHTTPClient()
	var perr error
	for i := 1; ; i++ {
		if perr = postReport(ctx, hc, h.Server, rep); perr == nil || i >= max(o.Attempts, 1) {
			break
		}
		select {
		case <-time.After(o.Wait):
		case <-ctx.Done():
			perr = ctx.Err()
		}
		if ctx.Err() != nil {
			break
		}
	}
	switch {
	case jerr != nil:
		return "", jerr
	case perr != nil:
		return summary, fmt.Errorf("%s, but the report to racklet-boot %s: %w", summary, h.Server, perr)
	}
	return summary, nil
}
