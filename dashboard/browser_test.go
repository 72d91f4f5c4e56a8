package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image/imagetest/signed"
	"github.com/racklet/racklet-boot/internal/adminclient"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/rack"
)

// simRack is a running racklet-boot with n nodes, each with a simulated
// HAT connected to its board-management listener.
type simRack struct {
	srv  *server.Server
	base string // http://127.0.0.1:PORT
	hats []*hatsim.Device
	bmc  string
}

func startRack(t *testing.T, n int) *simRack {
	t.Helper()
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot")
	if err := os.Mkdir(boot, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &simRack{}
	var nodes strings.Builder
	for i := range n {
		d, err := hatsim.Open(filepath.Join(dir, fmt.Sprintf("hat-%02d.json", i+1)), hatsim.Options{Serial: fmt.Sprintf("5b1545%02x", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		r.hats = append(r.hats, d)
		fmt.Fprintf(&nodes, "  - {name: pi-%02d, kind: %s, serial: 5b1545%02x, hatKey: %q, boot: {dir: boot}}\n",
			i+1, []string{"rpi4", "rpi5"}[i%2], i+1, hatlink.EncodeKey(d.Identity().SignKey))
	}
	text := fmt.Sprintf("apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver: {address: 127.0.0.1, dataDir: data}\ndhcp: {mode: off}\n"+
		"unknownMachines: discover\ndefault: {dir: boot}\nnodes:\n%s", nodes.String())
	cfg, err := rack.Parse([]byte(text), filepath.Join(dir, "rack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r.srv, err = server.New(cfg, server.Options{TFTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", BMCAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Serve(t, r.srv.Run)
	select {
	case <-r.srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready in 30 s")
	}
	a := r.srv.Addrs()
	r.base, r.bmc = "http://"+a.HTTP, "tcp:"+a.BMC
	for _, d := range r.hats {
		r.connect(t, d)
	}
	return r
}

// connect runs a HAT's board-management link to the rack's server.
func (r *simRack) connect(t *testing.T, d *hatsim.Device) {
	testutil.Serve(t, func(ctx context.Context) error { return hatsim.DialAndServe(ctx, r.bmc, d.BMC(), nil) })
}

func (r *simRack) power(t *testing.T, node, action string) {
	t.Helper()
	c := server.NewAdminClient(adminclient.HTTP(r.base, r.srv.AdminToken()))
	if _, err := c.Power(t.Context(), node, action, "test"); err != nil {
		t.Fatal(err)
	}
}

// browser starts Debian's chromium headless, driven over the DevTools protocol.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := testutil.NeedTool(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

// waitJS polls a JavaScript condition in the page for up to 60 s.
func waitJS(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("the page never showed %s (%s):\n%.3000s", what, cond, html)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// artifacts is where the screenshots are kept ($RACKLET_ARTIFACTS, else
// a directory under the system's temp dir); the path is logged.
func artifacts(t *testing.T) string {
	dir := os.Getenv("RACKLET_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "racklet-artifacts")
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the page as PNG and checks it is not blank: a real
// page has many pixels off its background colour, in several colours.
func screenshot(t *testing.T, ctx context.Context, name string, w, h int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h), chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	frac, colours := inked(img)
	t.Logf("screenshot %s: %dx%d, %.1f%% of pixels off the background colour, %d colours", path, img.Bounds().Dx(), img.Bounds().Dy(), 100*frac, colours)
	if frac < 0.05 || colours < 8 {
		t.Errorf("screenshot %s looks blank: %.1f%% inked, %d colours", path, 100*frac, colours)
	}
	if img.Bounds().Dx() < int(w)-20 {
		t.Errorf("screenshot %s is %d px wide, want about %d", path, img.Bounds().Dx(), w)
	}
}

// inked returns the share of pixels not of the page's most common colour
// and the number of distinct colours (capped at 1000).
func inked(img image.Image) (float64, int) {
	b := img.Bounds()
	count := map[[3]uint32]int{}
	all := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			all++
			if k := [3]uint32{r >> 8, g >> 8, bl >> 8}; len(count) < 1000 || count[k] > 0 {
				count[k]++
			}
		}
	}
	top := 0
	for _, n := range count {
		top = max(top, n)
	}
	return 1 - float64(top)/float64(all), len(count)
}

// TestDashboard drives the dashboard in Debian's chromium: a 20-node
// simulated rack, live updates on power and failure, keyboard navigation
// to a node page, approving a pending machine, and screenshots at desktop
// and phone width.
func TestDashboard(t *testing.T) {
	ctx := browser(t)
	r := startRack(t, 20)
	signIn(t, ctx, r.base, r.srv.AdminToken())
	waitJS(t, ctx, "20 powered slots", `document.querySelectorAll('.slot[data-power="on"]').length === 20`)
	screenshot(t, ctx, "rack-desktop.png", 1280, 900)

	// Live updates: a power switch and a kernel panic on a console change
	// their slots without a reload.
	r.power(t, "pi-05", "off")
	waitJS(t, ctx, "pi-05 off", `document.querySelector('.slot[data-node="pi-05"]')?.dataset.power === "off"`)
	r.hats[6].Console().Write([]byte("[    1.2] Kernel panic - not syncing: VFS: Unable to mount root fs\n"))
	waitJS(t, ctx, "pi-07 failed", `document.querySelector('.slot[data-node="pi-07"]')?.dataset.state === "failed"`)

	// Keyboard: tab to pi-07's slot, open it, and find the failure in
	// its timeline with the console lines around it.
	var focused string
	for range 40 {
		if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
			t.Fatal(err)
		}
		var err error
		if focused, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.closest('.slot')?.dataset.node || ""`)); err != nil {
			t.Fatal(err)
		}
		if focused == "pi-07" {
			break
		}
	}
	if focused != "pi-07" {
		t.Fatal("tabbing through the page never reached pi-07's slot")
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "pi-07's page with the failure", `location.hash === "#node/pi-07" && !document.getElementById("node-view").hidden &&
		[...document.querySelectorAll("#timeline td")].some(td => td.textContent.includes("kernel panic"))`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#timeline button`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the panic marked in the console", `[...document.querySelectorAll("#console mark")].some(m => m.textContent.includes("Kernel panic"))`)
	screenshot(t, ctx, "node-phone.png", 390, 844)

	// Enrolment: an unknown HAT appears as pending; approving it in the
	// page makes it a node of the rack.
	stranger, err := hatsim.Open(filepath.Join(t.TempDir(), "hat.json"), hatsim.Options{Serial: "5b1545ff"})
	if err != nil {
		t.Fatal(err)
	}
	r.connect(t, stranger)
	if err := chromedp.Do(ctx, chromedp.Navigate(r.base+"/ui/#"), chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the pending machine", `document.querySelector('#pending li[data-serial="5b1545ff"]') !== null`)
	screenshot(t, ctx, "pending-phone.png", 390, 844)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#pending li[data-serial="5b1545ff"] input[name="as"]`), "pi-21"),
		chromedp.Click(chromedp.CSS(`#pending li[data-serial="5b1545ff"] button`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "pi-21 in the rack", `document.querySelectorAll('.slot').length === 21 &&
		document.querySelector('.slot[data-node="pi-21"]')?.dataset.power === "on"`)
	if code, _ := httpGet(t, r.base+"/api/v1/admin/nodes/pi-21"); code != http.StatusUnauthorized {
		t.Errorf("a node card without a credential: %d, want 401", code)
	}
	var card server.NodeCard
	if err := adminclient.HTTP(r.base, r.srv.AdminToken()).JSON(t.Context(), "GET", "/api/v1/admin/nodes/pi-21", nil, &card); err != nil || !card.Approved || card.Power.Key != hatlink.EncodeKey(stranger.Identity().SignKey) {
		t.Errorf("pi-21 after approval: %+v, %v", card, err)
	}
	screenshot(t, ctx, "rack-approved-desktop.png", 1280, 900)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}

// signIn opens the dashboard: without a session it sends the browser to
// the login, where the operator token signs in (an HttpOnly session
// cookie) and leads back.
func signIn(t *testing.T, ctx context.Context, base, token string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the login page", `location.pathname === "/ui/login" && document.querySelector("#token") !== null`)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), token+"\r")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the dashboard after login", `location.pathname === "/ui/" && document.cookie === ""`)
}

// TestDashboardRollout: the rollout view of a rack whose group moves to a
// new image: the group's phase and nodes update live, and the page's
// Pause, Resume and Undo buttons steer it (the nodes never report, so the
// first batch stays in its trial until the undo withdraws it; it is
// out of service until its 30 s health timeout passes).
func TestDashboardRollout(t *testing.T) {
	ctx := browser(t)
	dir := t.TempDir()
	im := signed.Layout(t, dir, "v1", "v2")
	var pem strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(im.PublicKey)), "\n") {
		pem.WriteString("          " + l + "\n")
	}
	config := func(tag string) *rack.Config {
		var nodes strings.Builder
		for i := range 4 {
			fmt.Fprintf(&nodes, "  - {name: pi-%02d, kind: rpi4, serial: 5b1546%02x, labels: {role: worker}}\n", i+1, i+1)
		}
		text := fmt.Sprintf("apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver: {address: 127.0.0.1, dataDir: %s}\ndhcp: {mode: off}\n"+
			"trust:\n  - repositories: [\"oci-layout:%s\"]\n    keys:\n      - pem: |\n%snodes:\n%sgroups:\n"+
			"  - {name: workers, selector: {role: worker}, image: %q, rollout: {maxUnavailable: 1, healthTimeout: 30s}}\n",
			filepath.Join(dir, "data"), im.Layout, pem.String(), nodes.String(), im.Ref(tag))
		cfg, err := rack.Parse([]byte(text), filepath.Join(dir, "rack.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	srv, err := server.New(config("v1"), server.Options{TFTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", BMCAddr: "127.0.0.1:0",
		PowerCycle: func(context.Context, string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Serve(t, srv.Run)
	<-srv.Ready()
	signIn(t, ctx, "http://"+srv.Addrs().HTTP, srv.AdminToken())
	waitJS(t, ctx, "the group done on v1", `document.querySelector('#rollouts li[data-group="workers"]')?.dataset.phase === "done"`)
	if err := srv.Reload(t.Context(), config("v2")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the rollout running with pi-01 trying", `document.querySelector('#rollouts li[data-group="workers"]')?.dataset.phase === "running" &&
		[...document.querySelectorAll('#rollouts tr[data-node="pi-01"] td')].some(td => td.textContent === "trying")`)
	screenshot(t, ctx, "rollout-desktop.png", 1280, 900)
	click := func(action string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#rollouts li[data-group="workers"] button[data-rollout="`+action+`"]`))); err != nil {
			t.Fatal(err)
		}
	}
	click("pause")
	waitJS(t, ctx, "the rollout paused", `document.querySelector('#rollouts li[data-group="workers"]')?.dataset.paused === "true"`)
	if st := srv.Rollouts(); !st[0].Paused {
		t.Errorf("the server's rollout is not paused: %+v", st[0])
	}
	click("resume")
	waitJS(t, ctx, "the rollout resumed", `document.querySelector('#rollouts li[data-group="workers"]')?.dataset.paused === "false"`)
	click("undo")
	waitJS(t, ctx, "the undo done", `document.querySelector('#rollouts li[data-group="workers"]')?.dataset.phase === "done" &&
		document.querySelector('#rollouts li[data-group="workers"] .muted').textContent.includes("4/4 at oci-layout:")`)
	if st := srv.Rollouts(); !strings.HasSuffix(st[0].To, ":v1") {
		t.Errorf("after undo the group moves to %s, want v1", st[0].To)
	}
	screenshot(t, ctx, "rollout-phone.png", 390, 844)
}
