package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/image/initramfs"
)

// Where the image puts racklet-agent and its health unit in the root file system.
const (
	AgentPath      = "usr/lib/racklet/racklet-agent"
	HealthUnit     = "racklet-health.service"
	healthUnitPath = "usr/lib/systemd/system/" + HealthUnit
	// healthWants is the symlink `systemctl enable` makes for the unit's WantedBy.
	healthWants = "etc/systemd/system/multi-user.target.wants/" + HealthUnit
	// HealthScript is the health report of a root whose init is not systemd (busybox init,
	// as in the small Debian base, runs /etc/init.d/S* from its rcS in order).
	HealthScript = "etc/init.d/S99racklet-health"
)

// healthScriptText is the health unit for an init that runs /etc/init.d/S* scripts last to
// first: the same report, after every other start script.
var healthScriptText = `#!/bin/sh
# Reports this node healthy to racklet-boot (written by racklet-image): the init ran its
# start scripts. Booted without racklet's initramfs there is no hand-over and nothing to do.
[ -e ` + bootparams.HandoverFile + ` ] || exit 0
exec /` + AgentPath + ` health
`

// healthUnitText runs `racklet-agent health` once the real init reached its default target:
// it reads the hand-over the initramfs agent left in /run and reports the node healthy to
// racklet-boot. Booted without racklet's initramfs there is no hand-over and nothing to do.
var healthUnitText = `[Unit]
Description=Report this node healthy to racklet-boot
After=multi-user.target
ConditionPathExists=` + bootparams.HandoverFile + `

[Service]
Type=oneshot
ExecStart=/` + AgentPath + ` health

[Install]
WantedBy=multi-user.target
`

// ErrNoAgent means racklet-agent for the image's architecture was not found.
var ErrNoAgent = errors.New("no racklet-agent for the image")

// agentFor returns the racklet-agent executable of the spec, or the default one beside the
// running executable, checked to be static and of the image's architecture.
func agentFor(spec Spec, arch string) (string, error) {
	p := spec.Agent
	if p == "" {
		name := "racklet-agent-linux-" + arch
		exe, err := os.Executable()
		if err == nil {
			p = filepath.Join(filepath.Dir(exe), name)
		}
		if _, serr := os.Stat(p); err != nil || serr != nil {
			return "", fmt.Errorf("%w: no %s beside %s; build it with\n"+
				"  CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -trimpath -ldflags='-s -w' -o %s ./cmd/racklet-agent\n"+
				"or name one with --agent", ErrNoAgent, name, exe, arch, p)
		}
	}
	if err := initramfs.CheckInit(p, arch); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoAgent, err)
	}
	return p, nil
}

// addAgent puts racklet-agent and its enabled health unit into the root file system; a root
// without systemd as its init gets the health script (HealthScript) instead.
func addAgent(b *flatten.Builder, agent string) error {
	f, err := os.Open(agent)
	if err != nil {
		return fmt.Errorf("read racklet-agent: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read racklet-agent: %w", err)
	}
	if !systemdInit(b.Tree()) {
		return errors.Join(
			b.AddFile(AgentPath, 0o755, f, fi.Size()),
			b.AddFile(HealthScript, 0o755, strings.NewReader(healthScriptText), int64(len(healthScriptText))),
		)
	}
	return errors.Join(
		b.AddFile(AgentPath, 0o755, f, fi.Size()),
		b.AddFile(healthUnitPath, 0o644, strings.NewReader(healthUnitText), int64(len(healthUnitText))),
		b.AddSymlink(healthWants, "/"+healthUnitPath),
	)
}

// systemdInit reports whether the root's /sbin/init is systemd (systemd-sysv's link), or the
// root has no init at all (a base for a later layer: systemd is racklet's default).
func systemdInit(tree *flatten.Tree) bool {
	for _, p := range []string{"sbin/init", "usr/sbin/init"} {
		n := tree.Lookup(p)
		if n == nil {
			continue
		}
		if n.Inode.Kind == flatten.Symlink {
			return strings.Contains(n.Inode.Target, "systemd")
		}
		return false
	}
	return true
}

// buildInitramfs writes the initramfs of the tree's kernel with the agent as /init.
func buildInitramfs(ctx context.Context, tree *flatten.Tree, spec Spec, agent, arch, kver string, epoch int64, log *slog.Logger) ([]byte, *initramfs.Result, error) {
	var b bytes.Buffer
	var files map[string][]byte
	if spec.ServerKey != "" {
		files = map[string][]byte{strings.TrimPrefix(bootparams.ServerKeyFile, "/"): []byte(strings.TrimSpace(spec.ServerKey) + "\n")}
	}
	res, err := initramfs.Build(ctx, &b, initramfs.Options{Root: tree.FS(), KernelVersion: kver, Init: agent, Arch: arch,
		Modules: spec.Modules, ModTime: epoch, Files: files})
	if err != nil {
		return nil, nil, fmt.Errorf("build initramfs: %w", err)
	}
	log.Info("initramfs built", "bytes", b.Len(), "raw_bytes", res.RawSize, "compression", res.Compression,
		"modules", len(res.Modules), "builtin", strings.Join(res.Builtin, ","), "not_in_kernel", strings.Join(res.Missing, ","))
	return b.Bytes(), res, nil
}

// kernelInode finds boot/vmlinuz-<version> in the tree (symlinks followed), nil when absent.
func kernelInode(tree *flatten.Tree, kver string) *flatten.Inode {
	if kver == "" {
		return nil
	}
	f, err := tree.FS().Open("boot/vmlinuz-" + kver)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	in, _ := fi.Sys().(*flatten.Inode)
	return in
}
