package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/internal/adminclient"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/serverkey"
)

// TestEnrolmentBootsAndAttests: a HAT no node owns connects to the BMC
// listener and is pending; until an operator approves it, its Pi gets no
// boot files and its quotes release nothing; after the approval (through
// the admin API) the Pi's files are served, it attests with the HAT key
// shown at approval, and its HAT is managed as the new node.
func TestEnrolmentBootsAndAttests(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	boot := filepath.Join(dir, "default-boot")
	const rootHash = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	files := map[string]string{"config.txt": "kernel=kernel8.img\ninitramfs initrd.img followkernel\n",
		"kernel8.img": "kernel", "initrd.img": "initramfs", "cmdline.txt": "console=serial0 quiet\n"}
	os.MkdirAll(boot, 0o755)
	for name, body := range files {
		os.WriteFile(filepath.Join(boot, name), []byte(body), 0o644)
	}
	s := startLoopback(t, loopbackConfig(dir, boot, "unknownMachines: discover\ndefault: {dir: "+boot+", rootHash: "+rootHash+"}\n"))
	base := httpBase(t, s)
	admin := NewAdminClient(adminclient.HTTP(base, s.AdminToken()))

	dev, err := hatsim.Open(filepath.Join(dir, "hat.json"), hatsim.Options{Serial: "5b154517"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Serve(t, func(ctx context.Context) error { return hatsim.DialAndServe(ctx, "tcp:"+s.Addrs().BMC, dev.BMC(), nil) })
	key := hatlink.EncodeKey(dev.Identity().SignKey)
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := admin.Pending(ctx)
		if err == nil && len(list) == 1 && list[0].Key == key {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the HAT never became pending: %+v, %v", list, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	hat, err := hatlink.NewClient(ctx, hatlink.Direct(dev))
	if err != nil {
		t.Fatal(err)
	}
	m, err := attest.MeasureFiles(filepath.Join(boot, "kernel8.img"), filepath.Join(boot, "initrd.img"), files["cmdline.txt"], rootHash)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, err := serverkey.ParsePublic(s.ServerKey())
	if err != nil {
		t.Fatal(err)
	}
	opts := agent.Options{Node: "pi-17", Server: base, Measurements: m, ServerKey: serverKey}
	if code, _ := httpGet(t, base+"/boot/5b154517/kernel8.img"); code == http.StatusOK {
		t.Error("a pending machine was served its kernel")
	}
	// Not a node of the config yet: not even a challenge.
	if rel, err := agent.Attest(ctx, hat, opts); err == nil || len(rel.Secrets) != 0 {
		t.Fatalf("a pending machine attested: %+v", rel)
	} else if !strings.Contains(err.Error(), "no such node") {
		t.Errorf("a pending machine's attestation failed with %v, want no challenge for it", err)
	}

	res, err := admin.Approve(ctx, ApproveRequest{Ref: "5b154517", As: "pi-17", By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != key || !strings.HasPrefix(res.Fingerprint, "SHA256:") || res.File != filepath.Join(dir, "data", rack.OverlayFile) {
		t.Errorf("approval answer %+v", res)
	}
	if code, body := httpGet(t, base+"/boot/5b154517/kernel8.img"); code != http.StatusOK || body != "kernel" {
		t.Errorf("the approved node's kernel: %d %q", code, body)
	}
	rel, err := agent.Attest(ctx, hat, opts)
	if err != nil {
		t.Fatalf("the approved node does not attest: %v", err)
	}
	if len(rel.Secrets) == 0 {
		t.Error("no secrets released to the approved node")
	}
	deadline = time.Now().Add(20 * time.Second)
	for st, _ := s.bmc.Status("pi-17"); !st.Connected; st, _ = s.bmc.Status("pi-17") {
		if time.Now().After(deadline) {
			t.Fatal("the approved node's HAT link is not managed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := admin.Approve(ctx, ApproveRequest{Ref: "5b154517", As: "pi-18"}); err == nil {
		t.Error("a machine was approved twice")
	}
}

// httpBase is the running server's HTTP URL.
func httpBase(t *testing.T, s *Server) string {
	t.Helper()
	return "http://" + s.Addrs().HTTP
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	return resp.StatusCode, b.String()
}
