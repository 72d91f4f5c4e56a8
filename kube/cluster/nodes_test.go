package cluster

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func TestStateOf(t *testing.T) {
	node := func(conds ...corev1.NodeCondition) *corev1.Node {
		n := &corev1.Node{}
		n.Status.NodeInfo.KubeletVersion = "v1.37.2"
		n.Status.Conditions = conds
		return n
	}
	for _, tc := range []struct {
		name string
		n    *corev1.Node
		want NodeState
	}{
		{"no conditions", node(), NodeState{Joined: true, Version: "v1.37.2", Reason: "no Ready condition yet"}},
		{"ready", node(corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse},
			corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue}), NodeState{Joined: true, Ready: true, Version: "v1.37.2"}},
		{"not ready", node(corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "cni config uninitialized"}),
			NodeState{Joined: true, Version: "v1.37.2", Reason: "KubeletNotReady: cni config uninitialized"}},
	} {
		if d := cmp.Diff(tc.want, StateOf(tc.n)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}
