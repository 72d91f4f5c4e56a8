// Package systemd_test checks the example systemd unit with systemd's own
// tools.
package systemd_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

const unitFile = "racklet-boot.service"

// directives reads the unit's [Service] section: key -> values in order.
func directives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			m[section+"."+k] = append(m[section+"."+k], v)
		}
	}
	return m
}

// TestUnitVerifies: the unit passes systemd-analyze verify without a
// warning (with ExecStart pointing at a racklet-boot built from this tree,
// whose serve takes the unit's flags), keeps to the two capabilities it
// needs, and systemd rates its exposure OK.
func TestUnitVerifies(t *testing.T) {
	analyze := testutil.NeedTool(t, "systemd-analyze")
	goBin := testutil.NeedTool(t, "go")
	d := directives(t, unitFile)
	for key, want := range map[string]string{
		"Service.DynamicUser":             "yes",
		"Service.StateDirectory":          "racklet",
		"Service.ProtectSystem":           "strict",
		"Service.NoNewPrivileges":         "yes",
		"Service.CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"Service.AmbientCapabilities":     "CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Install.WantedBy":                "multi-user.target",
		"Service.RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
	} {
		if got := d[key]; !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "racklet-boot")
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "../../cmd/racklet-boot").CombinedOutput(); err != nil {
		t.Fatalf("build racklet-boot: %v\n%s", err, out)
	}
	// serve takes every flag the unit gives it.
	exec0 := strings.Fields(d["Service.ExecStart"][0])
	if exec0[0] != "/usr/local/bin/racklet-boot" {
		t.Fatalf("ExecStart runs %s", exec0[0])
	}
	if out, err := exec.CommandContext(ctx, bin, append(exec0[1:], "--help")...).CombinedOutput(); err != nil {
		t.Errorf("racklet-boot refuses the unit's arguments %q: %v\n%s", exec0[1:], err, out)
	}

	text, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, unitFile)
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(text), "/usr/local/bin/racklet-boot", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, analyze, "verify", unit).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	out, err = exec.CommandContext(ctx, analyze, "security", "--offline=yes", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f %s", score, m[2])
	if score > 2.5 {
		t.Errorf("exposure %.1f %s: the unit grants more than it should\n%s", score, m[2], out)
	}
}
