package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// flaky serves body with http.ServeContent, but cuts the first cuts
// answers after half their bytes (a broken link), and records each
// request's Range header.
type flaky struct {
	mu     sync.Mutex
	body   string
	etag   string
	cuts   int
	ranges []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.ranges = append(f.ranges, r.Header.Get("Range"))
	cut := f.cuts > 0
	f.cuts--
	body, etag := f.body, f.etag
	f.mu.Unlock()
	w.Header().Set("ETag", etag)
	if !cut {
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
		return
	}
	start := 0
	if rg := r.Header.Get("Range"); rg != "" {
		start, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		w.Header().Set("Content-Range", "bytes "+strconv.Itoa(start)+"-"+strconv.Itoa(len(body)-1)+"/"+strconv.Itoa(len(body)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	rest := body[start:]
	w.Write([]byte(rest[:len(rest)/2]))
	// Hijack and close: the client sees an unexpected EOF.
	w.(http.Flusher).Flush()
	conn, _, _ := w.(http.Hijacker).Hijack()
	conn.Close()
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

func TestFetch(t *testing.T) {
	body := strings.Repeat("0123456789abcdef", 40000)
	for _, tc := range []struct {
		name   string
		cuts   int
		digest string
		ranges []string
		err    error
		errMsg string
	}{
		{name: "whole", cuts: 0, digest: digest(body), ranges: []string{""}},
		{name: "resumed twice", cuts: 2, digest: digest(body),
			ranges: []string{"", "bytes=320000-", "bytes=480000-"}},
		{name: "gives up", cuts: 10, digest: digest(body), errMsg: "gave up after 3 attempts"},
		{name: "tampered", cuts: 0, digest: digest(body + "x"), err: ErrDigest, ranges: []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{body: body, etag: `"v1"`, cuts: tc.cuts}
			srv := httptest.NewServer(f)
			defer srv.Close()
			dst := filepath.Join(t.TempDir(), "root.squashfs")
			n, err := Fetch(t.Context(), srv.Client(), srv.URL+"/root.squashfs", dst, tc.digest, FetchOptions{Attempts: 3, Backoff: time.Millisecond})
			switch {
			case tc.err != nil || tc.errMsg != "":
				if err == nil || tc.err != nil && !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.errMsg) {
					t.Fatalf("err = %v, want %v %q", err, tc.err, tc.errMsg)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if got, _ := os.ReadFile(dst); n != int64(len(body)) || string(got) != body {
					t.Errorf("fetched %d bytes, file of %d, want the body's %d", n, len(got), len(body))
				}
			}
			if tc.ranges != nil {
				if d := cmp.Diff(tc.ranges, f.ranges); d != "" {
					t.Errorf("Range headers (-want +got):\n%s", d)
				}
			}
		})
	}
	if _, err := Fetch(t.Context(), http.DefaultClient, "http://127.0.0.1:1/x", filepath.Join(t.TempDir(), "x"), "md5:00", FetchOptions{}); err == nil {
		t.Error("a digest that is not sha256 was accepted")
	}
}

// TestFetchFileChanged: the file changed between the break and the resume:
// If-Range makes the server send it whole and the fetch starts over.
func TestFetchFileChanged(t *testing.T) {
	old, next := strings.Repeat("a", 100000), strings.Repeat("b", 120000)
	f := &flaky{body: old, etag: `"v1"`, cuts: 1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.ServeHTTP(w, r)
		f.mu.Lock()
		f.body, f.etag = next, `"v2"`
		f.mu.Unlock()
	}))
	defer srv.Close()
	dst := filepath.Join(t.TempDir(), "f")
	if _, err := Fetch(t.Context(), srv.Client(), srv.URL, dst, digest(next), FetchOptions{Backoff: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != next {
		t.Errorf("file of %d bytes, want the new %d", len(got), len(next))
	}
}

func offer(yiaddr string, vc, file string) *dhcpv4.DHCPv4 {
	m, _ := dhcpv4.New()
	m.YourIPAddr = net.ParseIP(yiaddr)
	if vc != "" {
		m.UpdateOption(dhcpv4.OptClassIdentifier(vc))
	}
	if file != "" {
		m.UpdateOption(dhcpv4.OptBootFileName(file))
	}
	return m
}

func TestPickOffers(t *testing.T) {
	router := offer("10.0.0.50", "", "")
	proxy := offer("0.0.0.0", "racklet-agent", "http://10.0.0.2:8080/")
	full := offer("10.0.0.101", "racklet-agent", "http://10.0.0.2/")
	other := offer("10.0.0.77", "", "pxelinux.0")
	for _, tc := range []struct {
		name   string
		offers []*dhcpv4.DHCPv4
		lease  *dhcpv4.DHCPv4
		server string
		err    bool
	}{
		{"proxy mode: router's address, racklet-boot's URL", []*dhcpv4.DHCPv4{router, proxy}, router, "http://10.0.0.2:8080", false},
		{"proxy offer first", []*dhcpv4.DHCPv4{proxy, router}, router, "http://10.0.0.2:8080", false},
		{"full mode: racklet-boot's offer wins over another server's", []*dhcpv4.DHCPv4{other, full}, full, "http://10.0.0.2", false},
		{"no racklet-boot: address only", []*dhcpv4.DHCPv4{router}, router, "", false},
		{"option 67 of another server is no URL", []*dhcpv4.DHCPv4{other}, other, "", false},
		{"no address at all", []*dhcpv4.DHCPv4{proxy}, nil, "http://10.0.0.2:8080", true},
		{"racklet-agent answer with a non-URL", []*dhcpv4.DHCPv4{router, offer("0.0.0.0", "racklet-agent", "file.efi")}, router, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lease, server, err := pickOffers(tc.offers)
			if (err != nil) != tc.err || lease != tc.lease || server != tc.server {
				t.Errorf("pickOffers = %v, %q, %v; want %v, %q, error %v", lease != nil, server, err, tc.lease != nil, tc.server, tc.err)
			}
		})
	}
}

func TestImageCmdline(t *testing.T) {
	img := "console=ttyS0 racklet.roothash=ab racklet.node=pc-01\n"
	for _, tc := range []struct {
		name, kernel, err string
	}{
		{name: "as given", kernel: "console=ttyS0 racklet.roothash=ab racklet.node=pc-01"},
		{name: "iPXE's initrd= before", kernel: "initrd=initrd.img console=ttyS0 racklet.roothash=ab racklet.node=pc-01"},
		{name: "Pi firmware settings before", kernel: "coherent_pool=1M 8250.nr_uarts=1 bcm2708_fb.fbwidth=0  console=ttyS0 racklet.roothash=ab racklet.node=pc-01"},
		{name: "a word appended", kernel: "console=ttyS0 racklet.roothash=ab racklet.node=pc-01 init=/bin/sh", err: "does not end with"},
		{name: "a word changed", kernel: "console=ttyS1 racklet.roothash=ab racklet.node=pc-01", err: "does not end with"},
		{name: "racklet word before", kernel: "racklet.server=http://evil console=ttyS0 racklet.roothash=ab racklet.node=pc-01", err: "racklet.* words come only from the signed image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := imageCmdline(tc.kernel, img)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != strings.TrimSpace(img) {
				t.Errorf("imageCmdline = %q, %v", got, err)
			}
		})
	}
	if _, err := imageCmdline("a b", "  \n"); err == nil {
		t.Error("an empty cmdline.txt was accepted")
	}
}

// TestFetchClientLowWaterMark: the root's client sets SO_RCVLOWAT, so the
// socket wakes its reader only once fetchLowat bytes are queued or the server
// has closed. Every size around the mark, sent in two parts with a pause (the
// reader waits in between), must arrive whole and promptly: the tail below
// the mark is released by the server closing the connection, not by a timeout.
func TestFetchClientLowWaterMark(t *testing.T) {
	for _, size := range []int{0, 1, 4095, fetchLowat - 1, fetchLowat, fetchLowat + 1, 3*fetchLowat + 17} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			body := strings.Repeat("r", size)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(size))
				half := size / 2
				w.Write([]byte(body[:half]))
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
				w.Write([]byte(body[half:]))
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			dst := filepath.Join(t.TempDir(), "root.squashfs")
			n, err := Fetch(ctx, newFetchClient(), srv.URL+"/root.squashfs", dst, digest(body), FetchOptions{Attempts: 1})
			if err != nil || n != int64(size) {
				t.Fatalf("Fetch = %d bytes, %v; want %d bytes", n, err, size)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Fetch took %s: the tail below the low-water mark waited", took)
			}
		})
	}
}
