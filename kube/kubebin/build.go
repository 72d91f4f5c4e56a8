package kubebin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options say what to build. Every field has a default.
type Options struct {
	// Module is the helper module directory; default FindModule().
	Module string
	// Version is the Kubernetes version wanted ("v1.37.2"); it must be the
	// one the helper module requires. Default: the module's.
	Version string
	// Arch is the GOARCH of the binaries; default the host's.
	Arch string
	// Commands to build; default Node. Missing ones are built together in
	// one go build; cached ones are not rebuilt.
	Commands []string
	// CacheDir holds the built binaries; default DefaultCacheDir().
	CacheDir string
	// Go is the go command; default "go" on PATH, else $(go env GOROOT)/bin/go
	// of the toolchain running this program.
	Go string
	// Logger receives one line per build; default discards.
	Logger *slog.Logger
}

// Result is where the binaries are.
type Result struct {
	Dir     string        // the cache directory holding the commands
	Version string        // Kubernetes version
	Arch    string        // GOARCH
	Built   []string      // commands this call built (empty: all came from the cache)
	Took    time.Duration // time spent in go build (0 when nothing was built)
}

// Path is the file of one command.
func (r Result) Path(cmd string) string { return filepath.Join(r.Dir, cmd) }

// Build returns the wanted commands for o.Arch, building the missing ones.
// Concurrent calls for the same key wait for each other (a lock file) and
// a finished binary appears in the cache only once it is checked.
func Build(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	for _, c := range o.Commands {
		if !slices.Contains(All, c) {
			return Result{}, fmt.Errorf("build kubernetes: unknown command %q (known: %s)", c, strings.Join(All, ", "))
		}
	}
	modVersion, err := moduleVersion(ctx, o.Go, o.Module)
	if err != nil {
		return Result{}, err
	}
	if o.Version == "" {
		o.Version = modVersion
	}
	if o.Version != modVersion {
		return Result{}, fmt.Errorf("build kubernetes %s: the helper module %s pins %s; change its go.mod (require and replace lines) to build another version", o.Version, o.Module, modVersion)
	}
	key, err := cacheKey(ctx, o)
	if err != nil {
		return Result{}, err
	}
	r := Result{Dir: filepath.Join(o.CacheDir, o.Version+"-"+o.Arch+"-"+key), Version: o.Version, Arch: o.Arch}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return r, fmt.Errorf("kubernetes build cache: %w", err)
	}
	unlock, err := lock(ctx, r.Dir+".lock")
	if err != nil {
		return r, err
	}
	defer unlock()
	var missing []string
	for _, c := range o.Commands {
		if Check(r.Path(c), c, o.Version, o.Arch) != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return r, nil
	}
	start := time.Now()
	o.Logger.Info("building kubernetes commands", "version", o.Version, "arch", o.Arch, "commands", strings.Join(missing, ","), "file", r.Dir)
	if err := goBuild(ctx, o, r.Dir, missing); err != nil {
		return r, err
	}
	r.Built, r.Took = missing, time.Since(start)
	o.Logger.Info("built kubernetes commands", "version", o.Version, "arch", o.Arch, "took", r.Took.Round(time.Second))
	return r, nil
}

func (o *Options) defaults() error {
	var err error
	if o.Module == "" {
		if o.Module, err = FindModule(); err != nil {
			return err
		}
	}
	if o.Arch == "" {
		o.Arch = runtime.GOARCH
	}
	if len(o.Commands) == 0 {
		o.Commands = Node
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir()
	}
	if o.Go == "" {
		o.Go = "go"
		if _, err := exec.LookPath("go"); err != nil {
			o.Go = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// ldflags stamps the version the way the Kubernetes release build does, so
// `kubelet --version` prints it and kubeadm's version checks see it.
func ldflags(version string) string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	const v = "k8s.io/component-base/version."
	return fmt.Sprintf("-s -w -X %sgitVersion=%s -X %sgitMajor=%s -X %sgitMinor=%s", v, version, v, major, v, minor)
}

// goEnv is the environment of every go command run on the helper module.
func goEnv(arch string) []string {
	return append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
}

// goBuild builds cmds into dir with one go build, through a temporary
// directory so a killed build leaves nothing half-written in the cache.
func goBuild(ctx context.Context, o Options, dir string, cmds []string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return fmt.Errorf("kubernetes build: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-trimpath", "-ldflags", ldflags(o.Version), "-o", tmp + "/"}
	for _, c := range cmds {
		args = append(args, "k8s.io/kubernetes/cmd/"+c)
	}
	cmd := exec.CommandContext(ctx, o.Go, args...)
	cmd.Dir, cmd.Env = o.Module, goEnv(o.Arch)
	var out tail
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build of kubernetes %s for %s in %s: %w\n%s", o.Version, o.Arch, o.Module, err, out.String())
	}
	for _, c := range cmds {
		if err := Check(filepath.Join(tmp, c), c, o.Version, o.Arch); err != nil {
			return fmt.Errorf("kubernetes build produced a wrong binary: %w", err)
		}
		v, err := Version(ctx, filepath.Join(tmp, c), c, o.Arch)
		switch {
		case errors.Is(err, ErrCannotRun):
			o.Logger.Warn("cannot run the built binary to check its version stamp", "file", c, "err", err)
		case err != nil:
			return fmt.Errorf("kubernetes build produced a binary that does not run: %w", err)
		case v != o.Version:
			return fmt.Errorf("kubernetes build: %s reports version %q, want %s (the -X version stamp did not apply)", c, v, o.Version)
		}
		if err := os.Rename(filepath.Join(tmp, c), filepath.Join(dir, c)); err != nil {
			return fmt.Errorf("kubernetes build cache: %w", err)
		}
	}
	return nil
}

// moduleVersion is the k8s.io/kubernetes version the helper module requires.
func moduleVersion(ctx context.Context, goCmd, module string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "mod", "edit", "-json")
	cmd.Dir, cmd.Env = module, goEnv(runtime.GOARCH)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("read %s/go.mod: %w%s", module, err, stderrOf(err))
	}
	var mod struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("read %s/go.mod: %w", module, err)
	}
	for _, r := range mod.Require {
		if r.Path == "k8s.io/kubernetes" {
			return r.Version, nil
		}
	}
	return "", fmt.Errorf("%w: %s/go.mod does not require k8s.io/kubernetes", ErrNoModule, module)
}

// cacheKey hashes what decides the binaries' bytes besides version and arch.
func cacheKey(ctx context.Context, o Options) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(o.Module, f))
		if err != nil {
			return "", fmt.Errorf("kubernetes helper module: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	cmd := exec.CommandContext(ctx, o.Go, "env", "GOVERSION")
	cmd.Dir, cmd.Env = o.Module, goEnv(o.Arch)
	gv, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w%s", err, stderrOf(err))
	}
	fmt.Fprintf(h, "go %s\nldflags %s\ncgo 0 trimpath\n", bytes.TrimSpace(gv), ldflags(o.Version))
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// lock takes an exclusive lock on path, waiting until ctx ends.
func lock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kubernetes build lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("kubernetes build lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another kubernetes build (%s): %w", path, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// tail keeps the last 16 KiB written to it: the end of a failed build's output.
type tail struct{ b []byte }

var _ io.Writer = (*tail)(nil)

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if n := len(t.b) - 16<<10; n > 0 {
		t.b = t.b[n:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
