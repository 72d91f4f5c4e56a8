// Package uki writes unified kernel images: systemd's EFI stub
// (linuxaa64.efi.stub from Debian's systemd-boot-efi) with the kernel, the
// initramfs and the command line added as PE sections, the layout
// systemd-stub(7) reads and ukify writes (.osrel, .cmdline, .linux,
// .initrd). UEFI firmware then boots kernel, initramfs and command line as
// one EFI binary, which is what an EDK2 PXE client needs: it cannot hand a
// bare kernel an initrd and a command line.
//
// Debian 12 has no ukify (systemd 253 brought it) and an x86-64 host's
// objcopy does not write arm64 PE files, so the sections are appended here:
// each new section header goes into the room the stub leaves after its
// section table, its data after the stub's bytes at the file alignment,
// its address after the stub's last section at the section alignment;
// NumberOfSections, SizeOfImage and SizeOfInitializedData follow, and the
// optional checksum is cleared (UEFI does not check it).
package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Section is one section to add: a name of at most 8 bytes and its bytes.
type Section struct {
	Name string
	Data []byte
}

// Sections returns the sections of a unified kernel image in systemd-stub's
// order; osRelease may be empty (no .osrel).
func Sections(osRelease, cmdline, kernel, initrd []byte) []Section {
	var s []Section
	if len(osRelease) > 0 {
		s = append(s, Section{".osrel", osRelease})
	}
	return append(s, Section{".cmdline", cmdline}, Section{".linux", kernel}, Section{".initrd", initrd})
}

// ErrStub means the stub is not a PE32+ EFI application this package can
// extend.
var ErrStub = errors.New("not a usable EFI stub")

// PE header offsets (PE/COFF specification).
const (
	peSigSize      = 4
	coffSize       = 20
	sectionHdrSize = 40
	optSizeOfInit  = 8 // SizeOfInitializedData
	optSizeOfImage = 56
	optCheckSum    = 64
	pe32PlusMagic  = 0x20b
	// initialized data, readable
	dataCharacteristics = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ
)

// Write writes stub with secs appended as new sections to w.
func Write(w io.Writer, stub []byte, secs []Section) error {
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStub, err)
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || oh.Magic != pe32PlusMagic || oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		return fmt.Errorf("%w: want a PE32+ EFI application", ErrStub)
	}
	le := binary.LittleEndian
	coff := int(le.Uint32(stub[0x3c:])) + peSigSize
	opt := coff + coffSize
	table := opt + int(f.FileHeader.SizeOfOptionalHeader)
	end := table + sectionHdrSize*len(f.Sections)
	room := int(oh.SizeOfHeaders)
	for _, s := range f.Sections {
		if s.Offset != 0 && int(s.Offset) < room {
			room = int(s.Offset)
		}
	}
	if end+sectionHdrSize*len(secs) > room {
		return fmt.Errorf("%w: no room for %d more section headers (%d bytes of headers)", ErrStub, len(secs), room)
	}
	salign, falign := oh.SectionAlignment, oh.FileAlignment
	if salign == 0 || falign == 0 || salign&(salign-1) != 0 || falign&(falign-1) != 0 {
		return fmt.Errorf("%w: alignments %#x/%#x", ErrStub, salign, falign)
	}
	var va uint64
	for _, s := range f.Sections {
		va = max(va, uint64(s.VirtualAddress)+uint64(max(s.VirtualSize, s.Size)))
	}
	out := bytes.Clone(stub)
	out = append(out, make([]byte, alignUp(len(out), int(falign))-len(out))...)
	var added uint64
	for i, s := range secs {
		if len(s.Name) == 0 || len(s.Name) > 8 {
			return fmt.Errorf("section name %q: want 1 to 8 bytes", s.Name)
		}
		va = uint64(alignUp(int(va), int(salign)))
		raw := alignUp(len(s.Data), int(falign))
		if va+uint64(len(s.Data)) > 1<<32-1 || uint64(len(out))+uint64(raw) > 1<<32-1 {
			return fmt.Errorf("section %s: the image would pass 4 GiB", s.Name)
		}
		h := out[end+sectionHdrSize*i : end+sectionHdrSize*(i+1)]
		clear(h)
		copy(h[0:8], s.Name)
		le.PutUint32(h[8:], uint32(len(s.Data)))  // VirtualSize
		le.PutUint32(h[12:], uint32(va))          // VirtualAddress
		le.PutUint32(h[16:], uint32(raw))         // SizeOfRawData
		le.PutUint32(h[20:], uint32(len(out)))    // PointerToRawData
		le.PutUint32(h[36:], dataCharacteristics) // Characteristics
		out = append(out, s.Data...)
		out = append(out, make([]byte, raw-len(s.Data))...)
		va += uint64(len(s.Data))
		added += uint64(raw)
	}
	le.PutUint16(out[coff+2:], uint16(len(f.Sections)+len(secs)))
	le.PutUint32(out[opt+optSizeOfImage:], uint32(alignUp(int(va), int(salign))))
	le.PutUint32(out[opt+optSizeOfInit:], le.Uint32(out[opt+optSizeOfInit:])+uint32(added))
	le.PutUint32(out[opt+optCheckSum:], 0)
	_, err = w.Write(out)
	return err
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }
