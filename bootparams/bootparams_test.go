package bootparams

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var full = Params{
	RootHash:   strings.Repeat("ab", 32),
	Salt:       strings.Repeat("01", 32),
	DataBlocks: 12345,
	Root:       "sha256:" + strings.Repeat("1", 64),
	Verity:     "sha256:" + strings.Repeat("2", 64),
	HAT:        "/dev/virtio-ports/racklet.hat",
	Kernel:     "vmlinuz",
	Overlay:    OverlayTmpfs,
	OnFailure:  FailReboot, RebootAfter: 10,
}

func TestRoundTrip(t *testing.T) {
	for name, p := range map[string]Params{
		"full":      full,
		"no salt":   func() Params { q := full; q.Salt = ""; return q }(),
		"disk root": func() Params { q := full; q.RootDev = PartUUID(0x1234abcd, 6); return q }(),
		"debug shell": func() Params {
			q := full
			q.OnFailure, q.RebootAfter, q.Debug, q.Node, q.Server = FailShell, 0, true, "pi-01", "http://10.0.0.2:8080"
			return q
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			line := "console=ttyS0 " + p.String() + " quiet"
			got, rest, err := Parse(line)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(p, got); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
			if d := cmp.Diff([]string{"console=ttyS0", "quiet"}, rest); d != "" {
				t.Errorf("other words (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ line, want string }{
		"unknown key":      {"racklet.rooth=1", `unknown key "racklet.rooth=1"`},
		"bad number":       {"racklet.datablocks=x", "racklet.datablocks=x"},
		"missing value":    {"racklet.roothash", "missing =value"},
		"debug with value": {"racklet.debug=1", "takes no value"},
		"delay on halt":    {"racklet.onfailure=halt:3", "only reboot takes a delay"},
		"bad reboot delay": {"racklet.onfailure=reboot:x", "racklet.onfailure=reboot:x"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Parse(tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%q) = %v, want an error containing %q", tc.line, err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*Params)
		want string
	}{
		"short root hash": {func(p *Params) { p.RootHash = "ab" }, "racklet.roothash"},
		"upper-case salt": {func(p *Params) { p.Salt = "AB" }, "racklet.salt"},
		"no data blocks":  {func(p *Params) { p.DataBlocks = 0 }, "racklet.datablocks"},
		"odd offset":      {func(p *Params) { p.HashOffset = 100 }, "racklet.hashoffset"},
		"bad digest":      {func(p *Params) { p.Root = "md5:00" }, "racklet.root"},
		"bad node":        {func(p *Params) { p.Node = "../x" }, "racklet.node"},
		"kernel escapes":  {func(p *Params) { p.Kernel = "boot/../../etc/shadow" }, "racklet.kernel"},
		"kernel absolute": {func(p *Params) { p.Kernel = "/vmlinuz" }, "racklet.kernel"},
		"bad overlay":     {func(p *Params) { p.Overlay = "disk" }, "racklet.overlay"},
		"bad failure":     {func(p *Params) { p.OnFailure = "panic" }, "racklet.onfailure"},
		"rootdev a path":  {func(p *Params) { p.RootDev = "/dev/mmcblk0p6" }, "racklet.rootdev"},
		"rootdev decimal": {func(p *Params) { p.RootDev = "PARTUUID=1234ABCD-06" }, "racklet.rootdev"},
		"rootdev part 0":  {func(p *Params) { p.RootDev = "PARTUUID=1234abcd-00" }, "numbered from 1"},
	} {
		t.Run(name, func(t *testing.T) {
			p := full
			tc.edit(&p)
			if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestPartUUID(t *testing.T) {
	for _, tc := range []struct {
		id   uint32
		part int
		want string
	}{{0x1234abcd, 5, "PARTUUID=1234abcd-05"}, {0xab, 6, "PARTUUID=000000ab-06"}, {0xffffffff, 12, "PARTUUID=ffffffff-0c"}} {
		got := PartUUID(tc.id, tc.part)
		if got != tc.want {
			t.Errorf("PartUUID(%x, %d) = %s, want %s", tc.id, tc.part, got, tc.want)
		}
		id, part, err := ParsePartUUID(got)
		if err != nil || id != tc.id || part != tc.part {
			t.Errorf("ParsePartUUID(%s) = %x, %d, %v", got, id, part, err)
		}
	}
}

func TestShellNeedsDebug(t *testing.T) {
	p := Params{OnFailure: FailShell}.WithDefaults()
	if p.OnFailure != FailReboot || p.RebootAfter != 10 {
		t.Fatalf("shell without debug: got %s after %d s, want reboot after 10 s", p.OnFailure, p.RebootAfter)
	}
	if p := (Params{OnFailure: FailShell, Debug: true}).WithDefaults(); p.OnFailure != FailShell {
		t.Fatalf("shell with debug: got %s", p.OnFailure)
	}
}

func TestHandover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "racklet", "boot.json")
	want := Handover{Server: "http://10.0.0.2", Node: "pi-01", Image: full.Root, Attested: true}
	if err := WriteHandover(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadHandover(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("hand-over (-want +got):\n%s", d)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(full.String())
	f.Add("racklet.debug racklet.onfailure=shell console=ttyS0")
	f.Add("racklet.rootdev=PARTUUID=1234abcd-06 root=/dev/dm-0")
	f.Fuzz(func(t *testing.T, line string) {
		p, _, err := Parse(line)
		if err != nil {
			return
		}
		// Whatever parses renders to words that parse to the same thing.
		q, _, err := Parse(p.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", p.String(), err)
		}
		if d := cmp.Diff(p, q); d != "" {
			t.Fatalf("re-parse differs (-first +second):\n%s", d)
		}
	})
}
