package resolve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// run runs a command and fails the test with its output when it fails.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(testutil.NeedTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// fakeClients maps addresses to MACs.
type fakeClients map[netip.Addr]net.HardwareAddr

func (c fakeClients) MACForAddr(_ context.Context, a netip.Addr) (net.HardwareAddr, bool) {
	m, ok := c[a]
	return m, ok
}

// writeTree writes files (name → content) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll opens a request and reads the whole file.
func readAll(ctx context.Context, r *Resolver, req Request) (string, *File, error) {
	f, err := r.Open(ctx, req)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f.Content)
	if err != nil {
		return "", nil, err
	}
	if int64(len(b)) != f.Size {
		return "", nil, errors.New("size mismatch")
	}
	return string(b), f, nil
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func boolPtr(b bool) *bool { return &b }

// errKind names the class of an error for table tests.
func errKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrRefused):
		return "refused"
	case errors.Is(err, os.ErrNotExist):
		return "not-found"
	case errors.Is(err, ErrImageSource):
		return "image"
	case errors.Is(err, ErrSourceUnavailable):
		return "unavailable"
	}
	return "other: " + err.Error()
}

// execCommand prepares a command the test needs.
func execCommand(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	return exec.Command(testutil.NeedTool(t, name), args...)
}

func netipParse(s string) (netip.Addr, error) { return netip.ParseAddr(s) }
