package dhcp

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Listen opens a UDP socket on 0.0.0.0:port bound to the interface iface
// (SO_BINDTODEVICE, so broadcast replies leave through it), with
// SO_BROADCAST and SO_REUSEADDR. An empty iface binds no device. The socket
// belongs to the network namespace of the calling thread.
func Listen(ctx context.Context, iface string, port int) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if iface != "" {
				if serr = unix.BindToDevice(int(fd), iface); serr != nil {
					serr = fmt.Errorf("bind to interface %s: %w", iface, serr)
					return
				}
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
				serr = fmt.Errorf("set SO_BROADCAST: %w", serr)
				return
			}
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				serr = fmt.Errorf("set SO_REUSEADDR: %w", serr)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := lc.ListenPacket(ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return nil, fmt.Errorf("listen for dhcp on %s port %d: %w", ifaceName(iface), port, err)
	}
	return conn, nil
}

func ifaceName(iface string) string {
	if iface == "" {
		return "all interfaces"
	}
	return "interface " + iface
}

// ListenAndServe serves DHCP on iface: port 67, and port 4011 for PXE
// boot-server requests, in both modes (EDK2 asks 4011 for its boot file
// after a full-mode ACK too). It returns nil when ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, iface string) error {
	ports := []int{ServerPort, PXEPort}
	conns := make([]net.PacketConn, 0, len(ports))
	for _, p := range ports {
		c, err := Listen(ctx, iface, p)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return err
		}
		conns = append(conns, c)
	}
	s.log().Info("dhcp listening", "interface", iface, "ports", ports, "mode", s.settings.Load().Mode)
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range conns {
		g.Go(func() error { return s.Serve(ctx, c) })
	}
	return g.Wait()
}
