package pisim

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/internal/testutil"
)

var (
	testKeysMu sync.Mutex
	testKeys   = map[int]*rsa.PrivateKey{}
)

// testKey returns RSA-2048 key number i, made once per test binary.
func testKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	testKeysMu.Lock()
	defer testKeysMu.Unlock()
	if k, ok := testKeys[i]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	testKeys[i] = k
	return k
}

// bootSigFor writes a boot.sig for img the way rpi-eeprom-digest lays it
// out, signed by key.
func bootSigFor(t testing.TB, img []byte, key *rsa.PrivateKey) []byte {
	t.Helper()
	sum := sha256.Sum256(img)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return []byte(fmt.Sprintf("%x\nts: 1700000000\nrsa2048: %x\n", sum, sig))
}

// httpFiles is a plain HTTP server on loopback serving fixed paths and
// recording each request as "METHOD PATH".
type httpFiles struct {
	srv   *httptest.Server
	files map[string][]byte
	mu    sync.Mutex
	reqs  []string
	agent string
	flaky int
}

func newHTTPFiles(t *testing.T, files map[string][]byte) *httpFiles {
	h := &httpFiles{files: files}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.reqs = append(h.reqs, r.Method+" "+r.URL.Path)
		h.agent = r.UserAgent()
		h.mu.Unlock()
		if r.URL.Path == "/net_install/huge/boot.img" {
			w.Header().Set("Content-Length", strconv.Itoa(MaxBootImg+1))
			w.WriteHeader(http.StatusOK)
			return
		}
		if r.URL.Path == "/net_install/flaky/boot.sig" { // busy twice, then fine
			h.mu.Lock()
			h.flaky++
			busy := h.flaky <= 2
			h.mu.Unlock()
			if busy {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
		}
		if r.URL.Path == "/net_install/slow/boot.img" { // a server that stalls mid-file
			w.Header().Set("Content-Length", "1000000")
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		b, ok := h.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *httpFiles) hostPort() (string, int) {
	a := h.srv.Listener.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

func (h *httpFiles) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reqs...)
}

func TestHTTPBoot(t *testing.T) {
	img := randBytes(40, 300000)
	good := bootSigFor(t, img, testKey(t, 0))
	other := bootSigFor(t, img, testKey(t, 1))
	tampered := append([]byte{}, img...)
	tampered[1000] ^= 0xff
	tests := map[string]struct {
		pi        func(*Pi)
		files     map[string][]byte
		tftp      map[string][]byte
		want      Result // compared on KernelLoaded, Verdict, Files, NotFound
		wantErr   error
		wantSteps []string // "op file result" of http-get, verify and tftp steps
		wantReqs  []string
	}{
		"signed image": {
			files: map[string][]byte{"/net_install/boot.sig": good, "/net_install/boot.img": img},
			want:  Result{KernelLoaded: true, Verdict: VerdictHTTPBootImg, Files: 2},
			wantSteps: []string{"http-get /net_install/boot.sig ok", "http-get /net_install/boot.img ok",
				"verify boot.img ok"},
			wantReqs: []string{"GET /net_install/boot.sig", "GET /net_install/boot.img"},
		},
		"HTTP_PATH": {
			pi:       func(p *Pi) { p.HTTPPath = "rack7/os" },
			files:    map[string][]byte{"/rack7/os/boot.sig": good, "/rack7/os/boot.img": img},
			want:     Result{KernelLoaded: true, Verdict: VerdictHTTPBootImg, Files: 2},
			wantReqs: []string{"GET /rack7/os/boot.sig", "GET /rack7/os/boot.img"},
		},
		"signed by another key": {
			files:   map[string][]byte{"/net_install/boot.sig": other, "/net_install/boot.img": img},
			want:    Result{Verdict: "failed: http", Files: 2},
			wantErr: ErrBootSig,
			wantSteps: []string{"http-get /net_install/boot.sig ok", "http-get /net_install/boot.img ok",
				"verify boot.img refused"},
		},
		"tampered image": {
			files:   map[string][]byte{"/net_install/boot.sig": good, "/net_install/boot.img": tampered},
			want:    Result{Verdict: "failed: http", Files: 2},
			wantErr: ErrBootSig,
		},
		"no key in the eeprom": {
			pi:      func(p *Pi) { p.PubKey = nil },
			files:   map[string][]byte{"/net_install/boot.sig": good, "/net_install/boot.img": img},
			want:    Result{Verdict: "failed: http", Files: 2},
			wantErr: ErrBootSig,
		},
		"unsigned boot.sig": {
			files:   map[string][]byte{"/net_install/boot.sig": []byte(strings.SplitN(string(good), "\n", 2)[0] + "\nts: 1\n"), "/net_install/boot.img": img},
			want:    Result{Verdict: "failed: http", Files: 2},
			wantErr: ErrBootSig,
		},
		"garbage boot.sig": {
			files:     map[string][]byte{"/net_install/boot.sig": []byte("<html>not found</html>"), "/net_install/boot.img": img},
			want:      Result{Verdict: "failed: http", Files: 1},
			wantErr:   ErrBootSig,
			wantSteps: []string{"http-get /net_install/boot.sig ok", "verify boot.sig refused"},
			wantReqs:  []string{"GET /net_install/boot.sig"},
		},
		"no boot.sig": {
			files:     map[string][]byte{"/net_install/boot.img": img},
			want:      Result{Verdict: "failed: http", NotFound: 1},
			wantErr:   ErrHTTPNotFound,
			wantSteps: []string{"http-get /net_install/boot.sig not found"},
			wantReqs:  []string{"GET /net_install/boot.sig"},
		},
		"boot.img over 96 MiB": {
			pi:      func(p *Pi) { p.HTTPPath = "net_install/huge" },
			files:   map[string][]byte{"/net_install/huge/boot.sig": good},
			want:    Result{Verdict: "failed: http", Files: 1},
			wantErr: ErrBootImgTooLarge,
		},
		"stalled boot.img": {
			pi:        func(p *Pi) { p.HTTPPath, p.FileTimeout = "net_install/slow", time.Second },
			files:     map[string][]byte{"/net_install/slow/boot.sig": good},
			want:      Result{Verdict: "failed: http", Files: 1},
			wantErr:   ErrHTTPTimeout,
			wantSteps: []string{"http-get /net_install/slow/boot.sig ok", "http-get /net_install/slow/boot.img timeout"},
		},
		"busy twice, third pass boots (BOOT_ORDER=0xf7, 2 restarts)": {
			pi:    func(p *Pi) { p.HTTPPath, p.Restarts = "net_install/flaky", 2 },
			files: map[string][]byte{"/net_install/flaky/boot.sig": good, "/net_install/flaky/boot.img": img},
			want:  Result{KernelLoaded: true, Verdict: VerdictHTTPBootImg, Files: 2},
			wantSteps: []string{"http-get /net_install/flaky/boot.sig error: http: 503 Service Unavailable",
				"http-get /net_install/flaky/boot.sig error: http: 503 Service Unavailable",
				"http-get /net_install/flaky/boot.sig ok", "http-get /net_install/flaky/boot.img ok", "verify boot.img ok"},
		},
		"busy, no restarts left (BOOT_ORDER=0xf7, 1 restart)": {
			pi:      func(p *Pi) { p.HTTPPath, p.Restarts = "net_install/flaky", 1 },
			files:   map[string][]byte{"/net_install/flaky/boot.sig": good, "/net_install/flaky/boot.img": img},
			want:    Result{Verdict: "failed: http"},
			wantErr: errors.New("503"),
		},
		"http fails, then tftp (BOOT_ORDER=0xf27)": {
			pi:    func(p *Pi) { p.BootOrder = 0xf27 },
			files: map[string][]byte{},
			tftp:  pi4Tree(""),
			want:  Result{KernelLoaded: true, Verdict: VerdictKernel, Files: 12, NotFound: 12},
		},
		"sd, then tftp (BOOT_ORDER=0x21: sd is not simulated)": {
			pi:       func(p *Pi) { p.BootOrder = 0x21 },
			files:    map[string][]byte{"/net_install/boot.sig": good, "/net_install/boot.img": img},
			tftp:     pi4Tree(""),
			want:     Result{KernelLoaded: true, Verdict: VerdictKernel, Files: 12, NotFound: 11},
			wantReqs: []string{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hf := newHTTPFiles(t, tc.files)
			s := newFakeServer(t, tc.tftp)
			if tc.tftp == nil {
				s.menu = "" // no PXE settings at all: HTTP boot needs only an address
			}
			s.start()
			p := designPi()
			host, port := hf.hostPort()
			p.BootOrder, p.HTTPHost, p.HTTPPort, p.PubKey = 0xf7, host, port, &testKey(t, 0).PublicKey
			p.DHCPRetry, p.TFTPRetry, p.FileTimeout = 500*time.Millisecond, 300*time.Millisecond, 10*time.Second
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
			got := Result{KernelLoaded: res.KernelLoaded, Verdict: res.Verdict, Files: res.Files, NotFound: res.NotFound}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if tc.wantErr != nil && !strings.Contains(res.Error, tc.wantErr.Error()) {
				t.Errorf("error %q, want it to say %q", res.Error, tc.wantErr)
			}
			if tc.wantSteps != nil {
				var steps []string
				for _, st := range res.Steps {
					if st.Op == "http-get" || st.Op == "verify" {
						f := st.File
						if u, ok := strings.CutPrefix(f, "http://"); ok {
							f = u[strings.IndexByte(u, '/'):]
						}
						steps = append(steps, st.Op+" "+f+" "+st.Result)
					}
				}
				if diff := cmp.Diff(tc.wantSteps, steps); diff != "" {
					t.Errorf("steps (-want +got):\n%s", diff)
				}
			}
			if tc.wantReqs != nil {
				reqs := hf.requests()
				if len(tc.wantReqs) == 0 && len(reqs) == 0 {
					return
				}
				if diff := cmp.Diff(tc.wantReqs, reqs); diff != "" {
					t.Errorf("requests (-want +got):\n%s", diff)
				}
			}
			if res.KernelLoaded && res.Verdict == VerdictHTTPBootImg {
				if !strings.HasPrefix(hf.agent, "rpiboot/1.0 (") {
					t.Errorf("user agent %q", hf.agent)
				}
				for _, st := range res.Steps {
					if st.Op == "http-get" && st.Took <= 0 {
						t.Errorf("step %s has no time", st.File)
					}
				}
			}
		})
	}
}

func TestBootModes(t *testing.T) {
	for order, want := range map[uint32][]int{
		0: {2}, 0x2: {2}, 0xf7: {7}, 0xf21: {2}, 0xf72: {2, 7}, 0x7f2: {2}, 0xf41: nil, 0x27: {7, 2},
	} {
		p := &Pi{BootOrder: order}
		if diff := cmp.Diff(want, p.bootModes()); diff != "" {
			t.Errorf("BOOT_ORDER %#x (-want +got):\n%s", order, diff)
		}
	}
	p := designPi()
	p.BootOrder = 0xf41
	if err := p.validate(); err == nil || !strings.Contains(err.Error(), "no network boot mode") {
		t.Errorf("validate(BOOT_ORDER=0xf41) = %v", err)
	}
}

// TestHTTPBootOpenSSLSignature: a boot.sig made exactly as rpi-eeprom-digest
// makes it (openssl dgst -sign over the image, hex of the signature) and
// the public key as openssl writes it are accepted; the same signature
// over another image is refused.
func TestHTTPBootOpenSSLSignature(t *testing.T) {
	openssl := testutil.NeedTool(t, "openssl")
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	img := randBytes(41, 200000)
	os.WriteFile(filepath.Join(dir, "boot.img"), img, 0o644)
	run("genrsa", "-out", filepath.Join(dir, "private.pem"), "2048")
	run("rsa", "-in", filepath.Join(dir, "private.pem"), "-pubout", "-out", filepath.Join(dir, "public.pem"))
	run("dgst", "-sign", filepath.Join(dir, "private.pem"), "-keyform", "PEM", "-sha256", "-out", filepath.Join(dir, "sig.bin"), filepath.Join(dir, "boot.img"))
	sigBin, _ := os.ReadFile(filepath.Join(dir, "sig.bin"))
	sum := sha256.Sum256(img)
	bootSig := []byte(fmt.Sprintf("%x\nts: 1700000000\nrsa2048: %x\n", sum, sigBin))
	pubPEM, _ := os.ReadFile(filepath.Join(dir, "public.pem"))
	blk, _ := pem.Decode(pubPEM)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		img  []byte
		want bool
	}{"image it signed": {img, true}, "another image": {randBytes(42, 200000), false}} {
		t.Run(name, func(t *testing.T) {
			hf := newHTTPFiles(t, map[string][]byte{"/net_install/boot.sig": bootSig, "/net_install/boot.img": tc.img})
			s := newFakeServer(t, nil)
			s.menu = ""
			s.start()
			p := designPi()
			host, port := hf.hostPort()
			p.BootOrder, p.HTTPHost, p.HTTPPort, p.PubKey = 0xf7, host, port, pub.(*rsa.PublicKey)
			p.DHCPRetry = 500 * time.Millisecond
			res, err := p.BootOn(context.Background(), s.transport())
			if err != nil {
				t.Fatal(err)
			}
			if res.KernelLoaded != tc.want {
				t.Fatalf("kernel loaded %v, want %v:\n%s", res.KernelLoaded, tc.want, res)
			}
		})
	}
}

func TestParseBootSig(t *testing.T) {
	sum := strings.Repeat("0f", 32)
	sig := strings.Repeat("a5", 256)
	for name, tc := range map[string]struct {
		in      string
		wantSig bool
		wantErr bool
	}{
		"signed":          {in: sum + "\nts: 1\nrsa2048: " + sig + "\n", wantSig: true},
		"crlf":            {in: sum + "\r\nts: 1\r\nrsa2048: " + sig + "\r\n", wantSig: true},
		"digest only":     {in: sum + "\nts: 1\n"},
		"target soc":      {in: sum + "\nts: 1\ntarget-soc: bcm2712\nrsa2048: " + sig, wantSig: true},
		"short digest":    {in: sum[:60] + "\n", wantErr: true},
		"not hex":         {in: strings.Repeat("zz", 32) + "\n", wantErr: true},
		"short signature": {in: sum + "\nrsa2048: abcd\n", wantErr: true},
		"too long":        {in: sum + "\n" + strings.Repeat("x", 5000), wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := parseBootSig([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseBootSig = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrBootSig) {
					t.Errorf("error %v does not wrap ErrBootSig", err)
				}
				return
			}
			if (s.sig != nil) != tc.wantSig {
				t.Errorf("signature present %v, want %v", s.sig != nil, tc.wantSig)
			}
		})
	}
}
