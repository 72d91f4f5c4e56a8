// Package tftp is racklet-boot's read-only TFTP server (RFC 1350) with the
// option extensions boot firmware uses: blksize (RFC 2348), tsize and timeout
// (RFC 2349) and windowsize (RFC 7440). Files come from a resolve.Opener, so
// the server never knows about boot sources or nodes.
//
// # Why our own request handling and sender
//
// The package started on github.com/pin/tftp/v3 v3.1.0, as the design asks,
// and still uses its netascii translator. Its server could not be wrapped
// into what racklet-boot needs, because the missing parts sit inside its
// unexported send loop and request dispatch:
//
//   - no windowsize: its option handling deletes every option it does not
//     know, so a wrapper cannot even see the request's windowsize, and its
//     experimental "anticipate" mode sends windows without negotiating them;
//   - error codes are fixed: every handler error goes out as ERROR 1, a WRQ
//     is refused with ERROR 1 instead of 2, and unknown opcodes get no reply;
//   - blksize below 512 is refused although RFC 2348 allows 8, the timeout
//     option is dropped, and a client ERROR surfaces only as a formatted
//     error string ("sending block 0: code=0, error: Early terminate"), so a
//     Raspberry Pi or EDK2 size probe can only be told apart by string match;
//   - no context, no cap on concurrent transfers, and Shutdown waits for
//     every transfer to finish.
//
// A layer over the library would have had to re-parse every request to
// recover those facts and still could not change what goes on the wire, so
// this package parses requests and negotiates options itself (request.go).
//
// # The send path
//
// Lock-step TFTP costs a round trip per block, so a server's cost is per
// packet, and a boot storm is a few hundred thousand packets. A profile of
// the first design (a goroutine per transfer blocking on its socket, a
// read(2) per block) spent a third of its time in the Go scheduler's
// netpoller waking those goroutines, a quarter in the ACK read, a quarter
// in the DATA write and a tenth reading the file. Now:
//
//   - One loop (loop.go) runs every transfer on one goroutine, as dnsmasq
//     does: each transfer keeps its own UDP socket connected to its client
//     (the transfer ID), all in one level-triggered epoll set. An ACK is one
//     epoll_wait, one read(2) and the next block's one write(2): no
//     goroutine hand-off, no deadline timer per block (timers live in one
//     heap that sets epoll_wait's timeout) and no allocation.
//   - Blocks are copied out of a read-only mapping of the file, shared by
//     every transfer of that file version (source.go): a hundred Pis
//     fetching one kernel read the same page-cache pages, with no system
//     call per block. A boot file inside a FAT image is a section of the
//     image's mapping. Other contents use pread(2) (io.ReaderAt) or seek
//     and read. A file truncated under a running transfer fails that
//     transfer (the copy runs with panic-on-fault), never the server.
//   - Resolving the name, opening the file and making the socket happen off
//     the loop, in a goroutine per request; the prepared transfer reaches
//     the loop through an inbox and an eventfd. Logs and events are written
//     off the loop too.
//   - Per-transfer state is a plain state machine (xfer.go) that does no
//     I/O of its own, so its windows, retries and bounds are tested with a
//     fake clock.
//
// sendmmsg(2) and UDP GSO do not fit lock-step TFTP: each transfer has its
// own socket and one packet in flight, so there is nothing to batch; the
// loop's cost per block is already one read and one write.
//
// # Behaviour
//
//   - Read-only: WRQ gets ERROR 2 (access violation); an unknown or stray
//     opcode on the listening port gets ERROR 4; client ERRORs there are
//     ignored.
//   - Requests: names longer than 255 bytes are refused (ERROR 2), modes other
//     than octet and netascii get ERROR 4, a malformed request or a duplicate
//     option gets ERROR 4 / ERROR 8. Resolver errors map to ERROR 1 (wrapping
//     os.ErrNotExist), ERROR 2 (wrapping resolve.ErrRefused) or ERROR 0 with a
//     short message.
//   - Options: blksize below 8 or unparsable is ignored (the transfer runs at
//     512); above the cap it is lowered to the cap, which is MaxBlksize and,
//     when the receiving interface is known, its MTU minus 32 (IPv4 + UDP +
//     TFTP headers), so blocks are never IP-fragmented. tsize 0 on a read is
//     answered with the size for octet transfers; negative or garbage values
//     are ignored. timeout 1..10 s replaces the retransmit timeout for that
//     transfer. windowsize 1..65535 is lowered to MaxWindow; netascii
//     transfers stay lock-step (translated bytes cannot be re-read by seek).
//   - Windowed sending (RFC 7440 section 4): send up to windowsize blocks,
//     then wait; an ACK of the window's last block moves on, an ACK of an
//     earlier block resends from the block after it, a timeout resends the
//     window with exponential backoff (Timeout doubling, capped at 4x) for at
//     most Retries attempts. A repeated ACK of the block before the window is
//     ignored rather than answered (no Sorcerer's Apprentice), and an ACK of
//     any block already sent counts, even past the current window. The
//     window is never shrunk: RFC 7440 receivers acknowledge only after
//     windowsize blocks or their own timeout, so a shorter window stalls
//     them. Block numbers roll over from 65535 to 0.
//   - windowsize times blksize must fit the client's socket receive buffer
//     (about 200 KiB by default on Linux): atftp asking for blksize 65464
//     and windowsize 4 loses the 4th block of every window on loopback and
//     crawls from timeout to timeout, against atftpd just as against this
//     server. Firmware asks for small windows (EDK2: 4 x 1468 bytes).
//   - Probes: a client ERROR before any data block was acknowledged (the
//     Raspberry Pi's "Early terminate" after the OACK, EDK2's "User aborted
//     the transfer") ends the transfer with outcome "probe", not an error.
//   - Bounds and admission (docs/tftp.md has the rules and the reasoning):
//     at most MaxTransfers open transfers and MaxPerClient per client
//     address; past either, requests get ERROR 0 "server busy" and a
//     rate-limited warning is logged. A retransmitted RRQ (same client port,
//     same file) is dropped: the transfer it started answers. At most
//     MaxNodes clients are served at once; another client's requests, misses
//     included, are held unanswered until one of them is done, or as long as
//     the file can still arrive within FileBudget at the measured rate (at
//     most MaxHold), after which each is served anyway. The held request
//     closest to its limit lets its client in first. A client that answers
//     none of its packets by the first retransmission loses its place.
//   - The timeout option is honoured up to MaxTimeoutOption (10 s); a
//     larger one is left out of the OACK. A client not heard from for
//     IdleTimeout (19 s) is dropped whatever its timeout, and no transfer
//     lives longer than MaxDuration (5 min).
//
// Each transfer ends with one log line, one event to Events (when the
// resolver named a node) and Metrics updates.
package tftp
