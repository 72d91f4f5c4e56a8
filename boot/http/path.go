package httpboot

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxPathLen bounds the request path; boot file names are far shorter.
const maxPathLen = 2048

// Errors the path check wraps when it refuses a request (with 400) before
// routing; tests and wrappers that run the check can branch on them.
var (
	// ErrBadPath is wrapped for paths that are malformed: bad escapes,
	// control characters, NUL, bytes that are not UTF-8, or too long.
	ErrBadPath = errors.New("malformed request path")
	// ErrTraversal is wrapped for paths that try to leave their root: dot
	// segments, encoded slashes or backslashes.
	ErrTraversal = errors.New("path traversal refused")
)

// splitPath checks an escaped request path segment by segment and returns the
// decoded segments (without the leading empty one). A segment decoding to "."
// or "..", or containing "/" (only reachable encoded), "\", NUL,
// another control character or bytes that are not UTF-8 is refused, so no
// later decoding, cleaning or joining can turn the name into one outside its
// root.
func splitPath(escaped string) ([]string, error) {
	if len(escaped) > maxPathLen {
		return nil, errPath(ErrBadPath, "longer than 2048 bytes")
	}
	if !strings.HasPrefix(escaped, "/") {
		return nil, errPath(ErrBadPath, "does not start with /")
	}
	raw := strings.Split(escaped[1:], "/")
	segs := make([]string, 0, len(raw))
	for _, r := range raw {
		seg, err := url.PathUnescape(r)
		if err != nil {
			return nil, errPath(ErrBadPath, "bad %-escape")
		}
		switch {
		case seg == "." || seg == "..":
			return nil, errPath(ErrTraversal, "dot segment")
		case strings.ContainsAny(seg, `/\`):
			return nil, errPath(ErrTraversal, "encoded slash or backslash")
		}
		if !utf8.ValidString(seg) {
			return nil, errPath(ErrBadPath, "not UTF-8")
		}
		for _, c := range []byte(seg) {
			if c < 0x20 || c == 0x7f {
				return nil, errPath(ErrBadPath, "control character")
			}
		}
		segs = append(segs, seg)
	}
	return segs, nil
}

type pathError struct {
	kind   error
	reason string
}

func (e *pathError) Error() string { return e.kind.Error() + ": " + e.reason }
func (e *pathError) Unwrap() error { return e.kind }

func errPath(kind error, reason string) error { return &pathError{kind: kind, reason: reason} }

// checkPath refuses requests whose path fails splitPath with 400 before any
// route (or the resolver) sees them.
func checkPath(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect || r.URL.Opaque != "" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		// RequestURI is the path exactly as sent; URL.EscapedPath may have
		// normalised the escaping.
		escaped := r.URL.EscapedPath()
		if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
			escaped = p
		}
		if _, err := splitPath(escaped); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// piBootName reports whether segs is a Raspberry Pi EEPROM HTTP boot request
// (".../boot.img" or ".../boot.sig") and returns the resolver name.
func piBootName(segs []string) (string, bool) {
	if len(segs) == 0 {
		return "", false
	}
	switch last := segs[len(segs)-1]; last {
	case "boot.img", "boot.sig":
		return last, true
	}
	return "", false
}
