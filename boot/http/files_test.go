package httpboot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/netip"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/racklet/racklet-boot/boot/resolve"
)

func bootFixture(t *testing.T) (*Server, *dirOpener, *fakeStore, string, []byte) {
	t.Helper()
	kernel := pattern(1 << 20)
	files := newDirOpener(t, map[string][]byte{
		"dc-a6-32-00-00-01/kernel8.img": kernel,
		"boot.img":                      []byte("FAT image bytes"),
		"boot.sig":                      []byte("0123abcd\nts: 1700000000\n"),
		"52:54:00:99:00:a1/boot.ipxe":   []byte("#!ipxe\nkernel vmlinuz\nboot\n"),
		"config.txt":                    []byte("arm_64bit=1\n"),
	})
	st := &fakeStore{}
	s := &Server{Files: files, Events: st, Nodes: st}
	return s, files, st, startServer(t, s), kernel
}

func TestBootFiles(t *testing.T) {
	_, files, _, url, kernel := bootFixture(t)
	tests := map[string]struct {
		args     []string
		wantCode int
		wantBody []byte
		wantName string // resolver name, "" when the resolver must not be asked
	}{
		"full kernel": {
			args: []string{url + "/boot/dc-a6-32-00-00-01/kernel8.img"}, wantCode: 200,
			wantBody: kernel, wantName: "dc-a6-32-00-00-01/kernel8.img",
		},
		"single range": {
			args: []string{"-r", "1000-1099", url + "/boot/dc-a6-32-00-00-01/kernel8.img"}, wantCode: 206,
			wantBody: kernel[1000:1100], wantName: "dc-a6-32-00-00-01/kernel8.img",
		},
		"suffix range": {
			args: []string{"-r", "-10", url + "/boot/dc-a6-32-00-00-01/kernel8.img"}, wantCode: 206,
			wantBody: kernel[len(kernel)-10:], wantName: "dc-a6-32-00-00-01/kernel8.img",
		},
		"unprefixed name": {
			args: []string{url + "/boot/config.txt"}, wantCode: 200,
			wantBody: []byte("arm_64bit=1\n"), wantName: "config.txt",
		},
		"ipxe script": {
			args: []string{url + "/ipxe/52:54:00:99:00:a1/boot.ipxe"}, wantCode: 200,
			wantBody: []byte("#!ipxe\nkernel vmlinuz\nboot\n"), wantName: "52:54:00:99:00:a1/boot.ipxe",
		},
		"pi http boot img": {
			args: []string{url + "/net_install/boot.img"}, wantCode: 200,
			wantBody: []byte("FAT image bytes"), wantName: "boot.img",
		},
		"pi http boot sig, deeper path": {
			args: []string{url + "/a/b/boot.sig"}, wantCode: 200,
			wantBody: []byte("0123abcd\nts: 1700000000\n"), wantName: "boot.sig",
		},
		"pi http boot at root": {
			args: []string{url + "/boot.img"}, wantCode: 200,
			wantBody: []byte("FAT image bytes"), wantName: "boot.img",
		},
		"missing file": {
			args: []string{url + "/boot/nope.bin"}, wantCode: 404,
			wantBody: []byte("not found\n"), wantName: "nope.bin",
		},
		"directory": {
			args: []string{url + "/boot/dc-a6-32-00-00-01/"}, wantCode: 404, wantBody: []byte("not found\n"),
		},
		"boot root": {
			args: []string{url + "/boot/"}, wantCode: 404, wantBody: []byte("not found\n"),
		},
		"unknown route": {
			args: []string{url + "/nowhere/else"}, wantCode: 404, wantBody: []byte("not found\n"),
		},
		"post to boot": {
			args: []string{"-X", "POST", url + "/boot/config.txt"}, wantCode: 405,
			wantBody: []byte("method not allowed\n"),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := len(files.requests())
			got := curl(t, tc.args...)
			if got.code != tc.wantCode {
				t.Errorf("status = %d, want %d (headers %q)", got.code, tc.wantCode, got.headers)
			}
			if !bytes.Equal(got.body, tc.wantBody) {
				t.Errorf("body (%d bytes) differs from want (%d bytes); starts %q", len(got.body), len(tc.wantBody), head(got.body))
			}
			reqs := files.requests()[before:]
			var want []resolve.Request
			if tc.wantName != "" {
				want = []resolve.Request{{Client: netip.MustParseAddr("127.0.0.1"), Name: tc.wantName, Via: "http"}}
			}
			if diff := cmp.Diff(want, reqs, cmpopts.EquateEmpty(), addrEqual); diff != "" {
				t.Errorf("resolver requests (-want +got):\n%s", diff)
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 40)] }

func TestMultiRange(t *testing.T) {
	_, _, _, url, kernel := bootFixture(t)
	got := curl(t, "-r", "0-9,5000-5009", url+"/boot/dc-a6-32-00-00-01/kernel8.img")
	if got.code != 206 {
		t.Fatalf("status = %d, want 206", got.code)
	}
	mt, params, err := mime.ParseMediaType(got.header("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type = %q (%v), want multipart/byteranges", got.header("Content-Type"), err)
	}
	type part struct{ Range, Data string }
	var parts []part
	mr := multipart.NewReader(bytes.NewReader(got.body), params["boundary"])
	for i := 0; i < 10; i++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart part %d: %v", i, err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("multipart part %d: %v", i, err)
		}
		parts = append(parts, part{p.Header.Get("Content-Range"), string(data)})
	}
	want := []part{
		{"bytes 0-9/1048576", string(kernel[0:10])},
		{"bytes 5000-5009/1048576", string(kernel[5000:5010])},
	}
	if diff := cmp.Diff(want, parts); diff != "" {
		t.Errorf("multipart parts (-want +got):\n%s", diff)
	}
}

func TestConditionalAndHead(t *testing.T) {
	_, _, _, url, kernel := bootFixture(t)
	u := url + "/boot/dc-a6-32-00-00-01/kernel8.img"
	first := curl(t, u)
	etag := first.header("ETag")
	lastMod := first.header("Last-Modified")
	if etag == "" || lastMod == "" {
		t.Fatalf("ETag %q, Last-Modified %q: want both set", etag, lastMod)
	}

	tests := map[string]struct {
		args     []string
		wantCode int
		wantLen  string // Content-Length header; "" = not checked
		wantBody int
	}{
		"matching etag":        {args: []string{"-H", "If-None-Match: " + etag, u}, wantCode: 304},
		"other etag":           {args: []string{"-H", `If-None-Match: "other"`, u}, wantCode: 200, wantBody: len(kernel)},
		"not modified since":   {args: []string{"-H", "If-Modified-Since: " + lastMod, u}, wantCode: 304},
		"modified since epoch": {args: []string{"-H", "If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT", u}, wantCode: 200, wantBody: len(kernel)},
		"if-range stale":       {args: []string{"-r", "0-9", "-H", `If-Range: "stale"`, u}, wantCode: 200, wantBody: len(kernel)},
		"if-range current":     {args: []string{"-r", "0-9", "-H", "If-Range: " + etag, u}, wantCode: 206, wantBody: 10},
		"head as EDK2 sends":   {args: []string{"-I", "-A", "UefiHttpBoot/1.0", u}, wantCode: 200, wantLen: fmt.Sprint(len(kernel)), wantBody: -1},
		"head pi boot.img":     {args: []string{"-I", url + "/net_install/boot.img"}, wantCode: 200, wantLen: "15", wantBody: -1},
		"range out of bounds":  {args: []string{"-r", "2000000-2000010", u}, wantCode: 416, wantBody: -1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := curl(t, tc.args...)
			if got.code != tc.wantCode {
				t.Errorf("status = %d, want %d", got.code, tc.wantCode)
			}
			if tc.wantLen != "" && got.header("Content-Length") != tc.wantLen {
				t.Errorf("Content-Length = %q, want %q", got.header("Content-Length"), tc.wantLen)
			}
			if tc.wantBody >= 0 && len(got.body) != tc.wantBody {
				t.Errorf("body is %d bytes, want %d", len(got.body), tc.wantBody)
			}
		})
	}
}

// TestTraversalRefused sends traversal attempts exactly as written
// (curl --path-as-is) and checks that none reaches the resolver or a file.
func TestTraversalRefused(t *testing.T) {
	_, files, _, url, _ := bootFixture(t)
	paths := []string{
		"/boot/../../etc/passwd",
		"/boot/%2e%2e/%2e%2e/etc/passwd",
		"/boot/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
		"/boot/..%2f..%2fetc/passwd",
		"/boot/dc-a6-32-00-00-01/..%5c..%5cetc%5cpasswd",
		"/boot/%2E%2E/etc/passwd",
		"/boot/./config.txt",
		"/ipxe/..%2f..%2fetc/boot.ipxe",
		"/ipxe/../boot.ipxe",
		"/net_install/../../etc/boot.img",
		"/%2e%2e/boot.img",
		"/boot/config.txt%00.img",
		"/boot/a%0ab",
		"/boot/%zz",
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			got := curl(t, "--path-as-is", url+p)
			if got.code != 400 && got.code != 403 && got.code != 404 {
				t.Errorf("status = %d, want 400, 403 or 404", got.code)
			}
			if bytes.Contains(got.body, []byte("root:")) || bytes.Contains(got.body, []byte("arm_64bit")) {
				t.Errorf("body leaks a file: %q", head(got.body))
			}
		})
	}
	if reqs := files.requests(); len(reqs) != 0 {
		t.Errorf("resolver was asked %d times, want never: %v", len(reqs), reqs)
	}
}

func TestResolverErrors(t *testing.T) {
	_, files, _, url, _ := bootFixture(t)
	files.errs["refused.img"] = fmt.Errorf("client not allowed: %w", resolve.ErrRefused)
	files.errs["broken.img"] = errors.New("read image cache: disk on fire")
	files.errs["gone.img"] = fmt.Errorf("no such boot file: %w", os.ErrNotExist)
	tests := map[string]struct {
		name     string
		wantCode int
		wantBody string
	}{
		"refused":   {"refused.img", 403, "forbidden\n"},
		"internal":  {"broken.img", 500, "internal error resolving \"broken.img\"\n"},
		"not exist": {"gone.img", 404, "not found\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := curl(t, url+"/boot/"+tc.name)
			if got.code != tc.wantCode || string(got.body) != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", got.code, got.body, tc.wantCode, tc.wantBody)
			}
		})
	}
}
