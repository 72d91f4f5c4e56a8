package pisim

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Step is one event of a boot: a DHCP message or one TFTP read.
type Step struct {
	At     time.Duration `json:"at_ns"`             // since the boot started
	Op     string        `json:"op"`                // dhcp-discover, dhcp-offer, dhcp-request, dhcp-ack, dhcp-nak, tftp-probe, tftp-read, http-get, verify, boot-mode
	File   string        `json:"file,omitempty"`    // TFTP path or HTTP URL as requested
	Bytes  int64         `json:"bytes,omitempty"`   // payload bytes received
	Result string        `json:"result"`            // ok, not found, early terminate, timeout, error: ...
	Took   time.Duration `json:"took_ns,omitempty"` // how long a TFTP read or HTTP GET took
	SHA256 string        `json:"sha256,omitempty"`  // of the bytes of a complete read
	Detail string        `json:"detail,omitempty"`  // addresses, xid, retries
}

// Result is the outcome of one simulated Pi boot.
type Result struct {
	Serial        string `json:"serial"` // 8 lowercase hex digits
	MAC           string `json:"mac"`
	Model         int    `json:"model"`
	Address       string `json:"address,omitempty"`     // leased address
	DHCPServer    string `json:"dhcp_server,omitempty"` // who leased it
	TFTPServer    string `json:"tftp_server,omitempty"`
	TFTPSource    string `json:"tftp_source,omitempty"` // siaddr, option 66 or option 54
	Proxy         bool   `json:"proxy"`                 // boot settings and address came from different offers
	Echoed97      bool   `json:"option97_echoed"`
	Prefix        string `json:"prefix"`         // the prefix the boot started with
	PrefixDropped bool   `json:"prefix_dropped"` // no start4.elf/start.elf under it
	KernelLoaded  bool   `json:"kernel_loaded"`
	Verdict       string `json:"verdict"`
	Error         string `json:"error,omitempty"`
	Files         int    `json:"files"`     // complete reads
	NotFound      int    `json:"not_found"` // reads answered "file not found"
	Bytes         int64  `json:"bytes"`     // payload bytes over TFTP (probes included) and HTTP
	Retries       int    `json:"retries"`   // TFTP retransmissions by the Pi
	// ModeTries counts the boot modes tried, restarts of BOOT_ORDER
	// included: 1 when the first mode booted.
	ModeTries int           `json:"mode_tries,omitempty"`
	DHCPTime  time.Duration `json:"dhcp_ns"`
	Total     time.Duration `json:"total_ns"`
	Steps     []Step        `json:"steps"`
}

// Verdicts.
const (
	VerdictKernel  = "kernel loaded"
	VerdictBootImg = "kernel loaded (boot.img)"
)

// String renders the result as a human timeline.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pi %s (Pi %d, %s): %s in %s\n", r.Serial, r.Model, r.MAC, r.Verdict, r.Total.Round(time.Millisecond))
	if r.Error != "" {
		fmt.Fprintf(&b, "  error: %s\n", r.Error)
	}
	if r.Address != "" {
		mode := "full"
		if r.Proxy {
			mode = "proxy"
		}
		fmt.Fprintf(&b, "  address %s from %s (%s), tftp %s (%s), option 97 echoed: %v\n",
			r.Address, r.DHCPServer, mode, r.TFTPServer, r.TFTPSource, r.Echoed97)
		drop := "kept"
		if r.PrefixDropped {
			drop = "dropped"
		}
		fmt.Fprintf(&b, "  prefix %q %s; %d files, %d not found, %d bytes, %d retries; dhcp %s\n",
			r.Prefix, drop, r.Files, r.NotFound, r.Bytes, r.Retries, r.DHCPTime.Round(time.Millisecond))
	}
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "  %9.3fs %-13s %-32s", s.At.Seconds(), s.Op, s.File)
		if s.Bytes > 0 {
			fmt.Fprintf(&b, " %10d B", s.Bytes)
		} else {
			b.WriteString("             ")
		}
		fmt.Fprintf(&b, " %s", s.Result)
		if s.Took > 0 {
			fmt.Fprintf(&b, " (%s)", s.Took.Round(time.Microsecond))
		}
		if s.Detail != "" {
			fmt.Fprintf(&b, " %s", s.Detail)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// WriteTable writes one line per result (serial, MAC, address, verdict,
// files, bytes, time) for "-o table".
func WriteTable(w io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tMODEL\tMAC\tADDRESS\tTFTP\tVERDICT\tFILES\tBYTES\tDHCP\tTOTAL")
	for _, r := range results {
		verdict := r.Verdict
		if r.Error != "" {
			verdict += ": " + r.Error
		}
		fmt.Fprintf(tw, "%s\tPi %d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", r.Serial, r.Model, r.MAC, orStr(r.Address, "-"),
			orStr(r.TFTPServer, "-"), verdict, r.Files, r.Bytes, r.DHCPTime.Round(time.Millisecond), r.Total.Round(time.Millisecond))
	}
	return tw.Flush()
}
