package httpboot

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplitPath(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    []string
		wantErr error
	}{
		"boot file":           {in: "/boot/dc-a6-32-00-00-01/kernel8.img", want: []string{"boot", "dc-a6-32-00-00-01", "kernel8.img"}},
		"root":                {in: "/", want: []string{""}},
		"escaped space":       {in: "/boot/a%20b", want: []string{"boot", "a b"}},
		"escaped colon":       {in: "/ipxe/52%3A54%3A00%3A99%3A00%3Aa1/boot.ipxe", want: []string{"ipxe", "52:54:00:99:00:a1", "boot.ipxe"}},
		"double slash kept":   {in: "/net_install//boot.img", want: []string{"net_install", "", "boot.img"}},
		"dotdot":              {in: "/boot/../etc/passwd", wantErr: ErrTraversal},
		"dot":                 {in: "/boot/./x", wantErr: ErrTraversal},
		"encoded dotdot":      {in: "/boot/%2e%2e/x", wantErr: ErrTraversal},
		"mixed case encoding": {in: "/boot/%2E./x", wantErr: ErrTraversal},
		"encoded slash":       {in: "/boot/a%2fb", wantErr: ErrTraversal},
		"encoded backslash":   {in: "/boot/..%5cetc", wantErr: ErrTraversal},
		"raw backslash":       {in: `/boot/..\etc`, wantErr: ErrTraversal},
		"nul":                 {in: "/boot/a%00b", wantErr: ErrBadPath},
		"newline":             {in: "/boot/a%0Ab", wantErr: ErrBadPath},
		"del":                 {in: "/boot/a%7fb", wantErr: ErrBadPath},
		"overlong utf-8 dot":  {in: "/boot/%c0%ae%c0%ae/etc", wantErr: ErrBadPath},
		"bad escape":          {in: "/boot/%zz", wantErr: ErrBadPath},
		"relative":            {in: "boot/x", wantErr: ErrBadPath},
		"too long":            {in: "/" + strings.Repeat("a", maxPathLen), wantErr: ErrBadPath},
		"dotdot suffix is ok": {in: "/boot/x..y/..z", want: []string{"boot", "x..y", "..z"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := splitPath(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("splitPath(%q) error = %v, want %v", tc.in, err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("splitPath(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestPiBootName(t *testing.T) {
	tests := map[string]struct {
		segs   []string
		want   string
		wantOK bool
	}{
		"default path img": {segs: []string{"net_install", "boot.img"}, want: "boot.img", wantOK: true},
		"sig":              {segs: []string{"x", "y", "boot.sig"}, want: "boot.sig", wantOK: true},
		"root img":         {segs: []string{"boot.img"}, want: "boot.img", wantOK: true},
		"other file":       {segs: []string{"net_install", "kernel8.img"}},
		"directory":        {segs: []string{"boot.img", ""}},
		"none":             {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := piBootName(tc.segs)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("piBootName(%q) = %q, %v; want %q, %v", tc.segs, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// FuzzSplitPath checks the invariant the boot routes rely on: whatever an
// accepted path decodes to, joining its segments gives a name that cannot
// climb out of a root and carries no NUL or control bytes.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{
		"/boot/dc-a6-32-00-00-01/kernel8.img", "/boot/../../etc/passwd", "/boot/%2e%2e%2fetc",
		"/net_install/boot.img", "/boot/a%00b", "/%", "/boot/%2E%2e/x", "//", "/boot/..%5c..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		segs, err := splitPath(in)
		if err != nil {
			if !errors.Is(err, ErrBadPath) && !errors.Is(err, ErrTraversal) {
				t.Fatalf("splitPath(%q): error %v wraps no sentinel", in, err)
			}
			return
		}
		name := strings.Join(segs, "/")
		for _, seg := range strings.Split(name, "/") {
			if seg == ".." || seg == "." {
				t.Fatalf("splitPath(%q) accepted a dot segment: %q", in, name)
			}
		}
		if strings.ContainsAny(name, "\\\x00") {
			t.Fatalf("splitPath(%q) accepted %q", in, name)
		}
		// Accepted paths round-trip: escaping each segment again gives a
		// path that splits to the same segments.
		var b strings.Builder
		for _, seg := range segs {
			b.WriteString("/" + url.PathEscape(seg))
		}
		again, err := splitPath(b.String())
		if err == nil && !cmp.Equal(again, segs) {
			t.Fatalf("splitPath(%q) = %q, but its re-escaped form %q gives %q", in, segs, b.String(), again)
		}
	})
}
