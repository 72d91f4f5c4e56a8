package pisim

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestNewPis(t *testing.T) {
	for _, model := range []int{4, 5} {
		pis := NewPis(500, model, 7)
		if len(pis) != 500 {
			t.Fatalf("%d pis", len(pis))
		}
		serials, macs := map[uint32]bool{}, map[string]bool{}
		oui := map[int]string{4: "dc:a6:32:", 5: "d8:3a:dd:"}[model]
		for _, p := range pis {
			if serials[p.Serial] || macs[p.MAC.String()] {
				t.Fatalf("duplicate serial %08x or mac %s", p.Serial, p.MAC)
			}
			serials[p.Serial], macs[p.MAC.String()] = true, true
			if !strings.HasPrefix(p.MAC.String(), oui) || p.Model != model {
				t.Fatalf("pi %s: model %d mac %s", p.Name(), p.Model, p.MAC)
			}
			if err := p.validate(); err != nil {
				t.Fatal(err)
			}
		}
		again := NewPis(500, model, 7)
		if diff := cmp.Diff(pis, again, cmpopts.IgnoreFields(Pi{}, "PubKey")); diff != "" {
			t.Errorf("same seed, different rack (-first +second):\n%s", diff)
		}
	}
}

func TestPiValidate(t *testing.T) {
	tests := map[string]struct {
		mod     func(*Pi)
		wantErr bool
	}{
		"ok":              {func(*Pi) {}, false},
		"model 3":         {func(p *Pi) { p.Model = 3 }, true},
		"short mac":       {func(p *Pi) { p.MAC = p.MAC[:4] }, true},
		"bad fourcc":      {func(p *Pi) { p.FourCC = "Pi4" }, true},
		"old fourcc":      {func(p *Pi) { p.FourCC = FourCCOld }, false},
		"blksize too big": {func(p *Pi) { p.Blksize = 70000 }, true},
		"blksize 8":       {func(p *Pi) { p.Blksize = 8 }, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := designPi()
			tc.mod(p)
			if err := p.validate(); (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestRackRun(t *testing.T) {
	pis := NewPis(6, 4, 1)
	files := pi4Tree("")
	for k, v := range pi4Tree(pis[2].Name() + "/") {
		files[k] = v
	}
	s := newFakeServer(t, files)
	s.start()
	bad := &Pi{Model: 3, Serial: 1, MAC: pis[0].MAC}
	r := &Rack{Transport: s.transport(), Pis: append(pis, bad), Concurrency: 3, Stagger: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results := r.Run(ctx)
	if len(results) != 7 {
		t.Fatalf("%d results", len(results))
	}
	for i, res := range results[:6] {
		if res.Serial != pis[i].Name() || !res.KernelLoaded || res.PrefixDropped != (i != 2) {
			t.Errorf("pi %d: serial %s (want %s), verdict %q, prefix dropped %v", i, res.Serial, pis[i].Name(), res.Verdict, res.PrefixDropped)
		}
	}
	if last := results[6]; last.Verdict != "failed: setup" || !strings.Contains(last.Error, "model 3") {
		t.Errorf("bad pi: verdict %q error %q", last.Verdict, last.Error)
	}
	sum := Summarize(results)
	if sum.Pis != 7 || sum.Booted != 6 || sum.Failed != 1 || sum.MedianDur <= 0 || sum.Slowest < sum.MedianDur {
		t.Errorf("summary %+v", sum)
	}
	// The fake server leases 10.0.0.50 to everyone: a conflict to report.
	if len(sum.Conflicts) != 1 || !strings.HasPrefix(sum.Conflicts[0], "10.0.0.50: "+pis[0].Name()+", ") {
		t.Errorf("conflicts %q", sum.Conflicts)
	}
	var tbl strings.Builder
	if err := WriteTable(&tbl, results); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(tbl.String()), "\n"); len(lines) != 8 ||
		!strings.Contains(lines[1], pis[0].Name()) || !strings.Contains(lines[1], "kernel loaded") ||
		!strings.Contains(lines[7], "failed: setup: pi model 3") {
		t.Errorf("table:\n%s", tbl.String())
	}
	b, err := json.Marshal(results[0])
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*results[0], back); diff != "" {
		t.Errorf("json round trip (-want +got):\n%s", diff)
	}
	for _, key := range []string{`"kernel_loaded":true`, `"steps":[`, `"option97_echoed":true`, `"tftp_source":"siaddr"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("json lacks %s: %s", key, b)
		}
	}
}

func TestRackCancelled(t *testing.T) {
	s := newFakeServer(t, nil)
	s.menu = "" // no boot offers: the Pis would wait 45 s
	s.start()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	results := (&Rack{Transport: s.transport(), Pis: NewPis(4, 5, 2), Concurrency: 2}).Run(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled rack took %s", took)
	}
	for _, r := range results {
		if r.KernelLoaded || !strings.HasPrefix(r.Verdict, "failed") {
			t.Errorf("pi %s: verdict %q", r.Serial, r.Verdict)
		}
	}
}

func TestResultString(t *testing.T) {
	r := &Result{Serial: "5b154510", MAC: "dc:a6:32:2e:f8:ed", Model: 4, Verdict: VerdictKernel, Total: 1500 * time.Millisecond,
		Address: "10.0.0.5", DHCPServer: "10.0.0.1", TFTPServer: "10.0.0.2", TFTPSource: "option 54", Proxy: true,
		Prefix: "5b154510/", PrefixDropped: true, Files: 1, Bytes: 42,
		Steps: []Step{{At: 1200 * time.Millisecond, Op: "tftp-read", File: "kernel8.img", Bytes: 42, Result: "ok", Took: 3 * time.Millisecond}}}
	got := r.String()
	for _, want := range []string{
		"pi 5b154510 (Pi 4, dc:a6:32:2e:f8:ed): kernel loaded in 1.5s",
		"address 10.0.0.5 from 10.0.0.1 (proxy), tftp 10.0.0.2 (option 54)",
		`prefix "5b154510/" dropped`,
		"1.200s tftp-read     kernel8.img",
		"42 B ok (3ms)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("String() lacks %q:\n%s", want, got)
		}
	}
}
