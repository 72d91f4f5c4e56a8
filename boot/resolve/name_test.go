package resolve

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCleanName(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    string
		refused bool
	}{
		"plain":                   {in: "start4.elf", want: "start4.elf"},
		"leading slash":           {in: "/start4.elf", want: "start4.elf"},
		"prefixed":                {in: "5b154510/start4.elf", want: "5b154510/start4.elf"},
		"slash prefixed":          {in: "/dc-a6-32-01-36-c2/config.txt", want: "dc-a6-32-01-36-c2/config.txt"},
		"double slash collapses":  {in: "overlays//vc4.dtbo", want: "overlays/vc4.dtbo"},
		"trailing slash":          {in: "overlays/", want: "overlays"},
		"dot elements dropped":    {in: "./overlays/./vc4.dtbo", want: "overlays/vc4.dtbo"},
		"dots inside a name":      {in: "a..b/..c/d..", want: "a..b/..c/d.."},
		"unicode":                 {in: "fïrmware/ü.bin", want: "fïrmware/ü.bin"},
		"max length":              {in: strings.Repeat("a", MaxNameLen), want: strings.Repeat("a", MaxNameLen)},
		"empty":                   {in: "", refused: true},
		"only slash":              {in: "/", refused: true},
		"only dot":                {in: ".", refused: true},
		"dotdot":                  {in: "..", refused: true},
		"dotdot prefix":           {in: "../etc/passwd", refused: true},
		"dotdot after slash":      {in: "/../etc/passwd", refused: true},
		"dotdot in the middle":    {in: "a/../../b", refused: true},
		"dotdot that stays in":    {in: "a/b/../c", refused: true},
		"dotdot at the end":       {in: "a/..", refused: true},
		"backslash dotdot":        {in: `\..\etc\passwd`, refused: true},
		"backslash":               {in: `overlays\vc4.dtbo`, refused: true},
		"absolute after strip":    {in: "//etc/passwd", refused: true},
		"NUL":                     {in: "config.txt\x00.png", refused: true},
		"newline":                 {in: "config.txt\n", refused: true},
		"DEL":                     {in: "config\x7f", refused: true},
		"C1 control":              {in: "config\u0085", refused: true},
		"invalid UTF-8":           {in: "config\xff", refused: true},
		"too long":                {in: strings.Repeat("a", MaxNameLen+1), refused: true},
		"percent stays (HTTP's)":  {in: "%2e%2e/x", want: "%2e%2e/x"},
		"dotdot with slashes run": {in: "a//..//b", refused: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := CleanName(tc.in)
			if tc.refused {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("CleanName(%q) = %q, %v; want an error wrapping ErrRefused", tc.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CleanName(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("CleanName(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"start4.elf", "/5b154510/config.txt", "a//b/./c/", "../x", `\..\`, "a\x00b", "//x", ".", "%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := CleanName(in)
		if err != nil {
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("CleanName(%q): error %v does not wrap ErrRefused", in, err)
			}
			return
		}
		if got == "" || strings.HasPrefix(got, "/") || len(got) > MaxNameLen {
			t.Fatalf("CleanName(%q) = %q: empty, absolute or too long", in, got)
		}
		for _, e := range strings.Split(got, "/") {
			if e == "" || e == "." || e == ".." {
				t.Fatalf("CleanName(%q) = %q: element %q", in, got, e)
			}
		}
		if strings.ContainsAny(got, "\\\x00") {
			t.Fatalf("CleanName(%q) = %q: backslash or NUL", in, got)
		}
		again, err := CleanName(got)
		if err != nil || again != got {
			t.Fatalf("CleanName not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}
