package integration

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestSparseTarBomb builds from a base image whose top layer is a 3.5 KiB
// tar claiming a 1 TiB file (a GNU sparse entry: archive/tar expands its
// holes as zeros), with the real racklet-image binary. It must refuse the
// base naming the limit, quickly and in little memory: measured from the
// process's wall time and peak RSS (the figure: < 1 s and < 100 MiB; the
// time bound asserted here is a generous 10 s for a busy machine).
func TestSparseTarBomb(t *testing.T) {
	testutil.NeedTool(t, "busybox")
	work := t.TempDir()
	bomb := imagetest.SparseBomb("var/log/lastlog", 1<<40)
	base, err := imagetest.WriteLayout(filepath.Join(work, "base"), imagetest.Options{ExtraLayers: [][]byte{bomb}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// busybox time forks racklet-image from its own small process: the
	// peak RSS Linux reports for a child that go test started directly
	// includes the test process's own (Go starts children with CLONE_VM,
	// and exec keeps the high-water mark of the address space it left).
	cmd := exec.CommandContext(ctx, "busybox", "time", "-v", rackletImage(t), "build", "--base", base, "--dir", filepath.Join(work, "out"),
		"--temp-dir", work)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	if err == nil {
		t.Fatal("racklet-image built an image from a 1 TiB sparse-file bomb")
	}
	m := regexp.MustCompile(`Maximum resident set size \(kbytes\): ([0-9]+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("busybox time printed no peak RSS:\n%s", stderr.String())
	}
	kb, _ := strconv.ParseInt(m[1], 10, 64)
	rss := kb << 10
	msg, _, _ := strings.Cut(stderr.String(), "Command exited with")
	msg = strings.TrimSpace(msg)
	t.Logf("bomb layer of %d bytes refused in %s with a peak RSS of %.1f MiB: %s", len(bomb), took.Round(time.Millisecond), float64(rss)/(1<<20), msg[max(0, len(msg)-200):])
	if !strings.Contains(msg, "size limits") || !strings.Contains(msg, "var/log/lastlog") {
		t.Errorf("the refusal does not name the limit and the file:\n%s", msg)
	}
	if rss > 100<<20 {
		t.Errorf("peak RSS %d MiB, want under 100 MiB", rss>>20)
	}
	if took > 10*time.Second {
		t.Errorf("refused after %s, want well under 10 s (1 s on a quiet machine)", took)
	}
}
