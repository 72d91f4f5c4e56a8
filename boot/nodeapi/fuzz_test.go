package nodeapi_test

import (
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/bootparams"
)

// FuzzReport: any body gets a JSON answer of a known status, and only a
// 204 records an event, of an agent.* type, for the node at the address.
func FuzzReport(f *testing.F) {
	f.Add(`{"node":"pi-01","stage":"network","ok":true}`)
	f.Add(`{"node":"pi-01","stage":"failed","reason":"root.squashfs: digest mismatch","image":"sha256:00"}`)
	f.Add(`{"node":"pi-02","stage":"healthy","ok":true}`)
	f.Add(`{"node":"pi-01","stage":"failed","ok":true}`)
	f.Add(`[1,2,3]`)
	f.Fuzz(func(t *testing.T, body string) {
		h, st := newHandler(t)
		w := do(h, "POST", bootparams.ReportPath, "10.0.0.100", body)
		switch w.Code {
		case 204, 400, 403, 413:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		evs, _ := st.Events(t.Context(), "pi-01", 0)
		if (w.Code == 204) != (len(evs) == 1) {
			t.Fatalf("status %d with %d events", w.Code, len(evs))
		}
		for _, e := range evs {
			if !strings.HasPrefix(e.Type, "agent.") || strings.ContainsAny(e.Detail, "\n\r") {
				t.Fatalf("event %+v", e)
			}
		}
	})
}
