package verifier_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/hatlink"
)

func TestHandler(t *testing.T) {
	r := newRig(t)
	srv := httptest.NewServer(r.v.Handler())
	defer srv.Close()
	key := hatlink.EncodeKey(r.devs["pi-02"].Identity().SignKey)
	// Ordered: later calls depend on earlier ones (enroll, then revoke).
	tests := []struct {
		name, method, path, body string
		status                   int
		contains                 string
	}{
		{"challenge", "POST", "challenge", `{"node":"pi-01"}`, 200, `"nonce":`},
		{"challenge without node", "POST", "challenge", `{}`, 400, "node name is empty"},
		{"challenge unknown field", "POST", "challenge", `{"node":"pi-01","x":1}`, 400, "unknown field"},
		{"challenge GET", "GET", "challenge", ``, 405, ""},
		{"quote garbage", "POST", "quote", `{"node":"pi-01","statement":"AAAA","signature":"AAAA"}`, 403, `"code":"malformed"`},
		{"quote not json", "POST", "quote", `{`, 400, "bad request body"},
		{"quote too large", "POST", "quote", `{"node":"` + strings.Repeat("x", 70<<10) + `"}`, 400, "bad request body"},
		{"list enrollments", "GET", "enrollments", ``, 200, `"state":"approved"`},
		{"unknown action", "POST", "enrollments", `{"node":"pi-01","action":"bless"}`, 400, "want approve, enroll or revoke"},
		{"approve nothing", "POST", "enrollments", `{"node":"pi-09","action":"approve"}`, 400, "nothing pending"},
		{"enroll bad key", "POST", "enrollments", `{"node":"pi-09","action":"enroll","key":"rsa:x"}`, 400, "followed by base64"},
		{"enroll", "POST", "enrollments", `{"node":"pi-09","action":"enroll","key":"` + key + `"}`, 200, `"node":"pi-09"`},
		{"revoke", "POST", "enrollments", `{"node":"pi-09","action":"revoke"}`, 204, ""},
	}
	for _, tc := range tests {
		name := tc.name
		req, _ := http.NewRequest(tc.method, srv.URL+attest.PathPrefix+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: %d %s, want %d containing %q", name, resp.StatusCode, body, tc.status, tc.contains)
		}
		if resp.StatusCode >= 400 && resp.StatusCode != 405 {
			var eb attest.ErrorBody
			if json.Unmarshal(body, &eb) != nil || eb.Error == "" {
				t.Errorf("%s: error body %s is not {\"error\": reason}", name, body)
			}
		}
	}
}
