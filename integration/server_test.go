package integration

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/netlab"
)

// server is one racklet-boot serve process inside a namespace.
type server struct {
	*proc
	ns      netlab.Namespace
	config  string
	dataDir string
	addr    string
}

// rackConfig renders a rack config for a test LAN. extra is appended
// verbatim (nodes, default boot source...).
func rackConfig(iface, addr, dataDir, dhcp, extra string) string {
	return fmt.Sprintf(`apiVersion: racklet.io/v1alpha1
kind: Rack
server:
  interface: %s
  address: %s
  dataDir: %s
  httpPort: 80
  tftpPort: 69
dhcp:
%s
%s
`, iface, addr, dataDir, indent(dhcp, "  "), extra)
}

func indent(s, pre string) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range ls {
		ls[i] = pre + ls[i]
	}
	return strings.Join(ls, "\n")
}

// startServer writes the config into a temp dir and starts racklet-boot in
// ns; it returns once DHCP (unless off), TFTP and HTTP answer.
func startServer(t *testing.T, ns netlab.Namespace, dir, config string) *server {
	t.Helper()
	cfgPath := writeFile(t, dir, "rack.yaml", config)
	s := &server{ns: ns, config: cfgPath, dataDir: filepath.Join(dir, "data")}
	s.restart(t)
	return s
}

// restart starts the server process (again) with the same config and data.
func (s *server) restart(t *testing.T) {
	t.Helper()
	s.proc = start(t, s.ns, filepath.Join(bin, "racklet-boot"), "serve", "--config", s.config,
		"--data-dir", s.dataDir, "--log-format", "json", "--log-level", "debug")
	s.waitOutput(t, "racklet-boot serving", 20*time.Second)
	waitListening(t, s.ns, s.proc, 20*time.Second, "udp:69", "tcp:80")
}

// waitListening polls `ss` in ns until every proto:port is bound.
func waitListening(t *testing.T, ns netlab.Namespace, p *proc, timeout time.Duration, socks ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, _ := ns.Output(t.Context(), "ss", "-Hlnut")
		missing := ""
		for _, s := range socks {
			proto, port, _ := strings.Cut(s, ":")
			found := false
			for _, l := range strings.Split(out, "\n") {
				f := strings.Fields(l)
				if len(f) >= 5 && f[0] == proto && strings.HasSuffix(f[4], ":"+port) {
					found = true
				}
			}
			if !found {
				missing = s
			}
		}
		if missing == "" {
			return
		}
		if p != nil && p.Exited() {
			t.Fatalf("%s exited before listening on %s:\n%s", p.name, missing, tail(p.Output(), 4000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s in %s after %s:\n%s", missing, ns, timeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bootDir makes a small boot source directory.
func bootDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		writeFile(t, dir, name, content)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustPrefix(s string) netip.Prefix {
	if s == "" {
		return netip.Prefix{}
	}
	return netip.MustParsePrefix(s)
}
