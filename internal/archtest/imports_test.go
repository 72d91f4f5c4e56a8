package archtest

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

const module = "github.com/racklet/racklet-boot/"

// graph maps each package of the module (without the module prefix) to
// what it imports (direct) or depends on (deps, transitively), as go list
// reports them: module packages without the prefix, others in full.
// Standard library packages are left out.
func graph(t *testing.T, deps bool) map[string][]string {
	t.Helper()
	testutil.NeedTool(t, "go")
	field := ".Imports"
	if deps {
		field = ".Deps"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.ImportPath}}{{range "+field+"}} {{.}}{{end}}", module+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		pkg, imports := strings.TrimPrefix(f[0], module), []string{}
		for _, imp := range f[1:] {
			switch {
			case strings.HasPrefix(imp, module):
				imports = append(imports, strings.TrimPrefix(imp, module))
			case strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
				imports = append(imports, imp) // another module, in full
			}
		}
		g[pkg] = imports
	}
	return g
}

// rule forbids packages matching from (path.Match patterns) to import
// packages matching any of not, except themselves.
type rule struct {
	why  string
	from []string
	not  []string
	deps bool // check transitive dependencies, not only direct imports
}

var rules = []rule{
	{why: "one protocol each: DHCP, TFTP and HTTP never import each other, the config, the index or the server",
		from: []string{"boot/dhcp", "boot/tftp", "boot/http"},
		not:  []string{"boot/dhcp", "boot/tftp", "boot/http", "boot/server", "rack", "inventory", "imagestore", "attest/verifier"}},
	{why: "the rack config reads and validates; it knows no protocol, key format library or server",
		from: []string{"rack"}, not: []string{"*", "*/*"}},
	{why: "the HAT wire protocol imports nothing of the host",
		from: []string{"hatlink"}, not: []string{"*", "*/*"}},
	{why: "pisim is written from the wire facts and shares no code with the server",
		from: []string{"pisim"}, not: []string{"boot/*", "rack", "store", "inventory", "imagestore", "attest", "attest/*"}},
	{why: "the node side (agent, attest, racklet-agent) links no state store and no server",
		from: []string{"agent", "attest", "cmd/racklet-agent"}, deps: true,
		not: []string{"go.etcd.io/bbolt", "store", "attest/verifier", "boot/*", "imagestore"}},
	{why: "the image store serves the resolver through boot/server; it does not import it",
		from: []string{"imagestore", "image", "image/*", "sign"}, not: []string{"boot/*", "inventory", "lab"}},
	{why: "the node index is built from the config alone",
		from: []string{"inventory"}, not: []string{"boot/*", "store", "imagestore", "attest", "attest/*"}},
	{why: "the node's side of a Kubernetes join links no Kubernetes library: kubeadm does the talking",
		from: []string{"kube/join", "kube/nodejoin", "kube/profile", "kube/kubebin"}, deps: true,
		not: []string{"kube/cluster", "k8s.io/*", "k8s.io/*/*", "k8s.io/*/*/*", "k8s.io/*/*/*/*", "k8s.io/*/*/*/*/*"}},
	{why: "only commands, the lab and tests wire a server",
		from: []string{"*", "*/*"}, not: []string{"boot/server", "lab"}},
}

// allowed are the packages a rule's from-pattern matches but that may
// import what it forbids (the wiring packages).
var allowed = map[string]bool{"boot/server": true, "lab": true, "cmd/racklet-boot": true}

// match reports whether pkg matches a pattern. A package of another module
// ("go.etcd.io/bbolt") matches only patterns that name a module.
func match(patterns []string, pkg string) bool {
	external := strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".")
	for _, p := range patterns {
		if external != strings.Contains(strings.SplitN(p, "/", 2)[0], ".") {
			continue
		}
		if ok, _ := path.Match(p, pkg); ok || p == pkg {
			return true
		}
	}
	return false
}

// TestImportRules checks every rule against go list's import graph.
func TestImportRules(t *testing.T) {
	direct, deps := graph(t, false), graph(t, true)
	// The graph is real: the server wires DHCP, and the store links bbolt.
	if !match([]string{"boot/dhcp"}, "boot/dhcp") || !contains(direct["boot/server"], "boot/dhcp") || !contains(deps["store"], "go.etcd.io/bbolt") {
		t.Fatalf("go list's graph lacks boot/server -> boot/dhcp or store -> go.etcd.io/bbolt: %v / %v", direct["boot/server"], deps["store"])
	}
	for _, r := range rules {
		g := direct
		if r.deps {
			g = deps
		}
		for pkg, imports := range g {
			if !match(r.from, pkg) || strings.HasPrefix(pkg, "integration") || strings.HasPrefix(pkg, "bench") {
				continue
			}
			if allowed[pkg] && r.from[0] == "*" {
				continue
			}
			for _, imp := range imports {
				if imp == pkg || strings.HasPrefix(imp, "internal/") || !match(r.not, imp) {
					continue
				}
				t.Errorf("%s imports %s: %s", pkg, imp, r.why)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
