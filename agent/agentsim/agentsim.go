// Package agentsim simulates racklet-agent on a node for tests of racklet-boot
// at rack scale: it speaks the node API from the node's own address as the
// agent does (whoami with its A/B decision, the boot stage reports), reads
// the booted image's command line from racklet-boot's boot files, drives the
// node's HAT through the agent's own A/B code (agent.SlotAttempt,
// agent.SlotCommit), and ends each boot healthy, failed or silent, as the
// test tells it. It measures and fetches nothing else: kernels, roots and
// attestation are the real agent's tests.
package agentsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
)

// Outcome is how a simulated boot ends.
type Outcome struct {
	// Healthy reports the boot healthy (the health unit ran); else it is
	// reported failed with Reason, unless Silent.
	Healthy bool
	Reason  string
	// Silent sends no final report: the node hangs (racklet-boot's health
	// deadline ends the attempt).
	Silent bool
}

// Boot is what one simulated boot saw and did.
type Boot struct {
	Node string
	// Decision is racklet-boot's A/B decision in the whoami answer.
	Decision *bootparams.SlotBoot
	// Root is the root digest on the served command line (racklet.root):
	// which image's boot files the node got.
	Root string
	// HAT is the HAT's A/B state after the boot's attempt, nil without a HAT.
	HAT *bootparams.HATState
	// Refused: the HAT refused the trial's attempt (the boot failed).
	Refused bool
	Outcome Outcome
}

// Node is one simulated node's agent.
type Node struct {
	// Server is racklet-boot's base URL.
	Server string
	// HTTP reaches it from the node's own address (racklet-boot takes
	// reports only from there).
	HTTP *http.Client
	// Prefix names the node in boot file paths, as its firmware does (the
	// Pi serial, or the MAC with dashes).
	Prefix string
	// HAT opens the node's HAT link (its Pi port); nil: a node without one.
	HAT func(ctx context.Context) (io.ReadWriteCloser, error)
	// Stages sends every stage report of a real boot (network, attested,
	// root-fetched, root-verified, switched) before the final one; false
	// sends the final report only. As the real agent, a stage report that
	// cannot be delivered is no reason to stop.
	Stages bool
	// Tries is how often whoami, the command line and the final report
	// are tried before the boot fails (default 1), a second apart: the
	// health unit retries its report, and a real node whose initramfs
	// could not reach racklet-boot reboots and tries again.
	Tries int
}

// Run plays one boot: whoami, the served command line, the HAT's attempt,
// the reports, and decide's outcome (given the whoami answer and the
// served root digest). A healthy trial is then committed on the HAT, as the
// booted OS's health unit does.
func (n *Node) Run(ctx context.Context, decide func(who bootparams.WhoAmI, root string) Outcome) (Boot, error) {
	var b Boot
	var who bootparams.WhoAmI
	var cmdline bytes.Buffer
	err := n.retry(ctx, func() error {
		cmdline.Reset()
		if err := n.get(ctx, bootparams.WhoAmIPath, &who); err != nil {
			return fmt.Errorf("whoami: %w", err)
		}
		return n.fetch(ctx, "/boot/"+n.Prefix+"/cmdline.txt", &cmdline)
	})
	if err != nil {
		return b, err
	}
	b.Node, b.Decision = who.Node, who.Boot
	p, _, err := bootparams.Parse(cmdline.String())
	if err != nil {
		return b, fmt.Errorf("served cmdline.txt: %w", err)
	}
	b.Root = p.Root
	rep := bootparams.Report{Node: who.Node, Image: p.Root, OK: true}
	var hat *hatlink.Client
	if n.HAT != nil {
		rw, err := n.HAT(ctx)
		if err != nil {
			return b, fmt.Errorf("open the HAT: %w", err)
		}
		link := hatlink.NewLink(rw)
		defer link.Close()
		if hat, err = hatlink.NewClient(ctx, link); err != nil {
			return b, fmt.Errorf("talk to the HAT: %w", err)
		}
		st, err := agent.SlotAttempt(ctx, hat, who.Boot)
		switch {
		case errors.Is(err, agent.ErrAttemptRefused):
			b.HAT, b.Refused, rep.HAT = &st, true, &st
			b.Outcome = Outcome{Reason: err.Error()}
			rep.Stage, rep.OK, rep.Reason = bootparams.StageFailed, false, "attested: "+err.Error()
			return b, n.retry(ctx, func() error { return n.report(ctx, rep) })
		case err != nil:
			return b, err
		}
		b.HAT, rep.HAT = &st, &st
	}
	if n.Stages {
		for _, s := range []string{bootparams.StageNetwork, bootparams.StageAttested, bootparams.StageRootFetched, bootparams.StageRootVerified, bootparams.StageSwitched} {
			rep.Stage = s
			_ = n.report(ctx, rep) // not delivered: logged by a real agent, never fatal
		}
	}
	b.Outcome = decide(who, p.Root)
	switch {
	case b.Outcome.Silent:
		return b, nil
	case b.Outcome.Healthy:
		rep.Stage, rep.OK, rep.Reason = bootparams.StageHealthy, true, ""
	default:
		rep.Stage, rep.OK, rep.Reason = bootparams.StageFailed, false, b.Outcome.Reason
	}
	if err := n.retry(ctx, func() error { return n.report(ctx, rep) }); err != nil {
		return b, err
	}
	if b.Outcome.Healthy && hat != nil {
		if _, err := agent.SlotCommit(ctx, hat, who.Boot); err != nil {
			return b, err
		}
	}
	return b, nil
}

// retry runs fn up to Tries times, a second apart.
func (n *Node) retry(ctx context.Context, fn func() error) error {
	var err error
	for i := range max(n.Tries, 1) {
		if i > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(time.Second):
			}
		}
		if err = fn(); err == nil {
			return nil
		}
	}
	return err
}

// report posts one stage report.
func (n *Node) report(ctx context.Context, rep bootparams.Report) error {
	rep.Time = time.Now().UTC()
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url(bootparams.ReportPath), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return n.do(req, nil, "report "+rep.Stage)
}

func (n *Node) get(ctx context.Context, path string, out any) error {
	var buf bytes.Buffer
	if err := n.fetch(ctx, path, &buf); err != nil {
		return err
	}
	return json.Unmarshal(buf.Bytes(), out)
}

func (n *Node) fetch(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url(path), nil)
	if err != nil {
		return err
	}
	return n.do(req, w, "GET "+path)
}

func (n *Node) do(req *http.Request, w io.Writer, what string) error {
	resp, err := n.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: racklet-boot answered %s: %s", what, resp.Status, bytes.TrimSpace(msg))
	}
	if w == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		_, err = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	}
	return err
}

func (n *Node) url(path string) string { return strings.TrimSuffix(n.Server, "/") + path }
