package pisim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"
)

// Boot modes of BOOT_ORDER the simulator plays.
const (
	ModeNetwork = 0x2 // TFTP network boot
	ModeHTTP    = 0x7 // HTTP boot of a signed boot.img
	modeRestart = 0xf // end of the list (the firmware starts over)
)

// HTTP boot defaults, as the bootloader documents them.
const (
	DefaultHTTPPort = 80
	DefaultHTTPPath = "net_install"
	// MaxBootImg is the largest boot.img the bootloader loads (it is held in
	// RAM); a larger one fails the boot.
	MaxBootImg = 96 << 20
)

// VerdictHTTPBootImg is the verdict of a Pi that booted a verified boot.img
// over HTTP.
const VerdictHTTPBootImg = "kernel loaded (http boot.img)"

// Sentinel errors of HTTP boot.
var (
	// ErrHTTPNotFound means the server answered 404 for boot.sig or boot.img.
	ErrHTTPNotFound = errors.New("http: not found")
	// ErrBootImgTooLarge means boot.img is past MaxBootImg.
	ErrBootImgTooLarge = errors.New("boot.img is larger than the bootloader loads")
	// ErrHTTPTimeout means a file did not arrive whole within the per-file
	// timeout (FileTimeout, as for TFTP).
	ErrHTTPTimeout = errors.New("http: file not complete within the per-file timeout")
)

// loops reports whether BOOT_ORDER ends in f: after its last mode failed,
// the firmware starts the list over.
func (p *Pi) loops() bool {
	for order := p.BootOrder; order != 0; order >>= 4 {
		if order&0xf == modeRestart {
			return true
		}
	}
	return false
}

// bootModes lists the simulated modes of BOOT_ORDER in the order tried.
func (p *Pi) bootModes() []int {
	order := p.BootOrder
	if order == 0 {
		order = ModeNetwork
	}
	var modes []int
	for ; order != 0; order >>= 4 {
		switch m := int(order & 0xf); m {
		case modeRestart:
			return modes
		case ModeNetwork, ModeHTTP:
			modes = append(modes, m)
		}
	}
	return modes
}

// httpURL is http://HTTP_HOST:HTTP_PORT/HTTP_PATH/name.
func (p *Pi) httpURL(name string) string {
	port := p.HTTPPort
	if port == 0 {
		port = DefaultHTTPPort
	}
	dir := p.HTTPPath
	if dir == "" {
		dir = DefaultHTTPPath
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(p.HTTPHost, strconv.Itoa(port)), Path: "/" + path.Join(dir, name)}
	return u.String()
}

// httpBoot plays HTTP boot: GET boot.sig, then boot.img, check the image's
// SHA-256 against boot.sig and the signature against the EEPROM key. The
// image is hashed as it streams in, never held whole.
func (b *booter) httpBoot(ctx context.Context) (string, error) {
	if net.ParseIP(b.p.HTTPHost).To4() == nil {
		return "", fmt.Errorf("HTTP_HOST %q is not an IPv4 address (the simulator has no DNS; unset, a real Pi goes to Raspberry Pi's own server)", b.p.HTTPHost)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ta, err := net.ResolveTCPAddr("tcp4", addr)
			if err != nil {
				return nil, err
			}
			return b.link.DialTCP(ctx, ta)
		},
		DisableCompression:    true,
		MaxIdleConnsPerHost:   1,
		ResponseHeaderTimeout: orDur(b.p.FileTimeout, DefaultFileTimeout),
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	sigBuf := &limitedBuffer{max: maxSigFile}
	if _, err := b.httpGet(ctx, client, "boot.sig", maxSigFile, sigBuf); err != nil {
		return "", err
	}
	sig, err := parseBootSig(sigBuf.b)
	if err != nil {
		b.step(Step{Op: "verify", File: "boot.sig", Result: "refused", Detail: err.Error()})
		return "", err
	}
	sum, err := b.httpGet(ctx, client, "boot.img", MaxBootImg, io.Discard)
	if err != nil {
		return "", err
	}
	if err := sig.check(sum, b.p.PubKey); err != nil {
		b.step(Step{Op: "verify", File: "boot.img", Result: "refused", Detail: err.Error()})
		return "", err
	}
	b.step(Step{Op: "verify", File: "boot.img", Result: "ok", Detail: "rsa2048 signature verified with the EEPROM key"})
	return VerdictHTTPBootImg, nil
}

// httpGet fetches one file of HTTP_PATH into w, at most limit bytes, within
// the per-file timeout (TFTP_FILE_TIMEOUT's value: the firmware's own HTTP
// limit is not documented), records a step with its time and returns the
// file's SHA-256.
func (b *booter) httpGet(ctx context.Context, client *http.Client, name string, limit int64, w io.Writer) ([]byte, error) {
	u := b.p.httpURL(name)
	timeout := orDur(b.p.FileTimeout, DefaultFileTimeout)
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	s := Step{Op: "http-get", File: u}
	var sum []byte
	n, err := func() (int64, error) {
		req, err := http.NewRequestWithContext(fctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("User-Agent", fmt.Sprintf("rpiboot/1.0 (%x; pisim)", b.p.boardRev()))
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return 0, ErrHTTPNotFound
		case resp.StatusCode != http.StatusOK:
			return 0, fmt.Errorf("http: %s", resp.Status)
		case resp.ContentLength > limit:
			return 0, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrBootImgTooLarge, name, resp.ContentLength, limit)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(resp.Body, limit+1))
		sum = h.Sum(nil)
		s.SHA256 = fmt.Sprintf("%x", sum)
		if err == nil && n > limit {
			err = fmt.Errorf("%w: %s is over %d bytes", ErrBootImgTooLarge, name, limit)
		}
		if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
			err = fmt.Errorf("http: %d of %d bytes", n, resp.ContentLength)
		}
		return n, err
	}()
	s.Bytes, s.Took = n, time.Since(t0)
	b.res.Bytes += n
	switch {
	case err == nil:
		s.Result = "ok"
		b.res.Files++
	case errors.Is(err, ErrHTTPNotFound):
		s.Result, s.SHA256 = "not found", ""
		b.res.NotFound++
	case fctx.Err() != nil && ctx.Err() == nil:
		s.Result, s.SHA256 = "timeout", ""
		err = fmt.Errorf("%w (%s after %s, %d bytes)", ErrHTTPTimeout, name, timeout, n)
	default:
		s.Result, s.SHA256 = "error: "+err.Error(), ""
	}
	b.step(s)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, &fileError{u, err}
	}
	return sum, nil
}

// limitedBuffer keeps at most max bytes; writes past it fail.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if len(l.b)+len(p) > l.max {
		return 0, fmt.Errorf("more than %d bytes", l.max)
	}
	l.b = append(l.b, p...)
	return len(p), nil
}
