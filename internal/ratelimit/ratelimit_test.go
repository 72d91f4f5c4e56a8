package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	w := New(3, time.Minute)
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	now := time.Unix(1000, 0)
	got := []bool{}
	for range 5 {
		got = append(got, w.Allow(a, now))
	}
	if want := []bool{true, true, true, false, false}; string(fmtB(got)) != string(fmtB(want)) {
		t.Errorf("one client: %v, want %v", got, want)
	}
	if !w.Allow(b, now) {
		t.Error("another client was limited by the first")
	}
	if !w.Allow(a, now.Add(time.Minute)) {
		t.Error("a new window did not start")
	}
	for i := range MaxClients + 10 {
		w.Allow(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), now)
	}
	if len(w.m) > MaxClients {
		t.Errorf("%d clients remembered, want at most %d", len(w.m), MaxClients)
	}
}

func fmtB(v []bool) []byte {
	out := make([]byte, len(v))
	for i, b := range v {
		out[i] = '0'
		if b {
			out[i] = '1'
		}
	}
	return out
}
