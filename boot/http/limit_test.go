package httpboot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// serveOn runs s on a loopback listener and returns its address.
func serveOn(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// slowConn dials addr from local (an address of 127/8) and sends half a
// request's headers, as a slowloris does.
func slowConn(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedWithin reports whether the server closed c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestConnectionCaps: one client holds at most MaxConnsPerClient
// connections and all clients MaxConns; connections past a cap are closed
// as they arrive and counted; a slot comes back when its connection closes;
// a connection that never finishes its headers is closed after
// HeaderTimeout.
func TestConnectionCaps(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := &Server{Registry: reg, MaxConns: 5, MaxConnsPerClient: 3, HeaderTimeout: 1500 * time.Millisecond}
	addr := serveOn(t, s)
	var held []net.Conn
	for range 3 {
		held = append(held, slowConn(t, "127.0.0.1", addr))
	}
	if extra := slowConn(t, "127.0.0.1", addr); !closedWithin(extra, time.Second) {
		t.Error("a 4th connection from one client was kept open")
	}
	for _, local := range []string{"127.0.0.2", "127.0.0.3"} {
		held = append(held, slowConn(t, local, addr))
	}
	if extra := slowConn(t, "127.0.0.4", addr); !closedWithin(extra, time.Second) {
		t.Error("a 6th connection in all was kept open")
	}
	for i, c := range held[:1] {
		if closedWithin(c, 200*time.Millisecond) {
			t.Errorf("held connection %d closed before its header timeout", i)
		}
	}
	held[0].Close()
	time.Sleep(100 * time.Millisecond)
	again := slowConn(t, "127.0.0.1", addr)
	if closedWithin(again, 200*time.Millisecond) {
		t.Error("no slot came back after a connection closed")
	}
	for i, c := range append(held[1:], again) {
		if !closedWithin(c, 3*time.Second) {
			t.Errorf("slow connection %d still open past the header timeout", i)
		}
	}
	for reason, want := range map[string]float64{"per-client": 1, "total": 1} {
		var m dto.Metric
		if err := s.metrics.refused.WithLabelValues(reason).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("%s refusals counted %v, want %v", reason, got, want)
		}
	}
	// Everything closed: a real request works again.
	c := slowConn(t, "127.0.0.1", addr)
	io.WriteString(c, "\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(io.LimitReader(c, 12))
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		t.Errorf("request after the caps freed: %q", b)
	}
}

// spyListener hands out connections that record what reaches their ReadFrom.
type spyListener struct {
	net.Listener
	srcs chan string
}

func (l spyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &spyConn{TCPConn: c.(*net.TCPConn), srcs: l.srcs}, nil
}

// spyConn is a TCP connection whose ReadFrom (sendfile's way in) notes its source.
type spyConn struct {
	*net.TCPConn
	srcs chan string
}

func (c *spyConn) ReadFrom(r io.Reader) (int64, error) {
	desc := fmt.Sprintf("%T", r)
	if lr, ok := r.(*io.LimitedReader); ok {
		desc += fmt.Sprintf("(%T)", lr.R)
	}
	select {
	case c.srcs <- desc:
	default:
	}
	return c.TCPConn.ReadFrom(r)
}

// TestSendfileThroughLimiter: behind Serve's connection limiter a file's body
// still reaches the TCP connection's ReadFrom as the file itself, the call
// in which Go uses sendfile(2). (Without it the bytes went through user
// space: bench/storm/http.sh measured 6x nginx's CPU for the same boot.img.)
func TestSendfileThroughLimiter(t *testing.T) {
	body := pattern(1 << 20)
	s := &Server{Files: newDirOpener(t, map[string][]byte{"kernel8.img": body})}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srcs := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, spyListener{Listener: ln, srcs: srcs}) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/boot/kernel8.img")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GET kernel8.img: %d bytes, err %v; want the file's %d bytes", len(got), err, len(body))
	}
	select {
	case src := <-srcs:
		if src != "*io.LimitedReader(*os.File)" {
			t.Errorf("connection's ReadFrom got %s, want *io.LimitedReader(*os.File) (sendfile's input)", src)
		}
	default:
		t.Error("the body never reached the connection's ReadFrom: net/http copied it through user space, no sendfile")
	}
}
