package httpboot

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/store"
)

// curlResult is what one real curl run saw.
type curlResult struct {
	code    int
	headers string // raw response headers, all responses
	body    []byte
}

// curl runs the real curl binary with args (the URL among them) and
// returns the final status, headers and body.
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	r, err := runCurl(testutil.NeedTool(t, "curl"), t.TempDir(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runCurl runs curl at bin, keeping its output files in dir. It is safe
// to call from any goroutine.
func runCurl(bin, dir string, args ...string) (curlResult, error) {
	hdr, body := filepath.Join(dir, "headers"), filepath.Join(dir, "body")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"-sS", "--max-time", "20", "-D", hdr, "-o", body, "-w", "%{http_code}"}, args...)
	out, err := exec.CommandContext(ctx, bin, full...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return curlResult{}, fmt.Errorf("curl %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return curlResult{}, fmt.Errorf("curl %s: status %q: %v", strings.Join(args, " "), out, err)
	}
	h, _ := os.ReadFile(hdr)
	b, _ := os.ReadFile(body)
	return curlResult{code: code, headers: string(h), body: b}, nil
}

// header returns the last value of a response header curl saw.
func (c curlResult) header(name string) string {
	var v string
	for _, line := range strings.Split(c.headers, "\n") {
		k, val, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
		if ok && strings.EqualFold(k, name) {
			v = strings.TrimSpace(val)
		}
	}
	return v
}

// dirOpener is a fake resolver over a directory: every client is node
// `node`, names are paths under the root (os.Root keeps them inside), and
// errs injects errors by name. It records every request it gets.
type dirOpener struct {
	root *os.Root
	node string
	errs map[string]error

	mu   sync.Mutex
	reqs []resolve.Request
}

func newDirOpener(t *testing.T, files map[string][]byte) *dirOpener {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &dirOpener{root: root, node: "pi-01", errs: map[string]error{}}
}

func (d *dirOpener) Open(_ context.Context, req resolve.Request) (*resolve.File, error) {
	d.mu.Lock()
	d.reqs = append(d.reqs, req)
	d.mu.Unlock()
	if err := d.errs[req.Name]; err != nil {
		return nil, err
	}
	f, err := d.root.Open(req.Name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", req.Name, err)
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file: %w", req.Name, os.ErrNotExist)
	}
	return &resolve.File{
		Content: f, Closer: f, Size: fi.Size(), ModTime: fi.ModTime(),
		ETag: fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()),
		Node: d.node, Path: req.Name,
	}, nil
}

func (d *dirOpener) requests() []resolve.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

// fakeStore is an in-memory NodeReader and EventSink.
type fakeStore struct {
	mu     sync.Mutex
	nodes  []store.Node
	leases []store.Lease
	events []store.Event
	err    error // returned by every read when set
}

func (f *fakeStore) Nodes(context.Context) ([]store.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.nodes), f.err
}

func (f *fakeStore) Node(_ context.Context, key string) (store.Node, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nodes {
		if n.Key == key {
			return n, true, f.err
		}
	}
	return store.Node{}, false, f.err
}

func (f *fakeStore) Leases(context.Context) ([]store.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.leases), f.err
}

func (f *fakeStore) Events(_ context.Context, node string, limit int) ([]store.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Event
	for _, e := range f.events {
		if e.Node == node {
			out = append(out, e)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, f.err
}

func (f *fakeStore) AddEvent(_ context.Context, e store.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
	return nil
}

// startServer runs s.Handler on a loopback httptest server.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// pattern returns n deterministic, non-repeating-looking bytes.
func pattern(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d|", i)
	}
	return b.Bytes()[:n]
}
