package httpboot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHealthAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	files := newDirOpener(t, map[string][]byte{"config.txt": []byte("arm_64bit=1\n")})
	url := startServer(t, &Server{Files: files, Registry: reg})

	if got := curl(t, url+"/healthz"); got.code != 200 || string(got.body) != "ok\n" {
		t.Errorf("healthz: got %d %q, want 200 \"ok\\n\"", got.code, got.body)
	}
	curl(t, url+"/boot/config.txt")
	curl(t, url+"/boot/config.txt")
	curl(t, url+"/boot/missing")
	curl(t, "--path-as-is", url+"/boot/../x")

	got := curl(t, url+"/metrics")
	if got.code != 200 {
		t.Fatalf("metrics: status %d", got.code)
	}
	for _, want := range []string{
		`racklet_http_requests_total{code="200",route="boot"} 2`,
		`racklet_http_requests_total{code="404",route="boot"} 1`,
		`racklet_http_requests_total{code="400",route="other"} 1`,
		`racklet_http_requests_total{code="200",route="healthz"} 1`,
		`racklet_http_response_bytes_total{route="boot"} 34`, // 2×12 + "not found\n"
		`racklet_http_requests_in_flight 1`,                  // the /metrics request itself
		`racklet_http_request_duration_seconds_count{route="boot"} 3`,
	} {
		if !strings.Contains(string(got.body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
	// A second server on the same registry shares the metrics instead of panicking.
	(&Server{Registry: reg}).Handler()
}

// TestIndex: GET / names the server and links its routes; other paths
// are still not found.
func TestIndex(t *testing.T) {
	url := startServer(t, &Server{Mounts: map[string]http.Handler{"/api/v1/attest/": http.NotFoundHandler()}})
	got := curl(t, url+"/")
	if got.code != 200 {
		t.Fatalf("GET /: status %d", got.code)
	}
	for _, want := range []string{"racklet-boot", `href="/metrics"`, `href="/healthz"`, `href="/api/v1/nodes"`, "/api/v1/attest/"} {
		if !strings.Contains(string(got.body), want) {
			t.Errorf("GET / lacks %q:\n%s", want, got.body)
		}
	}
	if got := curl(t, url+"/nothing-here"); got.code != 404 {
		t.Errorf("GET /nothing-here: status %d, want 404", got.code)
	}
}

func TestPrivateRegistry(t *testing.T) {
	url := startServer(t, &Server{})
	got := curl(t, url+"/metrics")
	if !strings.Contains(string(got.body), "go_goroutines") {
		t.Errorf("private registry lacks the Go collector")
	}
}

func TestMounts(t *testing.T) {
	attest := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "attest %s %s", r.Method, r.URL.Path)
	})
	url := startServer(t, &Server{Mounts: map[string]http.Handler{"/api/v1/attest/": attest}})
	got := curl(t, "-X", "POST", "-d", "{}", url+"/api/v1/attest/nonce")
	if got.code != 200 || string(got.body) != "attest POST /api/v1/attest/nonce" {
		t.Errorf("mount: got %d %q", got.code, got.body)
	}
	if got := curl(t, "--path-as-is", url+"/api/v1/attest/../../../etc/passwd"); got.code != 400 {
		t.Errorf("traversal under a mount: status %d, want 400", got.code)
	}
}

func TestRequestLog(t *testing.T) {
	var buf syncBuffer
	files := newDirOpener(t, map[string][]byte{"config.txt": []byte("arm_64bit=1\n")})
	url := startServer(t, &Server{Files: files, Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	curl(t, "-r", "0-3", url+"/boot/config.txt")

	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, `"http request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line == nil {
		t.Fatalf("no request line logged: %s", buf.String())
	}
	delete(line, "time")
	delete(line, "duration")
	want := map[string]any{
		"level": "INFO", "msg": "http request", "method": "GET", "path": "/boot/config.txt",
		"status": float64(206), "bytes": float64(4), "ip": "127.0.0.1", "route": "boot",
		"node": "pi-01", "file": "config.txt", "range": "bytes=0-3",
	}
	if diff := cmp.Diff(want, line); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

// TestServeGraceful runs Serve on a real loopback listener, starts a slow
// download, cancels the context and checks that the download completes and
// Serve returns nil.
func TestServeGraceful(t *testing.T) {
	blob := pattern(8 << 20)
	files := newDirOpener(t, map[string][]byte{"big.img": blob})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	opened := make(chan struct{})
	var once sync.Once
	spy := openerFunc(func(ctx context.Context, req resolve.Request) (*resolve.File, error) {
		once.Do(func() { close(opened) })
		return files.Open(ctx, req)
	})
	go func() { done <- (&Server{Files: spy, ShutdownTimeout: 20 * time.Second}).Serve(ctx, ln) }()

	url := "http://" + ln.Addr().String()
	bin := testutil.NeedTool(t, "curl")
	type result struct {
		r   curlResult
		err error
	}
	res := make(chan result, 1)
	go func() {
		r, err := runCurl(bin, t.TempDir(), "--limit-rate", "8M", url+"/boot/big.img")
		res <- result{r, err}
	}()
	select { // the download is under way (it needs ~1 s at 8 MB/s)
	case <-opened:
	case <-time.After(30 * time.Second):
		t.Fatal("curl's request never reached the server")
	}
	cancel()

	select {
	case r := <-res:
		got := r.r
		if r.err != nil {
			t.Fatal(r.err)
		}
		if got.code != 200 || !bytes.Equal(got.body, blob) {
			t.Errorf("download during shutdown: status %d, %d of %d bytes", got.code, len(got.body), len(blob))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("download did not finish within 30 s of shutdown")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v after ctx ended, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return within 30 s of ctx ending")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("listener still accepts after Serve returned")
	}
}

func TestListenAndServeError(t *testing.T) {
	err := (&Server{}).ListenAndServe(context.Background(), "127.0.0.1:notaport")
	if err == nil || !strings.Contains(err.Error(), "listen for http on 127.0.0.1:notaport") {
		t.Errorf("ListenAndServe(bad addr) = %v, want a listen error naming the address", err)
	}
}

// readFromSpy is a ResponseWriter that records what reaches ReadFrom, the
// method net/http's own response uses to call sendfile.
type readFromSpy struct {
	http.ResponseWriter
	srcs []string
}

func (s *readFromSpy) ReadFrom(src io.Reader) (int64, error) {
	desc := fmt.Sprintf("%T", src)
	if lr, ok := src.(*io.LimitedReader); ok {
		desc += fmt.Sprintf("(%T)", lr.R)
	}
	s.srcs = append(s.srcs, desc)
	return io.Copy(s.ResponseWriter, src)
}

// TestSendfilePath checks that the middleware keeps the zero-copy path: an
// *os.File from the resolver reaches the underlying writer's ReadFrom for
// whole files and single ranges. (Checked on a live server with
// `strace -f -e trace=sendfile`: all but the first 512 bytes go by sendfile.)
func TestSendfilePath(t *testing.T) {
	files := newDirOpener(t, map[string][]byte{"kernel8.img": pattern(64 << 10)})
	h := (&Server{Files: files}).Handler()
	tests := map[string]struct {
		rng  string
		want []string
	}{
		"whole file":   {want: []string{"*io.LimitedReader(*os.File)"}},
		"single range": {rng: "bytes=100-60000", want: []string{"*io.LimitedReader(*os.File)"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			spy := &readFromSpy{ResponseWriter: httptest.NewRecorder()}
			req := httptest.NewRequest("GET", "/boot/kernel8.img", nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			h.ServeHTTP(spy, req)
			if diff := cmp.Diff(tc.want, spy.srcs); diff != "" {
				t.Errorf("ReadFrom sources (-want +got):\n%s", diff)
			}
		})
	}
}

// openerFunc adapts a function to resolve.Opener.
type openerFunc func(ctx context.Context, req resolve.Request) (*resolve.File, error)

func (f openerFunc) Open(ctx context.Context, req resolve.Request) (*resolve.File, error) {
	return f(ctx, req)
}
