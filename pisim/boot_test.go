package pisim

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pi4Tree is a minimal Pi 4 boot directory under prefix.
func pi4Tree(prefix string) map[string][]byte {
	files := map[string][]byte{
		"config.txt":                []byte("arm_64bit=1\ninitramfs initrd.img followkernel\ndtoverlay=vc4-kms-v3d\ninclude extra.txt\n"),
		"extra.txt":                 []byte("# nothing\n"),
		"start4.elf":                randBytes(10, 40000),
		"fixup4.dat":                randBytes(11, 5000),
		"initrd.img":                randBytes(12, 90000),
		"bcm2711-rpi-4-b.dtb":       randBytes(13, 3000),
		"overlays/vc4-kms-v3d.dtbo": randBytes(14, 1000),
		"cmdline.txt":               []byte("console=serial0,115200 root=/dev/ram0\n"),
		"kernel8.img":               randBytes(15, 120000),
	}
	return withPrefix(prefix, files)
}

// pi5Tree is a minimal Pi 5 boot directory under prefix.
func pi5Tree(prefix string) map[string][]byte {
	files := map[string][]byte{
		"config.txt":          []byte("initramfs initramfs_2712 followkernel\n"),
		"cmdline.txt":         []byte("console=ttyAMA10\n"),
		"bcm2712-rpi-5-b.dtb": randBytes(20, 3000),
		"kernel_2712.img":     randBytes(21, 100000),
		"initramfs_2712":      randBytes(22, 50000),
	}
	return withPrefix(prefix, files)
}

func withPrefix(prefix string, files map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range files {
		out[prefix+k] = v
	}
	return out
}

// pi4Dropped is the Pi 4 order of reads when the serial prefix is dropped.
var pi4Dropped = []string{
	"tftp-probe 5b154510/start4.elf not found", "tftp-probe 5b154510/start.elf not found",
	"tftp-read config.txt ok", "tftp-read extra.txt ok",
	"tftp-read vl805.sig not found", "tftp-read pieeprom.sig not found",
	"tftp-read recover4.elf not found", "tftp-read recovery.elf not found",
	"tftp-read start4.elf ok", "tftp-read fixup4.dat ok", "tftp-read recovery.elf not found",
	"tftp-read config.txt ok", "tftp-read extra.txt ok",
	"tftp-read dt-blob.bin not found", "tftp-read bootcfg.txt not found",
	"tftp-read initrd.img ok", "tftp-read bcm2711-rpi-4-b.dtb ok",
	"tftp-read overlays/overlay_map.dtb not found", "tftp-read overlays/vc4-kms-v3d.dtbo ok",
	"tftp-read config.txt ok", "tftp-read cmdline.txt ok",
	"tftp-probe kernel8.img early terminate", "tftp-read kernel8.img ok",
	"tftp-read armstub8-gic.bin not found",
}

func TestBoot(t *testing.T) {
	tests := map[string]struct {
		pi        func(*Pi)
		files     map[string][]byte
		server    func(*fakeServer)
		wantSteps []string // TFTP steps as "op file result"; nil skips the check
		want      Result   // compared on the summary fields below
	}{
		"pi4 prefix dropped": {
			files: pi4Tree(""), wantSteps: pi4Dropped,
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, PrefixDropped: true, Prefix: "5b154510/",
				TFTPSource: "siaddr", Echoed97: true, Files: 12, NotFound: 11},
		},
		"pi4 prefix kept": {
			files: pi4Tree("5b154510/"),
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, Prefix: "5b154510/",
				TFTPSource: "siaddr", Echoed97: true, Files: 12, NotFound: 9},
		},
		"pi4 start.elf keeps the prefix, start4.elf is still needed": {
			files: map[string][]byte{"5b154510/start.elf": {1}, "5b154510/config.txt": {}, "start4.elf": {1}},
			wantSteps: []string{"tftp-probe 5b154510/start4.elf not found", "tftp-probe 5b154510/start.elf early terminate",
				"tftp-read 5b154510/config.txt ok", "tftp-read 5b154510/vl805.sig not found",
				"tftp-read 5b154510/pieeprom.sig not found", "tftp-read 5b154510/recover4.elf not found",
				"tftp-read 5b154510/recovery.elf not found", "tftp-read 5b154510/start4.elf not found"},
			want: Result{Verdict: "failed: tftp", Prefix: "5b154510/", TFTPSource: "siaddr",
				Echoed97: true, Files: 1, NotFound: 6},
		},
		"pi4 mac prefix": {
			pi: func(p *Pi) { p.Prefix = PrefixMAC }, files: pi4Tree("dc-a6-32-2e-f8-ed/"),
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, Prefix: "dc-a6-32-2e-f8-ed/",
				TFTPSource: "siaddr", Echoed97: true, Files: 12, NotFound: 9},
		},
		"pi4 string prefix, old firmware": {
			pi:    func(p *Pi) { p.Prefix, p.PrefixStr, p.Blksize, p.FourCC = PrefixString, "rack/a/", 1024, FourCCPi4New },
			files: pi4Tree("rack/a/"),
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, Prefix: "rack/a/",
				TFTPSource: "siaddr", Echoed97: true, Files: 12, NotFound: 9},
		},
		"pi4 proxy mode": {
			files: pi4Tree(""), server: func(s *fakeServer) { s.proxy = true },
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, PrefixDropped: true, Prefix: "5b154510/",
				TFTPSource: "siaddr", Proxy: true, Echoed97: true, Files: 12, NotFound: 11},
		},
		"pi4 no option 97 echo": {
			files: pi4Tree(""), server: func(s *fakeServer) { s.echo97 = false },
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, PrefixDropped: true, Prefix: "5b154510/",
				TFTPSource: "siaddr", Files: 12, NotFound: 11},
		},
		"pi4 missing kernel fails": {
			files: func() map[string][]byte { f := pi4Tree(""); delete(f, "kernel8.img"); return f }(),
			want: Result{Verdict: "failed: tftp", PrefixDropped: true, Prefix: "5b154510/", TFTPSource: "siaddr",
				Echoed97: true, Files: 11, NotFound: 11},
		},
		"pi4 slow initramfs is a failed boot": {
			pi: func(p *Pi) { p.FileTimeout = 400 * time.Millisecond }, files: pi4Tree(""),
			server: func(s *fakeServer) { s.stall = "initrd.img" },
			want: Result{Verdict: "failed: tftp", PrefixDropped: true, Prefix: "5b154510/", TFTPSource: "siaddr",
				Echoed97: true, Files: 6, NotFound: 9},
		},
		"pi5": {
			pi: func(p *Pi) { p.Model, p.FourCC = 5, "" }, files: pi5Tree("5b154510/"),
			wantSteps: []string{"tftp-read 5b154510/config.txt ok", "tftp-read 5b154510/pieeprom.sig not found",
				"tftp-read 5b154510/cmdline.txt ok", "tftp-read 5b154510/bcm2712-rpi-5-b.dtb ok",
				"tftp-probe 5b154510/kernel_2712.img early terminate",
				"tftp-read 5b154510/kernel_2712.img ok", "tftp-read 5b154510/initramfs_2712 ok"},
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, Prefix: "5b154510/", TFTPSource: "siaddr",
				Echoed97: true, Files: 5, NotFound: 1},
		},
		"pi5 falls back to kernel8.img": {
			pi: func(p *Pi) { p.Model = 5 },
			files: func() map[string][]byte {
				f := pi5Tree("5b154510/")
				f["5b154510/kernel8.img"] = f["5b154510/kernel_2712.img"]
				delete(f, "5b154510/kernel_2712.img")
				return f
			}(),
			want: Result{KernelLoaded: true, Verdict: VerdictKernel, Prefix: "5b154510/", TFTPSource: "siaddr",
				Echoed97: true, Files: 5, NotFound: 2},
		},
		"pi5 signed boot.img": {
			pi: func(p *Pi) { p.Model, p.SignedBoot, p.PubKey = 5, true, &testKey(t, 0).PublicKey },
			files: map[string][]byte{"5b154510/config.txt": []byte("boot_ramdisk=1\n"),
				"5b154510/boot.sig": bootSigFor(t, randBytes(30, 70000), testKey(t, 0)), "5b154510/boot.img": randBytes(30, 70000)},
			wantSteps: []string{"tftp-read 5b154510/config.txt ok", "tftp-read 5b154510/pieeprom.sig not found",
				"tftp-read 5b154510/boot.sig ok", "tftp-read 5b154510/boot.img ok", "verify 5b154510/boot.img ok"},
			want: Result{KernelLoaded: true, Verdict: VerdictBootImg, Prefix: "5b154510/", TFTPSource: "siaddr",
				Echoed97: true, Files: 3, NotFound: 1},
		},
		"pi5 signed boot.img, other key in the eeprom": {
			pi: func(p *Pi) { p.Model, p.SignedBoot, p.PubKey = 5, true, &testKey(t, 1).PublicKey },
			files: map[string][]byte{"5b154510/config.txt": []byte("boot_ramdisk=1\n"),
				"5b154510/boot.sig": bootSigFor(t, randBytes(30, 70000), testKey(t, 0)), "5b154510/boot.img": randBytes(30, 70000)},
			wantSteps: []string{"tftp-read 5b154510/config.txt ok", "tftp-read 5b154510/pieeprom.sig not found",
				"tftp-read 5b154510/boot.sig ok", "tftp-read 5b154510/boot.img ok", "verify 5b154510/boot.img refused"},
			want: Result{Verdict: "failed: tftp", Prefix: "5b154510/", TFTPSource: "siaddr",
				Echoed97: true, Files: 3, NotFound: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newFakeServer(t, tc.files)
			if tc.server != nil {
				tc.server(s)
			}
			s.start()
			p := designPi()
			p.DHCPRetry, p.TFTPRetry = 500*time.Millisecond, 300*time.Millisecond
			if tc.pi != nil {
				tc.pi(p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := p.BootOn(ctx, s.transport())
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res)
			got := Result{KernelLoaded: res.KernelLoaded, Verdict: res.Verdict, PrefixDropped: res.PrefixDropped,
				Prefix: res.Prefix, TFTPSource: res.TFTPSource, Proxy: res.Proxy, Echoed97: res.Echoed97,
				Files: res.Files, NotFound: res.NotFound}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if res.Address != "10.0.0.50" || res.TFTPServer != "127.0.0.1" {
				t.Errorf("address %s, tftp server %s", res.Address, res.TFTPServer)
			}
			wantDHCP := "10.0.0.1"
			if !tc.want.Proxy {
				wantDHCP = "127.0.0.1"
			}
			if res.DHCPServer != wantDHCP {
				t.Errorf("dhcp server %s, want %s", res.DHCPServer, wantDHCP)
			}
			if tc.wantSteps != nil {
				if diff := cmp.Diff(tc.wantSteps, tftpSteps(res)); diff != "" {
					t.Errorf("tftp steps (-want +got):\n%s", diff)
				}
			}
			for _, e := range s.eventList() {
				if strings.HasPrefix(e, "REQUEST") && strings.Contains(e, "has60=true") {
					t.Errorf("REQUEST carried option 60: %s", e)
				}
			}
			if res.KernelLoaded {
				if _, err := json.Marshal(res); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func tftpSteps(r *Result) []string {
	var out []string
	for _, s := range r.Steps {
		if strings.HasPrefix(s.Op, "tftp-") || s.Op == "verify" {
			out = append(out, s.Op+" "+s.File+" "+s.Result)
		}
	}
	return out
}

func TestBootRejectsWrongMenu(t *testing.T) {
	s := newFakeServer(t, pi4Tree(""))
	s.menu = "Some Other Boot"
	s.start()
	p := designPi()
	p.DHCPRetry, p.DHCPTimeout = 300*time.Millisecond, time.Second
	res, err := p.BootOn(context.Background(), s.transport())
	if err != nil {
		t.Fatal(err)
	}
	if res.KernelLoaded || res.Verdict != "failed: dhcp" || !strings.Contains(res.Error, "no usable offer") {
		t.Fatalf("verdict %q error %q", res.Verdict, res.Error)
	}
	var discovers, rejected int
	for _, st := range res.Steps {
		switch {
		case st.Op == "dhcp-discover":
			discovers++
		case st.Op == "dhcp-offer" && strings.Contains(st.Result, "does not contain"):
			rejected++
		}
	}
	if discovers < 3 || rejected < 1 {
		t.Errorf("%d discovers, %d rejected offers; want >= 3 and >= 1\n%s", discovers, rejected, res)
	}
	if res.DHCPTime < time.Second || res.DHCPTime > 3*time.Second {
		t.Errorf("dhcp gave up after %s, want about 1s", res.DHCPTime)
	}
}
