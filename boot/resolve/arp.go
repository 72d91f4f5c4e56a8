package resolve

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// ARPTable implements Clients over the Linux neighbour table as
// /proc/net/arp shows it. It only knows IPv4 clients the kernel has talked
// to recently, which is every client that just sent us a TFTP or HTTP
// request on the local link. Complete entries only.
type ARPTable struct {
	// Path is the table to read; default /proc/net/arp.
	Path string
}

var _ Clients = ARPTable{}

// maxARPTable bounds how much of the table is read.
const maxARPTable = 4 << 20

// MACForAddr looks the address up in the table.
func (t ARPTable) MACForAddr(_ context.Context, a netip.Addr) (net.HardwareAddr, bool) {
	a = a.Unmap()
	if !a.Is4() {
		return nil, false
	}
	p := t.Path
	if p == "" {
		p = "/proc/net/arp"
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxARPTable))
	if err != nil {
		return nil, false
	}
	return lookupARP(b, a)
}

// ATF_COM marks a complete neighbour entry in /proc/net/arp's Flags column.
const arpFlagComplete = 0x2

// lookupARP finds a in a /proc/net/arp dump:
//
//	IP address       HW type     Flags       HW address            Mask     Device
//	10.0.0.101       0x1         0x2         dc:a6:32:01:36:c2     *        eth0
func lookupARP(table []byte, a netip.Addr) (net.HardwareAddr, bool) {
	sc := bufio.NewScanner(bytes.NewReader(table))
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue // header
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil || ip != a {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(fields[2], "0x"), 16, 32)
		if err != nil || flags&arpFlagComplete == 0 {
			continue
		}
		mac, err := net.ParseMAC(fields[3])
		if err != nil || len(mac) != 6 || isZeroMAC(mac) {
			continue
		}
		return mac, true
	}
	return nil, false
}

func isZeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}
