package flatten

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrUnsafeName means a tar entry names a path outside the root (absolute or with "..").
var ErrUnsafeName = errors.New("unsafe path in layer")

// Whiteout markers of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// CleanName turns a tar entry name into a clean path relative to the root ("" is the root).
// Names that are absolute or climb out of the root with ".." are refused with ErrUnsafeName;
// a leading "./" is accepted, as docker and buildkit write it.
func CleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name %q holds a NUL byte: %w", name, ErrUnsafeName)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("name %q is absolute: %w", name, ErrUnsafeName)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("name %q climbs out of the root: %w", name, ErrUnsafeName)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

func splitPath(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
