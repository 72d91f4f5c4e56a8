package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
)

// reportTimeout bounds one report: a report that cannot be delivered is
// logged, never a reason to stop the boot.
const reportTimeout = 5 * time.Second

// newHTTPClient is the agent's client to racklet-boot: bounded connect and
// header waits, no overall timeout (a root image may take a while).
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       time.Minute,
		MaxIdleConnsPerHost:   2,
	}}
}

// fetchLowat is the receive low-water mark of the root's downloads: the
// socket reports readable once this much has arrived (or the server closed),
// so the reader wakes once per fetchLowat rather than once per segment.
const fetchLowat = 256 << 10

// newFetchClient is newHTTPClient for the root's bulk downloads: each request
// on its own connection, which the server closes after the body (so the last
// bytes below the low-water mark still wake the reader), with SO_RCVLOWAT set.
func newFetchClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: setRcvLowat}
	return &http.Client{Transport: &http.Transport{
		DialContext:           d.DialContext,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableKeepAlives:     true,
	}}
}

// setRcvLowat sets SO_RCVLOWAT to fetchLowat on a socket being dialled; a
// kernel that refuses it leaves the default (wake on any data).
func setRcvLowat(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, fetchLowat)
	})
}

// reporter posts the stages of one boot to racklet-boot.
type reporter struct {
	hc                  *http.Client
	server, node, image string
	log                 *slog.Logger
	// hat is the HAT's A/B state read in this boot, sent with every
	// report once known.
	hat *bootparams.HATState
}

// send reports one stage; failures to deliver are logged.
func (r *reporter) send(ctx context.Context, stage string, ok bool, reason string) {
	if r == nil {
		return
	}
	rep := bootparams.Report{Node: r.node, Stage: stage, OK: ok, Reason: oneLine(reason), Image: r.image, Time: time.Now().UTC(), HAT: r.hat}
	if err := postReport(ctx, r.hc, r.server, rep); err != nil {
		r.log.Warn("report to racklet-boot not delivered", "node", r.node, "stage", stage, "err", err)
	}
}

// oneLine makes a reason what the node API takes: at most 1000 bytes, one
// line without control characters.
func oneLine(reason string) string {
	if len(reason) > 1000 {
		reason = reason[:1000] + "…"
	}
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, reason)
}

// postReport sends one report and waits for racklet-boot's answer.
func postReport(ctx context.Context, hc *http.Client, server string, rep bootparams.Report) error {
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+bootparams.ReportPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("racklet-boot answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// whoami asks racklet-boot which node this address belongs to, and what
// it serves the node (the A/B decision).
func whoami(ctx context.Context, hc *http.Client, server string) (bootparams.WhoAmI, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+bootparams.WhoAmIPath, nil)
	if err != nil {
		return bootparams.WhoAmI{}, fmt.Errorf("racklet-boot URL %q: %w", server, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return bootparams.WhoAmI{}, fmt.Errorf("ask racklet-boot for this node's name: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return bootparams.WhoAmI{}, fmt.Errorf("racklet-boot does not know this node (%s): %s", resp.Status, e.Error)
	}
	var w bootparams.WhoAmI
	if err := json.Unmarshal(data, &w); err != nil || w.Node == "" {
		return bootparams.WhoAmI{}, fmt.Errorf("racklet-boot's whoami answer %q has no node", data)
	}
	return w, nil
}

// HealthOptions configure Health.
type HealthOptions struct {
	// Handover is the file the initramfs agent left (default bootparams.HandoverFile).
	Handover string
	// Attempts and Wait: the report is tried up to Attempts times (default
	// 1), Wait apart.
	Attempts int
	Wait     time.Duration
	// Failed, when set, reports the boot failed with this reason instead
	// of healthy: the image's own health check failed. racklet-boot counts
	// the trial's attempt as used.
	Failed string
	// OpenHAT opens the HAT named in the hand-over, to commit a healthy
	// trial's slot (BootCommit); nil leaves the HAT alone.
	OpenHAT func(ctx context.Context, spec string) (io.ReadWriteCloser, error)
	Logger  *slog.Logger
}

// Health reports the booted node healthy (or, with Failed, failed) to
// racklet-boot, from the hand-over file the initramfs agent left. It is what
// the image's racklet-health.service runs once the default target is
// reached. After a healthy report of a trial (racklet-boot committed it) it
// commits the trial's slot on the HAT, which resets its attempt counter.
func Health(ctx context.Context, o HealthOptions) error {
	if o.Handover == "" {
		o.Handover = bootparams.HandoverFile
	}
	h, err := bootparams.ReadHandover(o.Handover)
	if err != nil {
		return err
	}
	if h.Server == "" || h.Node == "" {
		return fmt.Errorf("boot hand-over %s names no server or node", o.Handover)
	}
	rep := bootparams.Report{Node: h.Node, Stage: bootparams.StageHealthy, OK: true, Image: h.Image, Time: time.Now().UTC()}
	if !h.Attested {
		rep.Reason = "not attested"
	}
	if o.Failed != "" {
		rep.Stage, rep.OK, rep.Reason = bootparams.StageFailed, false, "health check: "+o.Failed
	}
	hc := newHTTPClient()
	for i := 1; ; i++ {
		err = postReport(ctx, hc, h.Server, rep)
		if err == nil {
			break
		}
		if i >= max(o.Attempts, 1) {
			return fmt.Errorf("report %s to racklet-boot %s: %w", rep.Stage, h.Server, err)
		}
		logger(o.Logger).Warn("health report not delivered; retrying", "node", h.Node, "err", err)
		select {
		case <-time.After(o.Wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if o.Failed != "" || h.Boot == nil || !h.Boot.Trial || h.HAT == "none" || o.OpenHAT == nil {
		return nil
	}
	rw, err := o.OpenHAT(ctx, h.HAT)
	if err != nil {
		return fmt.Errorf("reported healthy, but the HAT to commit slot %s on: %w", h.Boot.Slot, err)
	}
	link := hatlink.NewLink(rw)
	defer link.Close()
	c, err := hatlink.NewClient(ctx, link)
	if err != nil {
		return fmt.Errorf("reported healthy, but the HAT to commit slot %s on: %w", h.Boot.Slot, err)
	}
	if _, err := SlotCommit(ctx, c, h.Boot); err != nil {
		return fmt.Errorf("reported healthy, but: %w", err)
	}
	return nil
}
