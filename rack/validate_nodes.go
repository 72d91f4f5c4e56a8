package rack

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nodes checks each node and the uniqueness of names, MACs, serials and addresses.
func (v *validator) nodes() {
	names, macs, serials, addrs := firstUse{}, firstUse{}, firstUse{}, firstUse{}
	for i := range v.c.Nodes {
		n := &v.c.Nodes[i]
		p := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.Name == "":
			v.at(p+".name", "required: a DNS label like pi-01")
		case !isDNSLabel(n.Name):
			v.at(p+".name", "%q is not a DNS label: use lower-case letters, digits and '-', at most 63, not starting or ending with '-'", n.Name)
		default:
			v.claim(names, "name", n.Name, i)
		}
		switch n.Kind {
		case KindRPi4, KindRPi5, KindUEFIARM64, KindUEFIX8664, KindBIOS:
		case "":
			v.at(p+".kind", "required: one of rpi4, rpi5, uefi-arm64, uefi-x86_64, bios")
		default:
			v.at(p+".kind", "%q is not one of rpi4, rpi5, uefi-arm64, uefi-x86_64, bios", n.Kind)
		}
		if n.Serial != "" {
			switch {
			case n.Kind != "" && !n.Kind.IsPi():
				v.at(p+".serial", "only Raspberry Pi nodes have a serial; kind %s is identified by its mac", n.Kind)
			case !isHex8(n.Serial):
				v.at(p+".serial", "%q is not a Pi serial: exactly 8 hex digits (the low 32 bits, as in cat /proc/cpuinfo)", n.Serial)
			default:
				n.Serial = strings.ToLower(n.Serial)
				v.claim(serials, "serial", n.Serial, i)
			}
		}
		if n.AllowEEPROMUpdate != nil && n.Kind != "" && !n.Kind.IsPi() {
			v.at(p+".allowEEPROMUpdate", "only Raspberry Pi nodes have a bootloader EEPROM to update; remove it from this %s node", n.Kind)
		}
		if n.MAC != nil {
			v.claim(macs, "mac", n.MAC.String(), i)
		}
		if n.MAC == nil && n.Serial == "" {
			if n.Kind.IsPi() {
				v.at(p, "needs a mac or a serial: that is how racklet-boot recognises the Pi")
			} else {
				v.at(p, "needs a mac: that is how racklet-boot recognises the machine")
			}
		}
		if n.HATKey != "" {
			if err := checkHATKey(n.HATKey); err != nil {
				v.at(p+".hatKey", "not a HAT public key (want ed25519:<base64>, as racklet-agent identity prints it): %v", err)
			}
		}
		v.reservation(p+".address", n, addrs, i)
		v.boot(p+".boot", &n.Boot)
	}
}

// reservation checks a node's fixed address.
func (v *validator) reservation(path string, n *Node, addrs firstUse, i int) {
	a := n.Address
	if !a.IsValid() {
		return
	}
	sub := v.c.DHCP.Subnet
	switch {
	case sub.IsValid() && !sub.Contains(a):
		v.at(path, "%s is outside dhcp.subnet %s", a, sub)
	case sub.IsValid() && sub.Bits() < 31 && (a == sub.Addr() || a == lastAddr(sub)):
		v.at(path, "%s is the network or broadcast address of %s", a, sub)
	case a == v.c.Server.Address:
		v.at(path, "%s is server.address", a)
	case a == v.c.DHCP.Router:
		v.at(path, "%s is dhcp.router", a)
	default:
		v.claim(addrs, "address", a.String(), i)
	}
}

// boot checks a boot source: exactly one of dir, fat, image; local sources must exist.
func (v *validator) boot(path string, b *Boot) {
	var set []string
	for _, s := range []struct {
		name, val string
	}{{"dir", b.Dir}, {"fat", b.FAT}, {"image", b.Image}} {
		if s.val != "" {
			set = append(set, s.name)
		}
	}
	switch len(set) {
	case 0:
		v.at(path, "needs a boot source: one of dir (a directory), fat (a FAT image file) or image (an OCI reference)")
	case 1:
	default:
		v.at(path+"."+set[1], "set only one of dir, fat or image (found %s)", strings.Join(set, " and "))
	}
	if b.Dir != "" {
		orig := b.Dir
		b.Dir = absUnder(v.base, b.Dir)
		v.exists(path+".dir", orig, b.Dir, true)
	}
	if b.FAT != "" {
		orig := b.FAT
		b.FAT = absUnder(v.base, b.FAT)
		v.exists(path+".fat", orig, b.FAT, false)
	}
	if b.Image != "" && strings.ContainsAny(b.Image, " \t\r\n") {
		v.at(path+".image", "%q is not an image reference (it contains spaces)", b.Image)
	} else if b.Image != "" && len(set) == 1 {
		v.image(path+".image", b)
	}
	if b.RootHash != "" && !isHexLen(b.RootHash, 64) {
		v.at(path+".rootHash", "%q is not a SHA-256 dm-verity root hash (64 hex digits)", b.RootHash)
	}
	v.name(path+".kernel", b.Kernel)
	v.name(path+".efi", b.EFI)
	for i, f := range b.Initrd {
		v.name(fmt.Sprintf("%s.initrd[%d]", path, i), f)
	}
}

// exists checks that a local boot source is there and of the right type.
// orig is the path as written, p the absolute path it resolved to.
func (v *validator) exists(path, orig, p string, dir bool) {
	if orig != p {
		orig = fmt.Sprintf("%s (%s)", orig, p)
	}
	fi, err := os.Stat(p)
	switch {
	case err != nil && os.IsNotExist(err):
		v.at(path, "%s does not exist", orig)
	case err != nil:
		v.at(path, "cannot use %s: %v", orig, err)
	case dir && !fi.IsDir():
		v.at(path, "%s is not a directory", orig)
	case !dir && !fi.Mode().IsRegular():
		v.at(path, "%s is not a regular file (a FAT image)", orig)
	}
}

// name checks a file name inside a boot source: relative and staying inside it.
func (v *validator) name(path, s string) {
	if s == "" {
		return
	}
	clean := filepath.ToSlash(filepath.Clean(s))
	if strings.HasPrefix(s, "/") || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(s, 0) {
		v.at(path, "%q must be a name inside the boot source (no leading / and no ..)", s)
	}
}

// isHexLen reports whether s is exactly n hex digits.
func isHexLen(s string, n int) bool {
	if len(s) != n {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// HATKeyPrefix starts a HAT key in the config: "ed25519:" and the 32-byte
// Ed25519 public key in standard base64, as racklet-agent identity prints it
// (hatlink.EncodeKey writes the same form).
const HATKeyPrefix = "ed25519:"

// checkHATKey checks the form of a hatKey.
func checkHATKey(s string) error {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), HATKeyPrefix)
	if !ok {
		return fmt.Errorf("%q does not start with %q", s, HATKeyPrefix)
	}
	if b, err := base64.StdEncoding.DecodeString(rest); err != nil || len(b) != ed25519.PublicKeySize {
		return fmt.Errorf("%q: want %d bytes of standard base64 after %q", s, ed25519.PublicKeySize, HATKeyPrefix)
	}
	return nil
}
