package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// runProxy relays TFTP between clients on listen and the server at
// upstream, holding every datagram for delay in each direction, so that
// loopback behaves like a LAN with a round-trip time of 2*delay. Replies to
// a client leave from the listening port whatever transfer port the server
// chose, which TFTP clients accept as the transfer's TID.
func runProxy(ctx context.Context, listen, upstream string, delay time.Duration) error {
	la, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return fmt.Errorf("proxy address: %w", err)
	}
	ua, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		return fmt.Errorf("proxy upstream: %w", err)
	}
	front, err := net.ListenUDP("udp", la)
	if err != nil {
		return fmt.Errorf("proxy listen: %w", err)
	}
	context.AfterFunc(ctx, func() { front.Close() })

	type flow struct {
		back   *net.UDPConn
		server atomic.Pointer[net.UDPAddr] // the request port, then the transfer port
		out    chan<- datagram
	}
	flows := map[string]*flow{}
	buf := make([]byte, 65536)
	for {
		n, client, err := front.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("proxy read: %w", err)
		}
		f := flows[client.String()]
		if f == nil {
			back, err := net.ListenUDP("udp", &net.UDPAddr{IP: ua.IP})
			if err != nil {
				return fmt.Errorf("proxy upstream socket: %w", err)
			}
			context.AfterFunc(ctx, func() { back.Close() })
			f = &flow{back: back}
			f.server.Store(ua)
			f.out = delayed(delay, func(b []byte) { _, _ = back.WriteToUDP(b, f.server.Load()) })
			in := delayed(delay, func(b []byte) { _, _ = front.WriteToUDP(b, client) })
			flows[client.String()] = f
			go func() {
				rb := make([]byte, 65536)
				for {
					n, from, err := back.ReadFromUDP(rb)
					if err != nil {
						return
					}
					f.server.Store(from)
					in <- datagram{due: time.Now().Add(delay), b: append([]byte(nil), rb[:n]...)}
				}
			}()
		}
		f.out <- datagram{due: time.Now().Add(delay), b: append([]byte(nil), buf[:n]...)}
	}
}

type datagram struct {
	due time.Time
	b   []byte
}

// delayed returns a FIFO whose datagrams are passed to send at their due
// time. The delay is constant, so FIFO order is due order.
func delayed(delay time.Duration, send func([]byte)) chan<- datagram {
	ch := make(chan datagram, 4096)
	go func() {
		for d := range ch {
			if w := time.Until(d.due); w > 0 {
				time.Sleep(w)
			}
			send(d.b)
		}
	}()
	return ch
}
