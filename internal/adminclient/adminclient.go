// Package adminclient is the one place a racklet command reaches a running
// racklet-boot's operator API, and the one place the operator credential is
// presented. Every operator command (nodes, power, console, approve,
// rollouts …) gets its Client from Flags:
//
//   - by default over the unix socket in the data directory
//     (<data-dir>/admin.sock): racklet-boot checks the peer's user (root or
//     its own), so no token is needed on the server's host;
//   - with --server URL (or $RACKLET_SERVER) over HTTP, sending the token
//     from --token-file F, $RACKLET_TOKEN_FILE or $RACKLET_TOKEN, else from
//     <data-dir>/admin.token when this host can read it, as
//     "Authorization: Bearer <token>".
//
// racklet-boot writes the token into its data directory on first start
// (mode 0600); boot/adminauth checks it.
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Names under racklet-boot's data directory, and the environment.
const (
	// SocketFile is the operator API's unix socket in the data directory.
	SocketFile = "admin.sock"
	// TokenFile holds the operator token (mode 0600).
	TokenFile = "admin.token"
	// DefaultDataDir is racklet-boot's data directory when none is given.
	DefaultDataDir = "/var/lib/racklet"

	EnvServer    = "RACKLET_SERVER"     // the --server default
	EnvTokenFile = "RACKLET_TOKEN_FILE" // the --token-file default
	EnvToken     = "RACKLET_TOKEN"      // the token itself, when no file is named
	EnvDataDir   = "RACKLET_DATA_DIR"   // the --data-dir default
)

// socketBase is the URL host of requests over the unix socket.
const socketBase = "http://racklet-boot"

// Client calls a running racklet-boot's operator API. Make it with Flags,
// Unix or HTTP; the zero value is not usable.
type Client struct {
	// Base is the server's URL, e.g. http://10.0.0.2.
	Base string
	// Token, when set, is sent as a bearer token.
	Token string
	// HTTP is the client; nil is http.DefaultClient.
	HTTP *http.Client
}

// Unix is a client over racklet-boot's unix socket at path.
func Unix(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns:    2,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{Base: socketBase, HTTP: &http.Client{Transport: tr}}
}

// HTTP is a client of the server at base presenting token.
func HTTP(base, token string) *Client { return &Client{Base: base, Token: token} }

// Error is a refusal or failure answered by the operator API.
type Error struct {
	Status int
	Msg    string
}

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("racklet-boot: %s (%d %s)", e.Msg, e.Status, http.StatusText(e.Status))
	if e.Status == http.StatusUnauthorized {
		msg += ": give the operator token with --token-file (racklet-boot's " + TokenFile + "), or run on the server's host"
	}
	return msg
}

// Do sends a request for path (absolute, e.g. "/api/v1/admin/rack"; a
// non-nil body is sent as JSON) and returns the response when its status is
// 2xx; otherwise an *Error with the server's message.
func (c *Client) Do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if c.Base == socketBase {
			return nil, fmt.Errorf("ask racklet-boot over its socket (is it serving? else give --data-dir, or --server URL): %w", err)
		}
		return nil, fmt.Errorf("ask racklet-boot: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, &Error{Status: resp.StatusCode, Msg: e.Error}
		}
		return nil, &Error{Status: resp.StatusCode, Msg: strings.TrimSpace(string(b))}
	}
	return resp, nil
}

// JSON sends in (nil for no body) and decodes the answer into out (nil to
// drop it); answers are read up to 64 MiB.
func (c *Client) JSON(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.Do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("racklet-boot's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Flags are how a command reaches the operator API: --server, --token-file
// and --data-dir, with their environment defaults.
type Flags struct {
	Server    string
	TokenFile string
	DataDir   string
}

// Register adds the flags to cmd. A command that has its own --data-dir
// flag registers it first; Register then shares it.
func (f *Flags) Register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.Server, "server", os.Getenv(EnvServer), "URL of a running racklet-boot on another host, e.g. http://10.0.0.2 (or $"+EnvServer+"); default: its unix socket in --data-dir")
	fs.StringVar(&f.TokenFile, "token-file", os.Getenv(EnvTokenFile), "file holding the operator token (racklet-boot's "+TokenFile+"; or $"+EnvTokenFile+", or the token in $"+EnvToken+")")
	if fs.Lookup("data-dir") == nil {
		fs.StringVar(&f.DataDir, "data-dir", DataDirDefault(), "racklet-boot's data directory (or $"+EnvDataDir+")")
	}
}

// DataDirDefault is $RACKLET_DATA_DIR, else DefaultDataDir.
func DataDirDefault() string {
	if d := os.Getenv(EnvDataDir); d != "" {
		return d
	}
	return DefaultDataDir
}

// Local reports whether the flags name no remote server: the client talks
// over the data directory's socket.
func (f *Flags) Local() bool { return f.Server == "" }

// SocketPath is the data directory's socket.
func (f *Flags) SocketPath() string { return filepath.Join(f.dataDir(), SocketFile) }

func (f *Flags) dataDir() string {
	if f.DataDir == "" {
		return DataDirDefault()
	}
	return f.DataDir
}

// Client returns the client the flags describe.
func (f *Flags) Client() (*Client, error) {
	if f.Local() {
		return Unix(f.SocketPath()), nil
	}
	tok, err := f.token()
	if err != nil {
		return nil, err
	}
	return HTTP(f.Server, tok), nil
}

// token finds the token for a remote server: the named file, the
// environment, or the data directory's file when readable here.
func (f *Flags) token() (string, error) {
	if f.TokenFile != "" {
		return ReadToken(f.TokenFile)
	}
	if t := strings.TrimSpace(os.Getenv(EnvToken)); t != "" {
		return t, nil
	}
	t, err := ReadToken(filepath.Join(f.dataDir(), TokenFile))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return "", nil // the server answers 401 with how to give one
	}
	return t, err
}

// ReadToken reads a token file (surrounding white space dropped).
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the operator token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("operator token file %s is empty", path)
	}
	return t, nil
}
