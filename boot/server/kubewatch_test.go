package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/store"
)

func TestKubeChange(t *testing.T) {
	none := store.KubeState{}
	notReady := store.KubeState{Joined: true, Version: "v1.37.2", Reason: "KubeletNotReady: cni config uninitialized"}
	ready := store.KubeState{Joined: true, Ready: true, Version: "v1.37.2"}
	upgraded := store.KubeState{Joined: true, Ready: true, Version: "v1.37.3"}
	for _, tc := range []struct {
		name       string
		prev, next store.KubeState
		seen       bool
		want       string
	}{
		{"still absent", none, none, true, ""},
		{"first look, absent", none, none, false, ""},
		{"joined not ready", none, notReady, true, "kubernetes.joined"},
		{"joined ready at once", none, ready, true, "kubernetes.ready"},
		{"became ready", notReady, ready, true, "kubernetes.ready"},
		{"became not ready", ready, notReady, true, "kubernetes.notready"},
		{"left", ready, none, true, "kubernetes.left"},
		{"unchanged", ready, ready, true, ""},
		{"new kubelet version", ready, upgraded, true, "kubernetes.joined"},
	} {
		if got := change(tc.prev, tc.next, tc.seen); got != tc.want {
			t.Errorf("%s: change = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNodeTableKubernetes(t *testing.T) {
	var b bytes.Buffer
	err := WriteNodeTable(&b, []NodeStatus{
		{Node: store.Node{Key: "pi-01", Name: "pi-01", Kubernetes: &store.KubeState{Joined: true, Ready: true, Version: "v1.37.2"}}},
		{Node: store.Node{Key: "pi-02", Name: "pi-02", Kubernetes: &store.KubeState{}}},
		{Node: store.Node{Key: "pi-03", Name: "pi-03"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	col := strings.Index(lines[0], "KUBERNETES")
	if col < 0 || len(lines) != 4 {
		t.Fatalf("table:\n%s", b.String())
	}
	for i, want := range []string{"Ready v1.37.2", "not joined", "-"} {
		if got := lines[i+1][col:]; !strings.HasPrefix(got, want) {
			t.Errorf("row %d KUBERNETES = %q, want %q", i+1, got, want)
		}
	}
}
