package resolve

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/google/go-cmp/cmp"
	"github.com/racklet/racklet-boot/rack"
)

// testRack builds boot directories under a temp dir and a config using them.
func testRack(t *testing.T) (*rack.Config, string) {
	t.Helper()
	base := t.TempDir()
	writeTree(t, filepath.Join(base, "rpi"), map[string]string{
		"start4.elf":        "start4",
		"fixup4.dat":        "fixup4",
		"kernel8.img":       "kernel8",
		"overlays/vc4.dtbo": "vc4",
		"config.txt.tmpl":   "# {{.Name}}\nkernel={{.Kernel}}\nserial={{.Serial}} mac={{.MAC}} addr={{.Addr}} server={{.ServerAddr}}:{{.HTTPPort}} slot={{.Slot}}\n",
		"pieeprom.upd":      "eeprom",
		"pieeprom.sig":      "eeprom-sig",
		"vl805.sig":         "vl805-sig",
		"rack1/README":      "a real directory named like a prefix",
		"boot.img":          "fat image",
		"boot.sig":          "sig",
	})
	writeTree(t, filepath.Join(base, "x86"), map[string]string{"vmlinuz": "kernel", "initrd.gz": "initrd", "cmdline.txt": "from-file\n"})
	writeTree(t, filepath.Join(base, "default"), map[string]string{"start4.elf": "default-start4", "config.txt": "default-config"})
	writeTree(t, filepath.Join(base, "broken"), map[string]string{"config.txt.tmpl": "line one\n{{.Name}\n"})
	writeTree(t, filepath.Join(base, "secret"), map[string]string{"key.txt": "secret"})
	links := map[string]string{
		"rpi/passwd":      "/etc/passwd",
		"rpi/sibling":     "../secret",
		"rpi/sibling-key": "../secret/key.txt",
		"rpi/alias.elf":   "start4.elf",
		"rpi/ovl":         "overlays",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &rack.Config{
		Server:          rack.Server{Address: addr("10.0.0.2"), HTTPPort: 8080},
		UnknownMachines: rack.UnknownIgnore,
		Nodes: []rack.Node{
			{Name: "pi-01", Kind: rack.KindRPi4, Serial: "5b154510", MAC: mustMAC("dc:a6:32:01:36:c2"), Boot: rack.Boot{Dir: "rpi", Kernel: "kernel8.img"}},
			{Name: "pi-02", Kind: rack.KindRPi4, Serial: "1A2B3C4D", MAC: mustMAC("dc:a6:32:00:00:02"), AllowEEPROMUpdate: boolPtr(true),
				Boot: rack.Boot{Dir: "rpi", Cmdline: "console=serial0,115200 hostname={{.Name}}"}},
			{Name: "pc-01", Kind: rack.KindBIOS, MAC: mustMAC("52:54:00:99:00:a1"),
				Boot: rack.Boot{Dir: "x86", Kernel: "vmlinuz", Initrd: []string{"initrd.gz", "extra/more.cpio"}, Cmdline: "console=ttyS0,115200 ip={{.Addr}}"}},
			{Name: "pc-02", Kind: rack.KindBIOS, MAC: mustMAC("52:54:00:99:00:a2"), Boot: rack.Boot{Dir: "x86"}},
			{Name: "img-01", Kind: rack.KindRPi5, Serial: "0badf00d", Boot: rack.Boot{Image: "registry.local/pi:1"}},
			{Name: "bad-01", Kind: rack.KindRPi4, Serial: "deadbeef", Boot: rack.Boot{Dir: "broken"}},
			{Name: "gone-01", Kind: rack.KindRPi4, Serial: "00000001", Boot: rack.Boot{Dir: "no-such-dir"}},
		},
	}
	return cfg, base
}

var testClients = fakeClients{
	addr("10.0.0.101"): mustMAC("dc:a6:32:01:36:c2"),
	addr("10.0.0.102"): mustMAC("dc:a6:32:00:00:02"),
	addr("10.0.0.150"): mustMAC("52:54:00:99:00:a1"),
	addr("10.0.0.151"): mustMAC("52:54:00:99:00:a2"),
	addr("10.0.0.199"): mustMAC("02:00:00:00:00:99"),
}

type result struct {
	Content string
	Node    string
	Path    string
	Err     string
}

func resolveResult(t *testing.T, r *Resolver, req Request) result {
	t.Helper()
	content, f, err := readAll(context.Background(), r, req)
	if err != nil {
		return result{Err: errKind(err)}
	}
	return result{Content: content, Node: f.Node, Path: f.Path}
}

func TestOpenDir(t *testing.T) {
	cfg, base := testRack(t)
	r := New(inventory.New(cfg), Options{BaseDir: base, Clients: testClients})
	pi1, pi2, anon := addr("10.0.0.101"), addr("10.0.0.102"), addr("10.0.0.250")
	tests := map[string]struct {
		req  Request
		want result
	}{
		// prefix forms
		"serial prefix":              {Request{Client: anon, Name: "5b154510/start4.elf"}, result{Content: "start4", Node: "pi-01", Path: "start4.elf"}},
		"serial prefix, leading /":   {Request{Client: anon, Name: "/5b154510/fixup4.dat"}, result{Content: "fixup4", Node: "pi-01", Path: "fixup4.dat"}},
		"serial prefix, upper case":  {Request{Client: anon, Name: "1a2b3c4d/start4.elf"}, result{Content: "start4", Node: "pi-02", Path: "start4.elf"}},
		"MAC prefix":                 {Request{Client: anon, Name: "dc-a6-32-01-36-c2/overlays/vc4.dtbo"}, result{Content: "vc4", Node: "pi-01", Path: "overlays/vc4.dtbo"}},
		"MAC prefix, upper case":     {Request{Client: anon, Name: "DC-A6-32-01-36-C2/start4.elf"}, result{Content: "start4", Node: "pi-01", Path: "start4.elf"}},
		"prefix wins over address":   {Request{Client: pi2, Name: "5b154510/start4.elf"}, result{Content: "start4", Node: "pi-01", Path: "start4.elf"}},
		"prefix, missing start4":     {Request{Client: pi1, Name: "5b154510/start.elf"}, result{Err: "not-found"}},
		"IPv4-mapped address":        {Request{Client: addr("::ffff:10.0.0.101"), Name: "start4.elf"}, result{Content: "start4", Node: "pi-01", Path: "start4.elf"}},
		"unprefixed by address":      {Request{Client: pi1, Name: "start4.elf"}, result{Content: "start4", Node: "pi-01", Path: "start4.elf"}},
		"fixed prefix by address":    {Request{Client: pi1, Name: "rack7/start4.elf"}, result{Content: "start4", Node: "pi-01", Path: "start4.elf"}},
		"fixed prefix, nested":       {Request{Client: pi1, Name: "rack7/overlays/vc4.dtbo"}, result{Content: "vc4", Node: "pi-01", Path: "overlays/vc4.dtbo"}},
		"fixed prefix is a real dir": {Request{Client: pi1, Name: "rack1/README"}, result{Content: "a real directory named like a prefix", Node: "pi-01", Path: "rack1/README"}},
		"real dir, missing file":     {Request{Client: pi1, Name: "rack1/start4.elf"}, result{Err: "not-found"}},
		"unknown serial, by address": {Request{Client: pi1, Name: "99999999/start4.elf"}, result{Content: "start4", Node: "pi-01", Path: "start4.elf"}},
		"HTTP boot by address":       {Request{Client: pi1, Name: "/net_install/boot.img", Via: "http"}, result{Content: "fat image", Node: "pi-01", Path: "boot.img"}},
		"HTTP boot signature":        {Request{Client: pi1, Name: "/net_install/boot.sig", Via: "http"}, result{Content: "sig", Node: "pi-01", Path: "boot.sig"}},
		"directory is not found":     {Request{Client: pi1, Name: "overlays"}, result{Err: "not-found"}},
		"missing file":               {Request{Client: pi1, Name: "dt-blob.bin"}, result{Err: "not-found"}},
		"file as a directory":        {Request{Client: pi1, Name: "start4.elf/x"}, result{Err: "not-found"}},
		// unknown machines
		"unknown address, ignore":   {Request{Client: anon, Name: "start4.elf"}, result{Err: "refused"}},
		"unknown MAC, ignore":       {Request{Client: addr("10.0.0.199"), Name: "start4.elf"}, result{Err: "refused"}},
		"unknown serial, ignore":    {Request{Client: anon, Name: "12345678/start4.elf"}, result{Err: "refused"}},
		"no client address, ignore": {Request{Name: "start4.elf"}, result{Err: "refused"}},
		// traversal and symlinks
		"dotdot":                 {Request{Client: pi1, Name: "../secret/key.txt"}, result{Err: "refused"}},
		"dotdot after prefix":    {Request{Client: anon, Name: "5b154510/../secret/key.txt"}, result{Err: "refused"}},
		"dotdot inside":          {Request{Client: pi1, Name: "overlays/../../secret/key.txt"}, result{Err: "refused"}},
		"backslashes":            {Request{Client: pi1, Name: `\..\secret\key.txt`}, result{Err: "refused"}},
		"NUL":                    {Request{Client: pi1, Name: "start4.elf\x00.txt"}, result{Err: "refused"}},
		"absolute":               {Request{Client: pi1, Name: "//etc/passwd"}, result{Err: "refused"}},
		"symlink to /etc":        {Request{Client: pi1, Name: "passwd"}, result{Err: "refused"}},
		"symlink to sibling":     {Request{Client: pi1, Name: "sibling/key.txt"}, result{Err: "refused"}},
		"symlink to sibling f":   {Request{Client: pi1, Name: "sibling-key"}, result{Err: "refused"}},
		"symlink inside":         {Request{Client: pi1, Name: "alias.elf"}, result{Content: "start4", Node: "pi-01", Path: "alias.elf"}},
		"symlinked dir inside":   {Request{Client: pi1, Name: "ovl/vc4.dtbo"}, result{Content: "vc4", Node: "pi-01", Path: "ovl/vc4.dtbo"}},
		"template source hidden": {Request{Client: pi1, Name: "config.txt.tmpl"}, result{Err: "not-found"}},
		// EEPROM self-update gating
		"eeprom off":              {Request{Client: pi1, Name: "pieeprom.upd"}, result{Err: "not-found"}},
		"eeprom off, sig":         {Request{Client: pi1, Name: "pieeprom.sig"}, result{Err: "not-found"}},
		"eeprom off, vl805":       {Request{Client: pi1, Name: "vl805.sig"}, result{Err: "not-found"}},
		"eeprom off, prefixed":    {Request{Client: anon, Name: "5b154510/PIEEPROM.UPD"}, result{Err: "not-found"}},
		"eeprom on for the node":  {Request{Client: pi2, Name: "pieeprom.upd"}, result{Content: "eeprom", Node: "pi-02", Path: "pieeprom.upd"}},
		"eeprom on, prefixed":     {Request{Client: anon, Name: "1a2b3c4d/vl805.sig"}, result{Content: "vl805-sig", Node: "pi-02", Path: "vl805.sig"}},
		"eeprom on, file missing": {Request{Client: pi2, Name: "recovery.bin"}, result{Err: "not-found"}},
		// generated files
		"config.txt template": {Request{Client: pi1, Name: "config.txt"}, result{Node: "pi-01", Path: "config.txt",
			Content: "# pi-01\nkernel=kernel8.img\nserial=5b154510 mac=dc:a6:32:01:36:c2 addr=10.0.0.101 server=10.0.0.2:8080 slot=a\n"}},
		"node cmdline":           {Request{Client: pi2, Name: "cmdline.txt"}, result{Content: "console=serial0,115200 hostname=pi-02\n", Node: "pi-02", Path: "cmdline.txt"}},
		"node cmdline over file": {Request{Client: addr("10.0.0.150"), Name: "cmdline.txt"}, result{Content: "console=ttyS0,115200 ip=10.0.0.150\n", Node: "pc-01", Path: "cmdline.txt"}},
		"cmdline file":           {Request{Client: addr("10.0.0.151"), Name: "cmdline.txt"}, result{Content: "from-file\n", Node: "pc-02", Path: "cmdline.txt"}},
		"no cmdline":             {Request{Client: pi1, Name: "cmdline.txt"}, result{Err: "not-found"}},
		"boot.ipxe": {Request{Client: addr("10.0.0.150"), Name: "boot.ipxe", Via: "http"}, result{Node: "pc-01", Path: "boot.ipxe", Content: "#!ipxe\n" +
			"kernel http://10.0.0.2:8080/boot/52-54-00-99-00-a1/vmlinuz initrd=initrd.gz console=ttyS0,115200 ip=10.0.0.150\n" +
			"initrd http://10.0.0.2:8080/boot/52-54-00-99-00-a1/initrd.gz\n" +
			"initrd http://10.0.0.2:8080/boot/52-54-00-99-00-a1/extra/more.cpio\n" +
			"boot\n"}},
		"boot.ipxe by MAC prefix": {Request{Client: anon, Name: "52-54-00-99-00-a1/vmlinuz", Via: "http"}, result{Content: "kernel", Node: "pc-01", Path: "vmlinuz"}},
		"boot.ipxe without kernel": {Request{Client: addr("10.0.0.151"), Name: "boot.ipxe"}, result{Node: "pc-02", Path: "boot.ipxe",
			Content: "#!ipxe\necho racklet-boot: node pc-02 has no kernel to boot (set boot.kernel in the rack config)\nexit 1\n"}},
		// sources that cannot serve
		"image source":             {Request{Client: anon, Name: "0badf00d/config.txt"}, result{Err: "image"}},
		"image source, eeprom off": {Request{Client: anon, Name: "0badf00d/pieeprom.sig"}, result{Err: "not-found"}},
		"missing dir":              {Request{Client: anon, Name: "00000001/start4.elf"}, result{Err: "unavailable"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, resolveResult(t, r, tc.req)); diff != "" {
				t.Errorf("Open(%+v) (-want +got):\n%s", tc.req, diff)
			}
		})
	}
}

func TestTemplateError(t *testing.T) {
	cfg, base := testRack(t)
	r := New(inventory.New(cfg), Options{BaseDir: base})
	_, err := r.Open(context.Background(), Request{Name: "deadbeef/config.txt"})
	if err == nil || !strings.Contains(err.Error(), "config.txt.tmpl:2") {
		t.Fatalf("Open of a broken template: %v; want an error naming config.txt.tmpl line 2", err)
	}
	cfg.Nodes[0].Boot.Cmdline = "x={{.Nope}}"
	r.Update(inventory.New(cfg))
	_, err = r.Open(context.Background(), Request{Name: "5b154510/cmdline.txt"})
	if err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Fatalf("Open with a bad cmdline template: %v; want an error naming the field", err)
	}
}

func TestGeneratedFileMeta(t *testing.T) {
	cfg, base := testRack(t)
	r := New(inventory.New(cfg), Options{BaseDir: base, Clients: testClients})
	ctx := context.Background()
	a, err := r.Open(ctx, Request{Client: addr("10.0.0.101"), Name: "config.txt"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Open(ctx, Request{Client: addr("10.0.0.102"), Name: "config.txt"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ETag == b.ETag || !strings.HasPrefix(a.ETag, "\"sha256:") || a.ModTime.IsZero() {
		t.Errorf("generated files of two nodes: ETags %s %s, ModTime %v", a.ETag, b.ETag, a.ModTime)
	}
}

func TestUpdate(t *testing.T) {
	cfg, base := testRack(t)
	r := New(inventory.New(cfg), Options{BaseDir: base, Clients: testClients})
	req := Request{Client: addr("10.0.0.199"), Name: "start4.elf"}
	if got := resolveResult(t, r, req); got.Err != "refused" {
		t.Fatalf("before Update: %+v", got)
	}
	next := *cfg
	next.Nodes = append([]rack.Node{{Name: "new-01", Kind: rack.KindRPi4, MAC: mustMAC("02:00:00:00:00:99"), Boot: rack.Boot{Dir: "default"}}}, cfg.Nodes...)
	r.Update(inventory.New(&next))
	want := result{Content: "default-start4", Node: "new-01", Path: "start4.elf"}
	if diff := cmp.Diff(want, resolveResult(t, r, req)); diff != "" {
		t.Errorf("after Update (-want +got):\n%s", diff)
	}
}

func TestDirETag(t *testing.T) {
	cfg, base := testRack(t)
	r := New(inventory.New(cfg), Options{BaseDir: base})
	ctx := context.Background()
	req := Request{Name: "5b154510/kernel8.img"}
	f1, err := r.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	f1.Close()
	if _, ok := f1.Content.(*os.File); !ok {
		t.Errorf("dir source content is %T, want *os.File", f1.Content)
	}
	// Replace the file the way a deploy does: write a new one, rename over.
	p := filepath.Join(base, "rpi", "kernel8.img")
	if err := os.WriteFile(p+".new", []byte("kernel9"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	f2, err := r.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	f2.Close()
	if f1.ETag == f2.ETag {
		t.Errorf("ETag %s unchanged after the file was replaced", f1.ETag)
	}
}

func TestOpenCanceled(t *testing.T) {
	cfg, base := testRack(t)
	r := New(inventory.New(cfg), Options{BaseDir: base})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Open(ctx, Request{Name: "5b154510/start4.elf"}); err != context.Canceled {
		t.Fatalf("Open with a canceled context: %v", err)
	}
}

func TestOpenLogs(t *testing.T) {
	cfg, base := testRack(t)
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := New(inventory.New(cfg), Options{BaseDir: base, Clients: testClients, Log: log})
	ctx := context.Background()
	if _, _, err := readAll(ctx, r, Request{Client: addr("10.0.0.101"), Name: "rack7/start4.elf", Via: "tftp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(ctx, Request{Name: "0badf00d/config.txt", Via: "http"}); err == nil {
		t.Fatal("image source served a file")
	}
	for _, want := range []string{
		"level=DEBUG msg=\"boot file\" via=tftp client=10.0.0.101 file=rack7/start4.elf route=source node=pi-01 match=address path=start4.elf size=6",
		"level=WARN msg=\"boot file not served\" via=http client=\"\" file=0badf00d/config.txt route=source-error node=img-01",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}
