package pisim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"
)

// booter carries one boot in progress.
type booter struct {
	p      *Pi
	link   Link
	log    *slog.Logger
	rng    *rand.Rand
	start  time.Time
	res    *Result
	lease  *lease
	prefix string
}

func newBooter(p *Pi, link Link) *booter {
	return &booter{
		p:     p,
		link:  link,
		log:   p.logger().With("serial", p.Name(), "mac", p.MAC.String()),
		rng:   rand.New(rand.NewPCG(uint64(p.Serial), uint64(time.Now().UnixNano()))),
		start: time.Now(),
		res: &Result{
			Serial: p.Name(), MAC: p.MAC.String(), Model: p.Model, Prefix: p.prefix(),
			Verdict: "not started",
		},
	}
}

// step appends s to the timeline, stamped with the time since the start.
func (b *booter) step(s Step) {
	s.At = time.Since(b.start)
	b.res.Steps = append(b.res.Steps, s)
	b.log.Debug("step", "op", s.Op, "file", s.File, "bytes", s.Bytes, "result", s.Result, "detail", s.Detail)
}

// secs is the BOOTP secs field: seconds since the boot started.
func (b *booter) secs() uint16 { return uint16(min(time.Since(b.start)/time.Second, 0xffff)) }

// run plays the whole boot and fills b.res.
func (b *booter) run(ctx context.Context) {
	defer func() { b.res.Total = time.Since(b.start) }()
	modes := b.p.bootModes()
	// The boot offer's PXE settings matter to TFTP boot only; a Pi that
	// only HTTP boots takes any address.
	l, err := b.dhcp(ctx, slices.Contains(modes, ModeNetwork))
	b.res.DHCPTime = time.Since(b.start)
	if err != nil {
		b.fail("dhcp", err)
		return
	}
	b.lease = l
	r := b.res
	r.Address, r.DHCPServer = l.Addr.String(), l.ServerID.String()
	if l.TFTPServer != nil {
		r.TFTPServer = l.TFTPServer.String()
	}
	r.TFTPSource, r.Proxy, r.Echoed97 = l.TFTPSource, l.Proxy, l.Echoed97
	if err := b.link.Configure(ctx, l.Addr, l.Mask); err != nil {
		b.fail("configure address", err)
		return
	}
	var verdict, phase string
	if b.p.loops() {
		for i := 0; i < b.p.Restarts; i++ {
			modes = append(modes, b.p.bootModes()...)
		}
	}
	for i, mode := range modes {
		if i > 0 {
			b.step(Step{Op: "boot-mode", Result: "next", Detail: fmt.Sprintf("%s failed: %v", phase, err)})
		}
		b.prefix = b.p.prefix()
		switch {
		case mode == ModeHTTP:
			phase = "http"
			verdict, err = b.httpBoot(ctx)
		case b.p.Model == 5:
			phase = "tftp"
			verdict, err = b.sequencePi5(ctx)
		default:
			phase = "tftp"
			verdict, err = b.sequencePi4(ctx)
		}
		r.ModeTries = i + 1
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		b.fail(phase, err)
		return
	}
	r.KernelLoaded, r.Verdict = true, verdict
	b.log.Info("pi booted", "verdict", verdict, "files", r.Files, "bytes", r.Bytes, "took", time.Since(b.start))
}

func (b *booter) fail(phase string, err error) {
	b.res.Verdict = "failed: " + phase
	b.res.Error = err.Error()
	b.log.Info("pi boot failed", "phase", phase, "err", err)
}

// fetchKind says how a missing or present file is treated.
type fetchKind int

const (
	probe    fetchKind = iota // existence only: Early terminate after the OACK
	optional                  // read fully if present; not found is normal
	required                  // read fully; not found fails the boot
)

// fileError is a failed required (or timed-out) read; it fails the boot.
type fileError struct {
	File string
	Err  error
}

func (e *fileError) Error() string { return fmt.Sprintf("%s: %v", e.File, e.Err) }
func (e *fileError) Unwrap() error { return e.Err }

// fetch reads b.prefix+name. It returns whether the file exists and, when
// keep is set, its bytes. A timeout (on any kind) or a failed required read
// is a *fileError: the firmware does not recover from either.
func (b *booter) fetch(ctx context.Context, name string, kind fetchKind, keep bool) (bool, []byte, error) {
	path := b.prefix + name
	conn, err := b.link.ListenTFTP(ctx)
	if err != nil {
		return false, nil, &fileError{path, fmt.Errorf("open tftp socket: %w", err)}
	}
	defer conn.Close()
	var buf bytes.Buffer
	var h hash.Hash = sha256.New()
	var w io.Writer = h
	if keep {
		w = io.MultiWriter(h, &buf)
	}
	o := readOpts{
		Probe:   kind == probe,
		Blksize: b.p.Blksize,
		Timeout: orDur(b.p.FileTimeout, DefaultFileTimeout),
		Retry:   orDur(b.p.TFTPRetry, DefaultTFTPRetry),
	}
	if o.Blksize == 0 {
		o.Blksize = DefaultBlksize
	}
	t0 := time.Now()
	st, err := tftpRead(ctx, conn, b.link.TFTPServer(b.lease.TFTPServer), path, o, w)
	s := Step{Op: "tftp-read", File: path, Bytes: st.Bytes, Took: time.Since(t0)}
	if kind == probe {
		s.Op = "tftp-probe"
	}
	if st.Retries > 0 {
		s.Detail = fmt.Sprintf("%d retries", st.Retries)
	}
	b.res.Bytes += st.Bytes
	b.res.Retries += st.Retries
	switch {
	case err == nil && st.Probed:
		s.Result = "early terminate"
		if st.Tsize >= 0 {
			s.Detail = fmt.Sprintf("tsize %d", st.Tsize)
		}
	case err == nil:
		s.Result, s.SHA256 = "ok", hex.EncodeToString(h.Sum(nil))
		b.res.Files++
	case errors.Is(err, ErrNotFound):
		s.Result = "not found"
		b.res.NotFound++
	case errors.Is(err, ErrFileTimeout):
		s.Result = "timeout"
	default:
		s.Result = "error: " + err.Error()
	}
	b.step(s)
	switch {
	case err == nil:
		return true, buf.Bytes(), nil
	case ctx.Err() != nil:
		return false, nil, ctx.Err()
	case errors.Is(err, ErrNotFound) && kind != required:
		return false, nil, nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrFileTimeout), kind == required:
		return false, nil, &fileError{path, err}
	}
	// An optional file the server refused for another reason: the firmware
	// carries on as if it were missing.
	return false, nil, nil
}

// readConfig reads config.txt and its includes and parses them.
func (b *booter) readConfig(ctx context.Context) (bootConfig, error) {
	ok, data, err := b.fetch(ctx, "config.txt", optional, true)
	if err != nil || !ok {
		return bootConfig{}, err
	}
	first := parseConfigTxt(data, b.p.Model)
	incs := map[string][]byte{}
	for _, name := range first.Includes {
		ok, inc, err := b.fetch(ctx, name, optional, true)
		if err != nil {
			return bootConfig{}, err
		}
		if ok {
			incs[name] = inc
		}
	}
	return parseConfigTxt(expandIncludes(data, incs), b.p.Model), nil
}
