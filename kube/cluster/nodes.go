package cluster

import (
	"context"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
)

// NodeState is what the cluster says of one node.
type NodeState struct {
	// Joined: a Node object of that name exists.
	Joined bool `json:"joined"`
	// Ready is the node's Ready condition.
	Ready bool `json:"ready"`
	// Version is the kubelet version the node reports.
	Version string `json:"version,omitempty"`
	// Reason explains a node that is not Ready (the condition's message).
	Reason string `json:"reason,omitempty"`
}

// Nodes returns the state of every Node in the cluster, by name.
func (c *Client) Nodes(ctx context.Context) (map[string]NodeState, error) {
	var list corev1.NodeList
	if err := c.call(ctx, http.MethodGet, "/api/v1/nodes", nil, &list); err != nil {
		return nil, fmt.Errorf("list kubernetes nodes: %w", err)
	}
	out := make(map[string]NodeState, len(list.Items))
	for _, n := range list.Items {
		out[n.Name] = StateOf(&n)
	}
	return out, nil
}

// StateOf summarizes a Node object.
func StateOf(n *corev1.Node) NodeState {
	s := NodeState{Joined: true, Version: n.Status.NodeInfo.KubeletVersion, Reason: "no Ready condition yet"}
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		s.Ready = c.Status == corev1.ConditionTrue
		s.Reason = ""
		if !s.Ready {
			s.Reason = c.Reason + ": " + c.Message
		}
	}
	return s
}
