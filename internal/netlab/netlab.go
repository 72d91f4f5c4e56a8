// Package netlab builds throwaway LANs out of Linux network namespaces and
// veth pairs: the `racklet-boot lab` command and the integration tests run
// servers and clients inside them, so no traffic ever leaves the machine.
//
// It drives iproute2 (`ip`) rather than netlink directly: every step is a
// command an operator can read in the log and replay by hand.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ErrNotRoot is returned when the caller cannot create namespaces.
var ErrNotRoot = errors.New("network namespaces need root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")

// Namespace is a named network namespace (as listed by `ip netns`).
type Namespace string

// Suffix returns n random hex characters, for names unique to one run.
func Suffix(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("netlab: crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b)[:n]
}

// Available reports why namespaces cannot be used here, or nil if they can.
func Available() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("iproute2's ip command is missing (apt-get install iproute2): %w", err)
	}
	return nil
}

// run runs a command and returns its combined output in the error.
func run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// AddNamespace creates a namespace with its loopback up.
func AddNamespace(ctx context.Context, name string) (Namespace, error) {
	if err := Available(); err != nil {
		return "", err
	}
	if err := run(ctx, "ip", "netns", "add", name); err != nil {
		return "", fmt.Errorf("create network namespace: %w", err)
	}
	ns := Namespace(name)
	if err := ns.Run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return "", err
	}
	return ns, nil
}

// Delete removes the namespace; processes still inside keep it alive until
// they exit, so callers stop their processes first.
func (n Namespace) Delete() {
	_ = run(context.Background(), "ip", "netns", "delete", string(n))
}

// Command returns a command that runs inside the namespace.
func (n Namespace) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", string(n), name}, args...)...)
}

// Run runs a command inside the namespace and waits for it (30 s at most).
func (n Namespace) Run(ctx context.Context, name string, args ...string) error {
	return run(ctx, "ip", append([]string{"netns", "exec", string(n), name}, args...)...)
}

// Output runs a command inside the namespace and returns its standard output.
func (n Namespace) Output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := n.Command(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), n, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// Link is one end of a veth pair.
type Link struct {
	NS   Namespace
	Name string
	Addr netip.Prefix // zero: no address
}

// Veth creates a veth pair between two namespaces, assigns the addresses
// given and brings both ends up.
func Veth(ctx context.Context, a, b Link) error {
	tmpA, tmpB := "rkv"+Suffix(8), "rkv"+Suffix(8)
	if err := run(ctx, "ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB); err != nil {
		return fmt.Errorf("create veth pair: %w", err)
	}
	for _, l := range []struct {
		tmp string
		Link
	}{{tmpA, a}, {tmpB, b}} {
		if err := run(ctx, "ip", "link", "set", l.tmp, "netns", string(l.NS)); err != nil {
			_ = run(ctx, "ip", "link", "delete", tmpA)
			return fmt.Errorf("move veth into %s: %w", l.NS, err)
		}
		if err := l.NS.Run(ctx, "ip", "link", "set", l.tmp, "name", l.Name); err != nil {
			return err
		}
		if l.Addr.IsValid() {
			if err := l.NS.Run(ctx, "ip", "addr", "add", l.Addr.String(), "dev", l.Name); err != nil {
				return err
			}
		}
		if err := l.NS.Run(ctx, "ip", "link", "set", l.Name, "up"); err != nil {
			return err
		}
	}
	return nil
}
