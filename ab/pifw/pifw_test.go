package pifw

import (
	"errors"
	"strings"
	"testing"
)

const ab23 = "[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"

func TestBoot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		autoboot string // "-" for no file
		reboot   string
		want     Boot
		wantNext int // the partition of the boot after, without reboot arguments
	}{
		{"normal boot", ab23, "", Boot{Partition: 2, Config: "config.txt"}, 2},
		{"tryboot once", ab23, "0 tryboot", Boot{Partition: 3, Tryboot: true, Config: "config.txt"}, 2},
		{"no autoboot.txt", "-", "", Boot{Partition: 1, Config: "config.txt"}, 1},
		{"reboot names a partition", ab23, "3", Boot{Partition: 3, Config: "config.txt"}, 2},
		{"tryboot without tryboot_a_b reads tryboot.txt", "boot_partition=2\n[tryboot]\nboot_partition=3\n", "0 tryboot",
			Boot{Partition: 3, Tryboot: true, Config: "tryboot.txt"}, 2},
		{"[none] and other filters are not applied", "[all]\nboot_partition=2\n[none]\nboot_partition=4\n[pi4]\nboot_partition=5\n", "",
			Boot{Partition: 2, Config: "config.txt"}, 2},
		{"later value wins, comments ignored", "boot_partition=2 # A\n[all]\nboot_partition=3\n", "", Boot{Partition: 3, Config: "config.txt"}, 3},
		{"padding with newlines", ab23 + strings.Repeat("\n", 512-len(ab23)), "0 tryboot", Boot{Partition: 3, Tryboot: true, Config: "config.txt"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var pi Pi
			if err := pi.Reboot(tc.reboot); err != nil {
				t.Fatal(err)
			}
			var file []byte
			if tc.autoboot != "-" {
				file = []byte(tc.autoboot)
			}
			got, err := pi.Boot(file)
			if err != nil || got != tc.want {
				t.Fatalf("Boot = %+v, %v; want %+v", got, err, tc.want)
			}
			if pi.Tryboot() {
				t.Error("the tryboot flag survived the boot it was for")
			}
			next, _ := pi.Boot(file)
			if next.Partition != tc.wantNext || next.Tryboot {
				t.Errorf("next boot %+v, want partition %d without tryboot", next, tc.wantNext)
			}
		})
	}
}

func TestPowerCutClearsTryboot(t *testing.T) {
	var pi Pi
	if err := pi.Reboot("0 tryboot"); err != nil {
		t.Fatal(err)
	}
	pi.PowerCut()
	if b, _ := pi.Boot([]byte(ab23)); b.Partition != 2 || b.Tryboot {
		t.Fatalf("after a power cut: %+v", b)
	}
}

func TestErrors(t *testing.T) {
	var pi Pi
	if _, err := pi.Boot([]byte(strings.Repeat("#", 513))); !errors.Is(err, ErrAutoboot) {
		t.Errorf("513-byte autoboot.txt: %v", err)
	}
	if _, err := pi.Boot([]byte("boot_partition=two\n")); !errors.Is(err, ErrAutoboot) {
		t.Errorf("bad boot_partition: %v", err)
	}
	for _, arg := range []string{"x", "0 trybot", "-1", "0 tryboot now"} {
		if err := pi.Reboot(arg); err == nil {
			t.Errorf("Reboot(%q) accepted", arg)
		}
	}
}

func FuzzBoot(f *testing.F) {
	f.Add([]byte(ab23), "0 tryboot")
	f.Add([]byte("[none]\nboot_partition=9\n"), "")
	f.Fuzz(func(t *testing.T, autoboot []byte, reboot string) {
		var pi Pi
		_ = pi.Reboot(reboot)
		b, err := pi.Boot(autoboot)
		if err == nil && b.Partition < 1 {
			t.Fatalf("chose partition %d", b.Partition)
		}
		if pi.Tryboot() {
			t.Fatal("one-shot flag survived")
		}
	})
}
