// Package nodejoin is the node side of joining a Kubernetes cluster: the
// image's racklet-kube-join unit runs it (racklet-agent kube-join) once per
// boot. It reads the join facts the initramfs agent left on /run after the
// attested release (join.Info as JSON in SecretFile), removes them, runs
// `kubeadm join` with them, bounded in time, and returns a one-line result
// for the node's timeline. The token never touches a disk: /run is RAM.
package nodejoin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/racklet/racklet-boot/kube/join"
)

// SecretDir is where the initramfs agent leaves released secrets for the
// booted OS (tmpfs, mode 0700), one file per secret name.
const SecretDir = "/run/racklet/secrets"

// SecretFile is the join facts' file.
var SecretFile = filepath.Join(SecretDir, join.SecretName)

// Options say how to join; every field has a default.
type Options struct {
	// Secret is the file holding join.Info; default SecretFile.
	Secret string
	// Kubeadm is the kubeadm command; default /usr/bin/kubeadm.
	Kubeadm string
	// Node is the node name to register (--node-name); default the host name.
	Node string
	// Timeout bounds kubeadm join (default 10 minutes: TLS bootstrap on a
	// busy control plane, and a slow SD card, take a while).
	Timeout time.Duration
	// Output receives kubeadm's output (the unit's journal); default discards.
	Output io.Writer
}

// ErrNoSecret means there are no released join facts: the node did not
// attest in this boot (or they were used already).
var ErrNoSecret = errors.New("no kubernetes join facts were released to this boot")

// maxSecret bounds the secret file: a join.Info is a few hundred bytes.
const maxSecret = 16 << 10

// Join reads and removes the join facts, then runs kubeadm join. It returns
// what to report: nil and a summary on success, else the reason.
func Join(ctx context.Context, o Options) (summary string, err error) {
	if o.Secret == "" {
		o.Secret = SecretFile
	}
	if o.Kubeadm == "" {
		o.Kubeadm = "/usr/bin/kubeadm"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	info, err := readSecret(o.Secret)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	var tail bytes.Buffer
	cmd := exec.CommandContext(ctx, o.Kubeadm, info.Args(o.Node)...)
	cmd.Stdout = io.MultiWriter(o.Output, &tail)
	cmd.Stderr = cmd.Stdout
	// kubeadm in its own process group, all of it ended on timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %s", o.Timeout)
		}
		return "", fmt.Errorf("kubeadm join %s: %w: %s", info.APIServer, err, lastError(tail.String()))
	}
	return fmt.Sprintf("joined %s in %s", info.APIServer, time.Since(start).Round(time.Second)), nil
}

// readSecret reads, then removes, the join facts.
func readSecret(path string) (join.Info, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return join.Info{}, ErrNoSecret
	}
	if err != nil {
		return join.Info{}, fmt.Errorf("read kubernetes join facts: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	f.Close()
	if rerr := os.Remove(path); rerr != nil && err == nil {
		err = fmt.Errorf("remove the used join facts: %w", rerr)
	}
	if err != nil {
		return join.Info{}, fmt.Errorf("read kubernetes join facts: %w", err)
	}
	if len(data) > maxSecret {
		return join.Info{}, fmt.Errorf("kubernetes join facts %s: larger than %d bytes", path, maxSecret)
	}
	return join.ParseInfo(data)
}

// lastError picks the line of kubeadm's output that says why it failed:
// the last line starting with "error" (kubeadm's "error execution phase
// …"), else the last line.
func lastError(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); strings.HasPrefix(strings.ToLower(l), "error") {
			return truncate(l)
		}
	}
	return truncate(strings.TrimSpace(lines[len(lines)-1]))
}

func truncate(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
