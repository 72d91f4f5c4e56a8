package pisim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

// Sentinel errors of a TFTP read.
var (
	// ErrNotFound means the server answered ERROR 1 (file not found): the
	// normal answer to the firmware's existence probes.
	ErrNotFound = errors.New("tftp: file not found")
	// ErrFileTimeout means the whole file did not arrive within the
	// firmware's TFTP_FILE_TIMEOUT: on a real Pi, a failed boot.
	ErrFileTimeout = errors.New("tftp: file not complete within TFTP_FILE_TIMEOUT")
)

// TFTPError is an ERROR packet from the server other than "file not found".
type TFTPError struct {
	Code uint16
	Msg  string
}

func (e *TFTPError) Error() string { return fmt.Sprintf("tftp: server error %d: %s", e.Code, e.Msg) }

// readOpts parameterise one TFTP read.
type readOpts struct {
	Probe   bool          // end with ERROR 0 "Early terminate" after the OACK (or DATA 1)
	Blksize int           // blksize to ask for
	Timeout time.Duration // the whole file must arrive within it
	Retry   time.Duration // retransmit after this much silence
}

// readStats describe one TFTP read.
type readStats struct {
	Bytes   int64
	Tsize   int64 // from the OACK; -1 when the server sent none
	Blksize int   // agreed block size
	Retries int   // retransmissions by the client
	Probed  bool  // ended on purpose with "Early terminate"
}

// tftpRead reads file from server over conn into w, lock-step, the way the
// Pi firmware does: RRQ octet with tsize 0 and blksize, ACK 0 for an OACK,
// block numbers rolling over to 0.
func tftpRead(ctx context.Context, conn net.PacketConn, server *net.UDPAddr, file string, o readOpts, w io.Writer) (readStats, error) {
	st := readStats{Tsize: -1, Blksize: 512}
	start := time.Now()
	deadline := start.Add(o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	last := rrqPacket(file, "tsize", "0", "blksize", strconv.Itoa(o.Blksize))
	dst := server
	if _, err := conn.WriteTo(last, dst); err != nil {
		return st, fmt.Errorf("tftp: send read request for %s: %w", file, err)
	}
	var peer *net.UDPAddr
	var expect uint16 = 1
	buf := make([]byte, 4+max(o.Blksize, 512)+1)
	for {
		if err := conn.SetReadDeadline(minTime(time.Now().Add(o.Retry), deadline)); err != nil {
			return st, err
		}
		n, from, err := conn.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if !time.Now().Before(deadline) {
				if cerr := ctx.Err(); cerr != nil {
					return st, cerr
				}
				return st, fmt.Errorf("%w (%s after %s, %d bytes)", ErrFileTimeout, file, o.Timeout, st.Bytes)
			}
			st.Retries++
			if _, err := conn.WriteTo(last, dst); err != nil {
				return st, fmt.Errorf("tftp: retransmit: %w", err)
			}
			continue
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return st, cerr
			}
			return st, fmt.Errorf("tftp: receive: %w", err)
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || !ua.IP.Equal(server.IP) {
			continue
		}
		if peer == nil {
			peer = ua
		} else if ua.Port != peer.Port {
			conn.WriteTo(errorPacket(tftpErrUnknownID, "Unknown transfer ID"), ua)
			continue
		}
		pkt, err := parseTFTP(buf[:n])
		if err != nil {
			conn.WriteTo(errorPacket(tftpErrIllegalOp, "Illegal TFTP operation"), peer)
			return st, fmt.Errorf("tftp: %s: %w", file, err)
		}
		switch pkt.Op {
		case opERROR:
			if pkt.Code == tftpErrNotFound {
				return st, ErrNotFound
			}
			return st, &TFTPError{Code: pkt.Code, Msg: pkt.Msg}
		case opOACK:
			if expect != 1 || st.Bytes > 0 {
				continue // a late duplicate
			}
			if err := applyOACK(&st, pkt.Opts, o.Blksize); err != nil {
				conn.WriteTo(errorPacket(tftpErrOptions, err.Error()), peer)
				return st, fmt.Errorf("tftp: %s: %w", file, err)
			}
			if len(buf) < 4+st.Blksize+1 {
				buf = make([]byte, 4+st.Blksize+1)
			}
			if o.Probe {
				st.Probed = true
				_, err := conn.WriteTo(errorPacket(tftpErrUndefined, earlyTerminate), peer)
				return st, err
			}
			last, dst = ackPacket(0), peer
			if _, err := conn.WriteTo(last, dst); err != nil {
				return st, err
			}
		case opDATA:
			if pkt.Block != expect {
				if pkt.Block == expect-1 { // our ACK was lost: say it again
					st.Retries++
					conn.WriteTo(ackPacket(pkt.Block), peer)
				}
				continue
			}
			if len(pkt.Data) > st.Blksize {
				return st, fmt.Errorf("tftp: %s: block %d has %d bytes, over blksize %d", file, pkt.Block, len(pkt.Data), st.Blksize)
			}
			if _, err := w.Write(pkt.Data); err != nil {
				return st, err
			}
			st.Bytes += int64(len(pkt.Data))
			if o.Probe && expect == 1 {
				st.Probed = true
				_, err := conn.WriteTo(errorPacket(tftpErrUndefined, earlyTerminate), peer)
				return st, err
			}
			last, dst = ackPacket(pkt.Block), peer
			if _, err := conn.WriteTo(last, dst); err != nil {
				return st, err
			}
			if len(pkt.Data) < st.Blksize {
				if st.Tsize >= 0 && st.Tsize != st.Bytes {
					return st, fmt.Errorf("tftp: %s: got %d bytes, server announced tsize %d", file, st.Bytes, st.Tsize)
				}
				return st, nil
			}
			expect++ // wraps from 65535 to 0, as the firmware expects
		}
	}
}

// applyOACK checks the options a server acknowledged.
func applyOACK(st *readStats, opts map[string]string, asked int) error {
	for k, v := range opts {
		switch k {
		case "blksize":
			n, err := strconv.Atoi(v)
			if err != nil || n < 8 || n > asked {
				return fmt.Errorf("server acknowledged blksize %q, asked for %d", v, asked)
			}
			st.Blksize = n
		case "tsize":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("server acknowledged tsize %q", v)
			}
			st.Tsize = n
		default:
			return fmt.Errorf("server acknowledged option %q the client never asked for", k)
		}
	}
	return nil
}
