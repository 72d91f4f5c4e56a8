package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrDigest means a fetched file is not the one the command line pins.
var ErrDigest = errors.New("digest mismatch")

// FetchOptions tune Fetch. The zero value is usable.
type FetchOptions struct {
	// Attempts bounds the requests for one file (first try and resumes);
	// 0 means 6.
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after
	// each; 0 means 500 ms.
	Backoff time.Duration
	Logger  *slog.Logger
}

// Fetch downloads url into dst (created or truncated) and checks it against
// digest ("sha256:<hex>") while it streams. When a transfer breaks, it
// resumes where it stopped with a Range request (If-Range on the first
// answer's ETag, so a file changed in between starts over), up to
// o.Attempts requests. A digest mismatch is not retried: the served bytes
// are wrong, not the transfer. It returns the file's size.
func Fetch(ctx context.Context, hc *http.Client, url, dst, digest string, o FetchOptions) (int64, error) {
	want, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(want) != 64 {
		return 0, fmt.Errorf("fetch %s: digest %q is not sha256:<64 hex digits>", filepath.Base(dst), digest)
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	log := logger(o.Logger)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("fetch %s: %w", filepath.Base(dst), err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", filepath.Base(dst), err)
	}
	defer f.Close()
	st := &fetchState{f: f, h: sha256.New(), buf: make([]byte, fetchLowat)}
	wait := o.Backoff
	var last error
	for attempt := 1; attempt <= o.Attempts; attempt++ {
		done, err := st.get(ctx, hc, url)
		if done {
			break
		}
		last = err
		if ctx.Err() != nil {
			return st.n, fmt.Errorf("fetch %s: %w", url, ctx.Err())
		}
		if attempt == o.Attempts {
			return st.n, fmt.Errorf("fetch %s: gave up after %d attempts: %w", url, attempt, last)
		}
		log.Warn("fetch interrupted; resuming", "file", filepath.Base(dst), "bytes", st.n, "attempt", attempt, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return st.n, fmt.Errorf("fetch %s: %w", url, ctx.Err())
		}
		wait *= 2
	}
	if err := f.Sync(); err != nil {
		return st.n, fmt.Errorf("fetch %s: %w", filepath.Base(dst), err)
	}
	if got := hex.EncodeToString(st.h.Sum(nil)); got != want {
		return st.n, fmt.Errorf("%s from %s: %w: sha256 %s, the command line pins %s (the served file was changed or damaged)",
			filepath.Base(dst), url, ErrDigest, got, want)
	}
	return st.n, nil
}

// fetchState is one file's progress across attempts.
type fetchState struct {
	f    *os.File
	h    hash.Hash
	n    int64  // bytes written and hashed
	etag string // the first answer's ETag, for If-Range
	buf  []byte // copy buffer: a read takes what one low-water wake-up brings
}

// get makes one request from st.n on; done reports the file is complete.
func (st *fetchState) get(ctx context.Context, hc *http.Client, url string) (done bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	if st.n > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", st.n))
		if st.etag != "" {
			req.Header.Set("If-Range", st.etag)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		if st.n > 0 {
			// The server sent the whole file (no range support, or the
			// file changed): start over.
			if err := st.reset(); err != nil {
				return false, err
			}
		}
		st.etag = resp.Header.Get("ETag")
	case resp.StatusCode == http.StatusPartialContent && st.n > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != st.n {
			return false, fmt.Errorf("asked for bytes from %d, got Content-Range %q", st.n, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && st.n > 0:
		// The whole file was already here.
		return true, nil
	default:
		return false, fmt.Errorf("racklet-boot answered %s", resp.Status)
	}
	n, err := io.CopyBuffer(io.MultiWriter(st.f, st.h), resp.Body, st.buf)
	st.n += n
	if err != nil {
		return false, err
	}
	return true, nil
}

func (st *fetchState) reset() error {
	if _, err := st.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := st.f.Truncate(0); err != nil {
		return err
	}
	st.h.Reset()
	st.n = 0
	return nil
}

// rangeStart reads the first byte position of "bytes START-END/SIZE".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}
