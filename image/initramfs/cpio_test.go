package initramfs

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// sample fills an archive; the order of the calls must not matter.
func sample(t *testing.T, reverse bool) *Archive {
	t.Helper()
	adds := []func(a *Archive) error{
		func(a *Archive) error { return a.Bytes("init", 0o755, []byte("#!/bin/sh\necho hi\n")) },
		func(a *Archive) error { return a.Dir("tmp", 0o1777) },
		func(a *Archive) error { return a.CharDev("dev/console", 0o600, 5, 1) },
		func(a *Archive) error { return a.Symlink("bin/sh", "busybox") },
		func(a *Archive) error {
			return a.Bytes("lib/modules/6.1/kernel/fs/x.ko", 0o644, bytes.Repeat([]byte{7}, 4097))
		},
		func(a *Archive) error { return a.Bytes("etc/empty", 0o600, nil) },
	}
	a := NewArchive()
	for i := range adds {
		f := adds[i]
		if reverse {
			f = adds[len(adds)-1-i]
		}
		if err := f(a); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestArchiveIsReproducible(t *testing.T) {
	var x, y bytes.Buffer
	if err := sample(t, false).WriteTo(&x, 1700000000); err != nil {
		t.Fatal(err)
	}
	if err := sample(t, true).WriteTo(&y, 1700000000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x.Bytes(), y.Bytes()) {
		t.Fatal("two archives of the same members differ")
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(x.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, r := range recs {
		if r.Ino != uint64(i+1) || r.MTime != 1700000000 || r.UID != 0 || r.GID != 0 || r.Major != 0 || r.Minor != 0 {
			t.Errorf("record %d: %v", i, r.Info)
		}
		got = append(got, r.Name)
	}
	want := []string{"bin", "bin/sh", "dev", "dev/console", "etc", "etc/empty", "init", "lib", "lib/modules", "lib/modules/6.1",
		"lib/modules/6.1/kernel", "lib/modules/6.1/kernel/fs", "lib/modules/6.1/kernel/fs/x.ko", "tmp"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}
}

// TestArchiveListsWithCpio reads the archive with GNU cpio, a reader nobody here wrote.
func TestArchiveListsWithCpio(t *testing.T) {
	bin := testutil.NeedTool(t, "cpio")
	var b bytes.Buffer
	if err := sample(t, false).WriteTo(&b, 1700000000); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-t", "-v", "--quiet", "--numeric-uid-gid")
	cmd.Stdin, cmd.Env = &b, append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v\n%s", err, out)
	}
	for _, want := range []string{
		"-rwxr-xr-x   1 0        0              18 Nov 14  2023 init",
		"crw-------   1 0        0          5,   1 Nov 14  2023 dev/console",
		"drwxrwxrwt   2 0        0               0 Nov 14  2023 tmp",
		"lrwxrwxrwx   1 0        0               7 Nov 14  2023 bin/sh -> busybox",
		"-rw-r--r--   1 0        0            4097 Nov 14  2023 lib/modules/6.1/kernel/fs/x.ko",
	} {
		if !strings.Contains(string(out), want+"\n") {
			t.Errorf("cpio -tv lacks %q:\n%s", want, out)
		}
	}
}

func TestArchiveRefuses(t *testing.T) {
	tests := map[string]func(a *Archive) error{
		"dot-dot":           func(a *Archive) error { return a.Bytes("../etc/passwd", 0o644, nil) },
		"inner dot-dot":     func(a *Archive) error { return a.Bytes("lib/../../x", 0o644, nil) },
		"empty":             func(a *Archive) error { return a.Dir("", 0o755) },
		"unclean":           func(a *Archive) error { return a.Bytes("lib//x", 0o644, nil) },
		"twice":             func(a *Archive) error { a.Bytes("x", 0o644, nil); return a.Bytes("x", 0o644, nil) },
		"file as directory": func(a *Archive) error { a.Bytes("x", 0o644, nil); return a.Bytes("x/y", 0o644, nil) },
		"over 4 GiB": func(a *Archive) error {
			return a.File("big", 0o644, 1<<32, func() (io.ReaderAt, error) { return nil, nil })
		},
	}
	for name, add := range tests {
		t.Run(name, func(t *testing.T) {
			if err := add(NewArchive()); err == nil {
				t.Error("accepted")
			}
		})
	}
}
