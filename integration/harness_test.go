package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// bin is the directory holding the binaries built once for the whole run.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "racklet-it-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/...")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the commands:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// need skips (or, in CI, fails) the test unless it runs as root with every
// tool on PATH.
func need(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	if err := netlab.Available(); err != nil {
		missing = append(missing, err.Error())
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat(tool); err2 != nil {
				missing = append(missing, tool)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	testutil.Unavailable(t, "needs "+strings.Join(missing, ", "))
}

// newSwitch makes a switch namespace removed when the test ends.
func newSwitch(t *testing.T) *netlab.Switch {
	t.Helper()
	sw, err := netlab.NewSwitch(context.Background(), "rki-sw-"+netlab.Suffix(6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	return sw
}

// newHost makes a host namespace removed when the test ends.
func newHost(t *testing.T, role string) netlab.Namespace {
	t.Helper()
	ns, err := netlab.AddNamespace(context.Background(), "rki-"+role+"-"+netlab.Suffix(6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Delete)
	return ns
}

// proc is a background process whose output is kept for assertions.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

// Output returns everything the process printed so far.
func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs a command in a namespace in the background; it is killed when
// the test ends and its output is logged if the test failed.
func start(t *testing.T, ns netlab.Namespace, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), done: make(chan struct{})}
	p.cmd = ns.Command(context.Background(), name, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", p.name, tail(p.Output(), 6000))
		}
	})
	return p
}

// Stop sends SIGTERM and waits up to 10 s, then kills.
func (p *proc) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Exited reports whether the process has ended.
func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitOutput waits until the process printed a line containing want.
func (p *proc) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), want) {
			return
		}
		if p.Exited() {
			t.Fatalf("%s exited before printing %q:\n%s", p.name, want, tail(p.Output(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not print %q within %s:\n%s", p.name, want, timeout, tail(p.Output(), 4000))
}

// lines returns the lines of s containing every one of the substrings.
func lines(s string, subs ...string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		for _, sub := range subs {
			if !strings.Contains(sc.Text(), sub) {
				continue next
			}
		}
		out = append(out, sc.Text())
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// writeFile writes a file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFileT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
