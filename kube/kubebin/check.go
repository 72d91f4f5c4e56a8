package kubebin

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"strings"
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
// architecture's binary can be checked): an ELF executable of arch's
// machine whose Go build information names k8s.io/kubernetes/cmd/<cmd>, the
// module at version, and the version stamp in its link flags.
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
	if settings["GOOS"] != "linux" || settings["GOARCH"] != arch {
		return fmt.Errorf("%s: %w: built for %s/%s, want linux/%s", path, ErrWrongBinary, settings["GOOS"], settings["GOARCH"], arch)
	}
	if !strings.Contains(settings["-ldflags"], "k8s.io/component-base/version.gitVersion="+version+" ") &&
		!strings.HasSuffix(settings["-ldflags"], "k8s.io/component-base/version.gitVersion="+version) {
		return fmt.Errorf("%s: %w: its version stamp is not %s (link flags %q)", path, ErrWrongBinary, version, settings["-ldflags"])
	}
	return nil
}
