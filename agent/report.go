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
	"time"

	"github.com/racklet/racklet-boot/bootparams"
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

// reporter posts the stages of one boot to racklet-boot.
type reporter struct {
	hc                  *http.Client
	server, node, image string
	log                 *slog.Logger
}

// send reports one stage; failures to deliver are logged.
func (r *reporter) send(ctx context.Context, stage string, ok bool, reason string) {
	if r == nil {
		return
	}
	if len(reason) > 1000 {
		reason = reason[:1000] + "…"
	}
	reason = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return ' '
		}
		return c
	}, reason)
	rep := bootparams.Report{Node: r.node, Stage: stage, OK: ok, Reason: reason, Image: r.image, Time: time.Now().UTC()}
	if err := postReport(ctx, r.hc, r.server, rep); err != nil {
		r.log.Warn("report to racklet-boot not delivered", "node", r.node, "stage", stage, "err", err)
	}
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

// whoami asks racklet-boot which node this address belongs to.
func whoami(ctx context.Context, hc *http.Client, server string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+bootparams.WhoAmIPath, nil)
	if err != nil {
		return "", fmt.Errorf("racklet-boot URL %q: %w", server, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask racklet-boot for this node's name: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return "", fmt.Errorf("racklet-boot does not know this node (%s): %s", resp.Status, e.Error)
	}
	var w bootparams.WhoAmI
	if err := json.Unmarshal(data, &w); err != nil || w.Node == "" {
		return "", fmt.Errorf("racklet-boot's whoami answer %q has no node", data)
	}
	return w.Node, nil
}

// Health reports the booted node healthy to racklet-boot, from the
// hand-over file the initramfs agent left (bootparams.HandoverFile). It is
// what the image's racklet-health.service runs once the default target is
// reached; it tries up to attempts times, wait apart.
func Health(ctx context.Context, handover string, attempts int, wait time.Duration, log *slog.Logger) error {
	h, err := bootparams.ReadHandover(handover)
	if err != nil {
		return err
	}
	if h.Server == "" || h.Node == "" {
		return fmt.Errorf("boot hand-over %s names no server or node", handover)
	}
	rep := bootparams.Report{Node: h.Node, Stage: bootparams.StageHealthy, OK: true, Image: h.Image, Time: time.Now().UTC()}
	if !h.Attested {
		rep.Reason = "not attested"
	}
	hc := newHTTPClient()
	for i := 1; ; i++ {
		err = postReport(ctx, hc, h.Server, rep)
		if err == nil {
			return nil
		}
		if i >= attempts {
			return fmt.Errorf("report healthy to racklet-boot %s: %w", h.Server, err)
		}
		logger(log).Warn("health report not delivered; retrying", "node", h.Node, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
