package image

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSpecDefaults(t *testing.T) {
	got := Spec{Base: "oci-layout:/x"}.WithDefaults()
	want := Spec{Base: "oci-layout:/x", Platform: "linux/arm64", Compression: "zstd", BlockSize: 131072, Cmdline: DefaultCmdline}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestSpecValidate(t *testing.T) {
	base := Spec{Base: "b"}.WithDefaults()
	for name, mod := range map[string]func(*Spec){
		"no base":         func(s *Spec) { s.Base = "" },
		"bad platform":    func(s *Spec) { s.Platform = "arm64" },
		"bad compressor":  func(s *Spec) { s.Compression = "lzo" },
		"bad block size":  func(s *Spec) { s.BlockSize = 3000 },
		"negative boot":   func(s *Spec) { s.BootSize = -1 },
		"bad template":    func(s *Spec) { s.Cmdline = "{{" },
		"shell, no debug": func(s *Spec) { s.Node.OnFailure = "shell" },
		"halt with delay": func(s *Spec) { s.Node.OnFailure = "halt:5" },
		"overlay on disk": func(s *Spec) { s.Node.Overlay = "disk" },
		"hat with space":  func(s *Spec) { s.Node.HAT = "/dev/tty S0" },
		"empty module":    func(s *Spec) { s.Modules = []string{""} },
	} {
		t.Run(name, func(t *testing.T) {
			s := base
			mod(&s)
			if err := s.Validate(); !errors.Is(err, ErrSpec) {
				t.Errorf("error %v, want ErrSpec", err)
			}
		})
	}
}

func TestSpecNodeSettings(t *testing.T) {
	for in, want := range map[NodeSettings]string{
		{}: "",
		{Overlay: "data", OnFailure: "reboot:30", HAT: "none"}: "racklet.hat=none racklet.overlay=data racklet.onfailure=reboot:30",
		{OnFailure: "shell", Debug: true, HAT: "/dev/ttyAMA1"}: "racklet.hat=/dev/ttyAMA1 racklet.onfailure=shell racklet.debug",
		{OnFailure: "halt"}: "racklet.onfailure=halt",
	} {
		p, err := in.params()
		if err != nil || p.String() != want {
			t.Errorf("%+v: %q, %v; want %q", in, p.String(), err, want)
		}
	}
}

func TestRenderCmdline(t *testing.T) {
	got, err := RenderCmdline(KernelVerityCmdline, CmdlineVars{RootHash: "ab", Salt: "cd", RootDevice: "PARTUUID=01020304-05",
		DataBlocks: 10, DataSectors: 80, VerityOffset: 40960, HashStartBlock: 11})
	if err != nil {
		t.Fatal(err)
	}
	want := `console=serial0,115200 console=tty1 rootwait ro root=/dev/dm-0 rootfstype=squashfs dm-mod.create="racklet-root,,,ro,0 80 verity 1 PARTUUID=01020304-05 PARTUUID=01020304-05 4096 4096 10 11 sha256 ab cd"`
	if got != want {
		t.Errorf("cmdline\n got %s\nwant %s", got, want)
	}
	if _, err := RenderCmdline("{{.Nope}}", CmdlineVars{}); err == nil {
		t.Error("unknown field accepted")
	}
}
