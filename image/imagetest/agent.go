package imagetest

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// fakeMachines are the 64-bit architectures FakeAgent writes executables for.
var fakeMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "riscv64": elf.EM_RISCV}

// FakeAgent writes dir/racklet-agent-linux-<arch>: the smallest static ELF executable header
// for arch (one loadable segment, no interpreter), enough for the image builder's checks in
// unit tests, which never run it. Tests that boot use Agent.
func FakeAgent(dir, arch string) (string, error) {
	m, ok := fakeMachines[arch]
	if !ok {
		return "", fmt.Errorf("fake agent: no 64-bit ELF machine for %q", arch)
	}
	const ehsize, phsize, base = 64, 56, 0x400000
	body := []byte("racklet fake agent for " + arch + "\n")
	size := uint64(ehsize + phsize + len(body))
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_EXEC), Machine: uint16(m), Version: uint32(elf.EV_CURRENT),
		Entry: base + ehsize + phsize, Phoff: ehsize, Ehsize: ehsize, Phentsize: phsize, Phnum: 1, Shentsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	p := elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X), Vaddr: base, Paddr: base,
		Filesz: size, Memsz: size, Align: 0x1000}
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, p)
	b.Write(body)
	out := filepath.Join(dir, "racklet-agent-linux-"+arch)
	if err := os.WriteFile(out, b.Bytes(), 0o755); err != nil {
		return "", err
	}
	return out, nil
}

// Agent builds the real racklet-agent for linux/arch (static, stripped) into
// dir/racklet-agent-linux-<arch>, the name racklet-image looks for beside itself, and returns
// its path. It runs the go command in the test's module (the build cache makes a second
// build a link).
func Agent(dir, arch string) (string, error) {
	out := filepath.Join(dir, "racklet-agent-linux-"+arch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "github.com/racklet/racklet-boot/cmd/racklet-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build racklet-agent for linux/%s: %w\n%s", arch, err, b)
	}
	return out, nil
}
