package kubebin

import (
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// ErrWrongBinary means a file is not the wanted command, version or architecture.
var ErrWrongBinary = errors.New("not the wanted kubernetes binary")

// elfMachine maps GOARCH to the ELF machine of its binaries.
var elfMachine = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"arm":     elf.EM_ARM,
	"riscv64": elf.EM_RISCV,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
}

// Check reports whether path is command cmd of Kubernetes version for
// linux/arch, from the file alone (no need to run it, so a foreign
// architecture's binary can be checked): a static ELF executable of arch's
// machine whose Go build information names k8s.io/kubernetes/cmd/<cmd> and
// the module at version. (With -trimpath the Go command leaves -ldflags out
// of the build information, so the version stamp is checked by running the
// binary: Version.)
func Check(path, cmd, version, arch string) error {
	want, ok := elfMachine[arch]
	if !ok {
		return fmt.Errorf("%s: %w: unknown architecture %q", path, ErrWrongBinary, arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != want || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s: %w: an ELF %s for %s, want an executable for %s (%s)", path, ErrWrongBinary, f.Type, f.Machine, want, arch)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: %w: no Go build information: %v", path, ErrWrongBinary, err)
	}
	if p := "k8s.io/kubernetes/cmd/" + cmd; bi.Path != p {
		return fmt.Errorf("%s: %w: it is %s, want %s", path, ErrWrongBinary, bi.Path, p)
	}
	mod := ""
	for _, d := range append(bi.Deps, &bi.Main) {
		if d.Path == "k8s.io/kubernetes" {
			mod = d.Version
		}
	}
	if mod != version {
		return fmt.Errorf("%s: %w: built from k8s.io/kubernetes %q, want %s", path, ErrWrongBinary, mod, version)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["GOOS"] != "linux" || settings["GOARCH"] != arch || settings["CGO_ENABLED"] != "0" {
		return fmt.Errorf("%s: %w: built for %s/%s with CGO_ENABLED=%s, want a static linux/%s build", path, ErrWrongBinary,
			settings["GOOS"], settings["GOARCH"], settings["CGO_ENABLED"], arch)
	}
	return nil
}

// versionArgs make each command print its version.
var versionArgs = map[string][]string{
	Kubelet: {"--version"}, KubeAPIServer: {"--version"}, KubeControllerManager: {"--version"}, KubeScheduler: {"--version"},
	Kubeadm: {"version", "-o", "short"}, Kubectl: {"version", "--client"},
}

// ErrCannotRun means a binary of another architecture cannot be run here
// (no qemu-<arch>-static).
var ErrCannotRun = errors.New("cannot run a binary of that architecture here")

// Version runs command cmd at path, natively or, for another architecture,
// through qemu-user (qemu-aarch64-static for arm64), and returns the version
// it prints: what the -X version stamp set.
func Version(ctx context.Context, path, cmd, arch string) (string, error) {
	args, ok := versionArgs[cmd]
	if !ok {
		return "", fmt.Errorf("%s: unknown command %q", path, cmd)
	}
	name := path
	if arch != runtime.GOARCH {
		q, ok := qemuArch[arch]
		if !ok {
			return "", fmt.Errorf("%s: %w (%s)", path, ErrCannotRun, arch)
		}
		qemu, err := exec.LookPath("qemu-" + q + "-static")
		if err != nil {
			return "", fmt.Errorf("%s: %w: %v", path, ErrCannotRun, err)
		}
		name, args = qemu, append([]string{path}, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w%s", path, strings.Join(args, " "), err, stderrOf(err))
	}
	v := strings.TrimSpace(string(out))
	v = strings.TrimPrefix(v, "Kubernetes ")
	v = strings.TrimPrefix(v, "Client Version: ")
	if i := strings.IndexAny(v, " \n"); i >= 0 {
		v = v[:i]
	}
	return v, nil
}

// qemuArch names qemu-user's binary for a GOARCH.
var qemuArch = map[string]string{"arm64": "aarch64", "amd64": "x86_64", "arm": "arm", "riscv64": "riscv64"}
