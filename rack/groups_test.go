package rack

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// groupsConfig is a full-mode config with a trusted key (cosign.pub beside
// file) and three Pi nodes; its groups start at line 15.
func groupsConfig(t *testing.T, file string, groups ...string) string {
	t.Helper()
	pub := filepath.Join(filepath.Dir(file), "cosign.pub")
	if _, err := os.Stat(pub); err != nil {
		if err := os.WriteFile(pub, []byte(testPEM(t)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return full(append([]string{
		"  - {name: pi-01, kind: rpi4, serial: 00000001, labels: {role: worker, row: a}}", // 9
		"  - {name: pi-02, kind: rpi4, serial: 00000002, labels: {role: worker}}",         // 10
		"  - {name: pi-03, kind: rpi4, serial: 00000003, boot: {dir: boot}}",              // 11
		"trust:", // 12
		"  - {repositories: [\"reg:5000/racklet/*\"], keys: [{file: cosign.pub}]}", // 13
		"groups:", // 14
	}, groups...)...)
}

func TestGroupsValid(t *testing.T) {
	file := bootDir(t)
	cfg, err := Parse([]byte(groupsConfig(t, file,
		"  - name: workers", // 15
		"    selector: {role: worker, row: a}",
		"    image: reg:5000/racklet/os:v2",
		"    rollout: {maxUnavailable: 50%, healthTimeout: 5m, attempts: 2, onFailure: rollback, pause: 30s}",
		"  - name: edge",
		"    nodes: [pi-02]",
		"    image: reg:5000/racklet/os:v1",
	)), file)
	if err != nil {
		t.Fatal(err)
	}
	want := []Group{
		{Name: "workers", Selector: map[string]string{"role": "worker", "row": "a"}, Image: "reg:5000/racklet/os:v2", Members: []string{"pi-01"}, Line: 15,
			Rollout: RolloutPolicy{MaxUnavailable: Quantity{50, true}, HealthTimeout: 5 * time.Minute, Attempts: 2, OnFailure: OnFailureRollback, Pause: 30 * time.Second}},
		{Name: "edge", Nodes: []string{"pi-02"}, Image: "reg:5000/racklet/os:v1", Members: []string{"pi-02"}, Line: 19,
			Rollout: RolloutPolicy{MaxUnavailable: Quantity{Value: 1}, HealthTimeout: DefaultHealthTimeout, Attempts: DefaultAttempts, OnFailure: OnFailureHalt}},
	}
	if d := cmp.Diff(want, cfg.Groups); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	if n := cfg.Nodes[1]; n.Name != "pi-02" || n.Boot.Image != "reg:5000/racklet/os:v1" {
		t.Errorf("pi-02 boots %q, want the group's image", n.Boot.Image)
	}
	if g, ok := cfg.GroupOf("pi-01"); !ok || g.Name != "workers" {
		t.Errorf("GroupOf(pi-01) = %v, %v", g, ok)
	}
}

func TestGroupErrors(t *testing.T) {
	file := bootDir(t)
	for _, tc := range []struct {
		name   string
		groups []string
		want   []want
	}{
		{"no members", []string{"  - {name: w, image: reg:5000/racklet/os:v2, selector: {role: worker}}", "  - {name: g, image: reg:5000/racklet/os:v2}"}, []want{{16, "groups[1]", "needs its members"}}},
		{"names and selector", []string{"  - {name: w, image: reg:5000/racklet/os:v2, selector: {role: worker}}", "  - {name: g, image: reg:5000/racklet/os:v2, nodes: [pi-03], selector: {role: x}}"},
			[]want{{16, "groups[1].selector", "only one of nodes"}}},
		{"unknown node", []string{"  - {name: g, image: reg:5000/racklet/os:v2, nodes: [pi-01, pi-02, pi-09]}"}, []want{{15, "groups[0].nodes[2]", `no node is named "pi-09"`}}},
		{"empty selection", []string{"  - {name: w, image: reg:5000/racklet/os:v2, selector: {role: worker}}", "  - {name: g, image: reg:5000/racklet/os:v2, selector: {role: db}}"}, []want{{16, "groups[1].selector", "selects no node"}}},
		{"node in two groups", []string{
			"  - {name: a, image: reg:5000/racklet/os:v2, selector: {role: worker}}",
			"  - {name: b, image: reg:5000/racklet/os:v2, nodes: [pi-01]}",
		}, []want{{16, "groups[1].nodes[0]", "node pi-01 is also in group a (line 15)"}}},
		{"duplicate name", []string{
			"  - {name: a, image: reg:5000/racklet/os:v2, nodes: [pi-01]}",
			"  - {name: a, image: reg:5000/racklet/os:v2, nodes: [pi-02]}",
		}, []want{{16, "groups[1].name", "also defined at line 15"}}},
		{"untrusted image", []string{"  - {name: g, image: other/os:v2, selector: {role: worker}}"}, []want{{15, "groups[0].image", "no trust rule covers"}}},
		{"member with a dir source", []string{"  - {name: g, image: reg:5000/racklet/os:v2, nodes: [pi-01, pi-02, pi-03]}"}, []want{{11, "nodes[2].boot", "remove its dir or fat source"}}},
		{"bad policy", []string{
			"  - name: g",
			"    selector: {role: worker}",
			"    image: reg:5000/racklet/os:v2",
			"    rollout:",
			"      maxUnavailable: 0",
			"      healthTimeout: 1s",
			"      attempts: 256",
			"      onFailure: retry",
			"      pause: -1s",
		}, []want{{19, "groups[0].rollout.maxUnavailable", "at least one node"}, {20, "groups[0].rollout.healthTimeout", "outside 10s"},
			{21, "groups[0].rollout.attempts", "outside 1 to 255"}, {22, "groups[0].rollout.onFailure", "not one of halt, rollback"},
			{23, "groups[0].rollout.pause", "negative"}}},
		{"percent out of range", []string{"  - {name: g, image: reg:5000/racklet/os:v2, selector: {role: worker}, rollout: {maxUnavailable: 150%}}"},
			[]want{{15, "groups[0].rollout.maxUnavailable", "1% to 100%"}}},
		{"not a quantity", []string{"  - {name: g, image: reg:5000/racklet/os:v2, selector: {role: worker}, rollout: {maxUnavailable: half}}"},
			[]want{{15, "groups[0].rollout.maxUnavailable", "count (like 2) or a percentage"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, groupsConfig(t, file, tc.groups...), file, tc.want) })
	}
	// A bad label on a node.
	bad := full("  - {name: pi-01, kind: rpi4, serial: 00000001, boot: {dir: boot}, labels: {\"-x\": \"a b\"}}")
	checkErrors(t, bad, file, []want{{9, "nodes[0].labels.-x", "not a label name"}, {9, "nodes[0].labels.-x", "not a label value"}})
}

func TestQuantityOf(t *testing.T) {
	for _, tc := range []struct {
		q           Quantity
		total, want int
	}{
		{Quantity{Value: 2}, 10, 2}, {Quantity{Value: 20}, 10, 10}, {Quantity{25, true}, 10, 2},
		{Quantity{10, true}, 5, 1}, {Quantity{100, true}, 7, 7}, {Quantity{Value: 1}, 0, 0},
	} {
		if got := tc.q.Of(tc.total); got != tc.want {
			t.Errorf("%s of %d = %d, want %d", tc.q, tc.total, got, tc.want)
		}
	}
}
