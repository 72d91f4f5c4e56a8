package tftp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// clientFile is served to the real clients: 3 MiB plus a partial block, so
// transfers end with a short block at every block size.
var clientFile = pattern(3<<20 + 777)

// runClient runs a client command with a time bound and returns its output.
func runClient(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkFile compares a downloaded file with clientFile.
func checkFile(t *testing.T, path string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read downloaded file: %v", err)
	}
	if !bytes.Equal(got, clientFile) {
		t.Fatalf("downloaded %d bytes, differing from the %d-byte file", len(got), len(clientFile))
	}
}

// lastDetail returns the newest event's detail, waiting for the n-th event.
func lastDetail(t *testing.T, ev *eventLog, n int) string {
	t.Helper()
	e := ev.waitEvents(t, n)[n-1]
	if e.Type != "tftp.get" {
		t.Fatalf("event %+v, want tftp.get", e)
	}
	return e.Detail
}

func TestCurl(t *testing.T) {
	curl := testutil.NeedTool(t, "curl")
	ev := &eventLog{}
	srv := startServer(t, &Server{Files: &fakeFiles{node: "n", files: map[string][]byte{"boot/file.bin": clientFile}}, Events: ev})
	n := 0
	for _, blk := range []string{"", "512", "1468", "65464"} {
		t.Run("blksize "+blk, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"-sS", "--max-time", "100", "-o", out}
			if blk != "" {
				args = append(args, "--tftp-blksize", blk)
			}
			runClient(t, curl, append(args, "tftp://"+srv.String()+"/boot/file.bin")...)
			checkFile(t, out)
			n++
			d := lastDetail(t, ev, n)
			if want := "blksize=" + blk; blk != "" && !strings.Contains(d, want) {
				t.Errorf("event %q, want %s", d, want)
			}
			t.Logf("curl --tftp-blksize %q negotiated: %s", blk, d)
		})
	}
	t.Run("not found", func(t *testing.T) {
		err := exec.Command(curl, "-sS", "--max-time", "20", "-o", os.DevNull, "tftp://"+srv.String()+"/nope").Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 68 {
			t.Errorf("curl on a missing file: %v, want exit code 68 (TFTP file not found)", err)
		}
	})
}

func TestTFTPHPA(t *testing.T) {
	tftp := testutil.NeedTool(t, "tftp")
	srv := startServer(t, &Server{Files: &fakeFiles{files: map[string][]byte{"file.bin": clientFile}}})
	out := filepath.Join(t.TempDir(), "out")
	port := strconv.Itoa(srv.Port)
	runClient(t, tftp, "127.0.0.1", port, "-m", "binary", "-c", "get", "file.bin", out)
	checkFile(t, out)
}

func TestAtftp(t *testing.T) {
	atftp := testutil.NeedTool(t, "atftp")
	ev := &eventLog{}
	srv := startServer(t, &Server{Files: &fakeFiles{node: "n", files: map[string][]byte{"file.bin": clientFile}}, Events: ev})
	port := strconv.Itoa(srv.Port)
	n := 0
	for _, tc := range []struct{ blk, win string }{{"1468", "8"}, {"1468", "1"}, {"512", "64"}, {"65464", "2"}} {
		t.Run("blksize "+tc.blk+" windowsize "+tc.win, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			runClient(t, atftp, "--option", "blksize "+tc.blk, "--option", "windowsize "+tc.win,
				"--get", "-r", "file.bin", "-l", out, "127.0.0.1", port)
			checkFile(t, out)
			n++
			d := lastDetail(t, ev, n)
			if want := "blksize=" + tc.blk + " windowsize=" + tc.win; !strings.Contains(d, want) {
				t.Errorf("event %q, want %s", d, want)
			}
		})
	}
}

// TestPinClient reads with github.com/pin/tftp's client, lock-step.
func TestPinClient(t *testing.T) {
	srv := startServer(t, &Server{Files: &fakeFiles{files: map[string][]byte{"file.bin": clientFile}}})
	c, err := pintftp.NewClient(srv.String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetBlockSize(1468)
	c.RequestTSize(true)
	c.SetTimeout(5 * time.Second)
	wt, err := c.Receive("file.bin", "octet")
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if n, ok := wt.(pintftp.IncomingTransfer).Size(); !ok || n != int64(len(clientFile)) {
		t.Errorf("tsize = %d, %v; want %d", n, ok, len(clientFile))
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), clientFile) {
		t.Fatalf("got %d bytes, want %d", buf.Len(), len(clientFile))
	}
}

// TestHalfOpenFlood sends 1000 read requests that are never acknowledged,
// each from its own port on 127.0.0.2, then checks that a real client on
// 127.0.0.1 is served at once and that the flood was bounded per client.
func TestHalfOpenFlood(t *testing.T) {
	curl := testutil.NeedTool(t, "curl")
	s := &Server{
		Files:        &fakeFiles{files: map[string][]byte{"file.bin": clientFile}},
		Timeout:      5 * time.Second,
		MaxPerClient: 64,
	}
	srv := startServerOn(t, s, "0.0.0.0:0")
	target := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.Port}
	oacks, busy := 0, 0
	buf := make([]byte, 70000)
	for i := range 1000 {
		// Each socket stays open until the test ends, as a real flooder's
		// would (a closed one answers with ICMP port unreachable, which the
		// server treats as a lost packet).
		flood, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
		if err != nil {
			testutil.Unavailable(t, fmt.Sprintf("cannot bind 127.0.0.2: %v", err))
		}
		t.Cleanup(func() { flood.Close() })
		req := rrq(opRRQ, "file.bin", "octet", "blksize", "65464", "tsize", "0", "x", strconv.Itoa(i))
		if _, err := flood.WriteToUDP(req, target); err != nil {
			t.Fatalf("flood request: %v", err)
		}
		_ = flood.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := flood.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("request %d: no answer: %v", i, err)
		}
		switch {
		case n > 2 && buf[1] == opOACK:
			oacks++
		case n > 4 && buf[1] == opERROR && strings.Contains(string(buf[4:n]), "busy"):
			busy++
		}
	}
	if oacks != 64 || busy != 936 {
		t.Errorf("flood got %d OACKs and %d busy errors, want 64 and 936", oacks, busy)
	}

	start := time.Now()
	out := filepath.Join(t.TempDir(), "out")
	runClient(t, curl, "-sS", "--max-time", "30", "--tftp-blksize", "1468", "-o", out, "tftp://"+target.String()+"/file.bin")
	checkFile(t, out)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("real client took %v during the flood", d)
	}
}
