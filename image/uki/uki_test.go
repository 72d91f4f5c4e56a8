package uki

import (
	"bytes"
	"debug/pe"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/image/imagetest"
)

// debianStub is systemd's x86-64 EFI stub from Debian's systemd-boot-efi
// for this machine's architecture (the arm64 one has the same layout; the
// QEMU test boots that).
func debianStub(t *testing.T) []byte {
	t.Helper()
	dir := imagetest.DebianPackage(t, "systemd-boot-efi")
	b, err := os.ReadFile(filepath.Join(dir, "usr/lib/systemd/boot/efi/linuxx64.efi.stub"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWrite(t *testing.T) {
	stub := debianStub(t)
	orig := bytes.Clone(stub)
	kernel := bytes.Repeat([]byte("MZ kernel "), 100_001)
	secs := Sections([]byte("ID=debian\n"), []byte("console=ttyAMA0 racklet.kernel=vmlinuz"), kernel, []byte("070701 initramfs"))
	var out bytes.Buffer
	if err := Write(&out, stub, secs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stub, orig) {
		t.Fatal("Write changed the stub")
	}
	f, err := pe.NewFile(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatalf("the image does not parse as PE: %v", err)
	}
	st, _ := pe.NewFile(bytes.NewReader(stub))
	if len(f.Sections) != len(st.Sections)+4 {
		t.Fatalf("%d sections, want %d", len(f.Sections), len(st.Sections)+4)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	var end uint32
	for i, s := range f.Sections {
		if i > 0 && s.VirtualAddress < end {
			t.Errorf("section %s at %#x overlaps the one before (ends %#x)", s.Name, s.VirtualAddress, end)
		}
		end = s.VirtualAddress + s.VirtualSize
		if i >= len(st.Sections) && (s.VirtualAddress%oh.SectionAlignment != 0 || s.Offset%oh.FileAlignment != 0) {
			t.Errorf("section %s is not aligned: va %#x, offset %#x", s.Name, s.VirtualAddress, s.Offset)
		}
	}
	if oh.SizeOfImage < end || oh.SizeOfImage%oh.SectionAlignment != 0 || oh.CheckSum != 0 {
		t.Errorf("SizeOfImage %#x (sections end %#x), checksum %#x", oh.SizeOfImage, end, oh.CheckSum)
	}
	for _, want := range secs {
		s := f.Section(want.Name)
		if s == nil {
			t.Errorf("no section %s", want.Name)
			continue
		}
		got, err := s.Data()
		if err != nil || s.VirtualSize != uint32(len(want.Data)) || !bytes.Equal(got[:s.VirtualSize], want.Data) {
			t.Errorf("section %s: %d bytes (virtual %d), %v; want its %d bytes", want.Name, len(got), s.VirtualSize, err, len(want.Data))
		}
		if s.Characteristics != pe.IMAGE_SCN_CNT_INITIALIZED_DATA|pe.IMAGE_SCN_MEM_READ {
			t.Errorf("section %s characteristics %#x", want.Name, s.Characteristics)
		}
	}
	// The stub's own sections are where they were.
	for _, s := range st.Sections {
		a, b := f.Section(s.Name), s
		if a == nil || a.VirtualAddress != b.VirtualAddress || a.Offset != b.Offset || a.Size != b.Size {
			t.Errorf("stub section %s moved", s.Name)
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	stub := debianStub(t)
	for name, tc := range map[string]struct {
		stub []byte
		secs []Section
		want string
	}{
		"not a PE file":     {[]byte("#!/bin/sh\n"), nil, "not a usable EFI stub"},
		"long section name": {stub, []Section{{".initramfs", []byte("x")}}, "1 to 8 bytes"},
		"no header room":    {stub, make([]Section, 4096), "no room"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, tc.stub, tc.secs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
