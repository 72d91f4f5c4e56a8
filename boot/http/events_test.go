package httpboot

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEventsRecorded(t *testing.T) {
	_, _, st, url, _ := bootFixture(t)
	curl(t, url+"/boot/dc-a6-32-00-00-01/kernel8.img")
	curl(t, "-r", "0-99", url+"/boot/config.txt")
	curl(t, "-I", url+"/boot/config.txt")                // HEAD: no event
	curl(t, url+"/boot/missing")                         // 404: no event
	curl(t, "-H", `If-None-Match: "x"`, url+"/boot.img") // 200 with a non-matching tag

	// Events are written after the body is flushed: give them a moment.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st.mu.Lock()
		n := len(st.events)
		st.mu.Unlock()
		if n >= 3 {
			break
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	type ev struct {
		Node, Type, Detail string
		Bytes              int64
	}
	var got []ev
	for _, e := range st.events {
		if e.Time.IsZero() {
			t.Errorf("event %+v has no time", e)
		}
		got = append(got, ev{e.Node, e.Type, e.Detail, e.Bytes})
	}
	want := []ev{
		{"pi-01", "http.get", "dc-a6-32-00-00-01/kernel8.img", 1 << 20},
		{"pi-01", "http.get", "config.txt range bytes=0-99", 12},
		{"pi-01", "http.get", "boot.img", 15},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestEventIncomplete checks that a download the client abandons is logged
// as incomplete in the node's event log.
func TestEventIncomplete(t *testing.T) {
	files := newDirOpener(t, map[string][]byte{"initramfs.img": bytes.Repeat([]byte("initramfs"), 64<<20/9+1)[:64<<20]})
	st := &fakeStore{}
	url := startServer(t, &Server{Files: files, Events: st})

	resp, err := http.Get(url + "/boot/initramfs.img")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // abandon the transfer

	deadline := time.Now().Add(10 * time.Second)
	for {
		st.mu.Lock()
		evs := slices.Clone(st.events)
		st.mu.Unlock()
		if len(evs) == 1 {
			if d := evs[0].Detail; !strings.HasPrefix(d, "initramfs.img (incomplete: ") || !strings.HasSuffix(d, " of 67108864 bytes)") {
				t.Errorf("event detail = %q, want it marked incomplete", d)
			}
			if evs[0].Bytes >= 64<<20 {
				t.Errorf("event bytes = %d, want fewer than the file", evs[0].Bytes)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event 10 s after the client left (events %v)", evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
