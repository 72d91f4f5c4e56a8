// Package resolve decides, for a node and a requested name, which bytes to
// serve. TFTP and HTTP both ask it; neither knows about boot sources.
package resolve

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"
)

// Request is one request for a boot file.
type Request struct {
	Client netip.Addr // source address of the request
	Name   string     // the name exactly as it came off the wire
	Via    string     // "tftp" or "http"
}

// File is one resolved boot file. Callers must Close it.
type File struct {
	// Content is the file's bytes. For directory sources it is the *os.File
	// itself, so HTTP can hand it to sendfile.
	Content io.ReadSeeker
	io.Closer
	Size    int64
	ModTime time.Time
	ETag    string // strong validator, quoted, e.g. "\"sha256:…\"" or "\"size-mtime\""
	Node    string // node name, "" when the client is unknown
	Path    string // cleaned path inside the node's source (or the generated file's name)
}

// Opener is what servers need from the resolver. Errors wrap os.ErrNotExist
// when nothing matched and ErrRefused when the name or the client is refused.
type Opener interface {
	Open(ctx context.Context, req Request) (*File, error)
}

// ErrRefused is wrapped by errors for names that are refused outright
// (traversal, NUL, over-long names) and for clients the policy does not serve.
var ErrRefused = errors.New("request refused")
