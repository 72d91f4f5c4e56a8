package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/boot/adminauth"
	"github.com/racklet/racklet-boot/enrol"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/serverkey"
)

// httpboot's own routes that serve nodes and their firmware (boot/server's
// are NodeRoutes); everything else must refuse a request without the
// operator credential.
var httpbootNodeRoutes = []string{"GET /boot/{name...}", "GET /ipxe/{mac}/boot.ipxe", "GET /healthz", "GET /metrics", "/"}

// nsClient is an HTTP client whose connections are opened in a namespace.
func nsClient(th *netlab.Thread) *http.Client {
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = th.Do(func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// lanHost is one more machine on the rack LAN.
func lanHost(t *testing.T, l *rackLAN, name, addr string) *netlab.Thread {
	t.Helper()
	ns, err := netlab.AddNamespace(t.Context(), name+"-"+netlab.Suffix(6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Delete)
	if err := l.sw.Attach(t.Context(), ns, "eth0", netip.MustParsePrefix(addr)); err != nil {
		t.Fatal(err)
	}
	th, err := ns.Thread()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(th.Close)
	return th
}

// trustState is everything that says who is trusted or what a node is
// told to do: enrolled keys, the approved-nodes overlay, power requests,
// the config's nodes.
func trustState(t *testing.T, s *Server) string {
	t.Helper()
	var b strings.Builder
	list, err := s.verifier.Enrollments.ListEnrollments(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.State == attest.Approved {
			fmt.Fprintf(&b, "enrolled %s %s\n", e.Node, e.Key)
		}
	}
	for _, f := range []string{filepath.Join(s.dataDir, "approved-nodes.yaml"), filepath.Join(s.dataDir, BMCDir, "power.json")} {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "%s: %q\n", filepath.Base(f), data)
	}
	for _, n := range s.Config().Nodes {
		fmt.Fprintf(&b, "node %s %s power %s\n", n.Name, n.HATKey, n.Power)
	}
	return b.String()
}

// TestLANAttacker: a host on the rack LAN without the operator credential
// tries every route racklet-boot serves (walked from its ServeMux, so a new
// route is tried too) 100 times, with no credential, wrong and near-miss
// tokens, a forged session cookie with the CSRF header, and a spoofed
// forwarding header; and it attests with its own HAT as a configured node.
// Figures: 0 operator routes answered, 0 secrets in any answer, 0 trust
// changes. racklet-boot listens only on server.address. A proxy on the
// attacker's host, in the path of a node, cannot plant a disk key.
func TestLANAttacker(t *testing.T) {
	l := newRackLAN(t)
	ctx := t.Context()
	dir := t.TempDir()
	tree := bootTree(t, dir, "a", "alpha")
	const rootHash = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	nodeHAT, err := hatsim.Open(filepath.Join(dir, "node-hat.json"), hatsim.Options{Serial: "5b154510"})
	if err != nil {
		t.Fatal(err)
	}
	evilHAT, err := hatsim.Open(filepath.Join(dir, "evil-hat.json"), hatsim.Options{Serial: "5b154520"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := `apiVersion: racklet.io/v1alpha1
kind: Rack
server: {interface: eth0, address: 10.43.0.2, dataDir: ` + filepath.Join(dir, "data") + `}
dhcp: {mode: full, pool: {start: 10.43.0.100, end: 10.43.0.150}, router: 10.43.0.2}
enrolment: approve
nodes:
  - {name: pi-01, kind: rpi4, serial: 5b154510, mac: "dc:a6:32:00:00:01", hatKey: "` + hatlink.EncodeKey(nodeHAT.Identity().SignKey) + `", boot: {dir: ` + tree + `, rootHash: ` + rootHash + `}}
  - {name: pi-02, kind: rpi4, serial: 5b154520, mac: "dc:a6:32:00:00:02", boot: {dir: ` + tree + `, rootHash: ` + rootHash + `}}
`
	s, err := New(parseConfig(t, dir, cfg), Options{Network: l.srv.Do, Neighbours: nobody{}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	// A second address on the server's interface: nothing may answer there.
	if err := l.srvNS.Run(ctx, "ip", "addr", "add", "10.43.0.3/24", "dev", "eth0"); err != nil {
		t.Fatal(err)
	}
	evil := lanHost(t, l, "rkt-evil", "10.43.0.66/24")
	node := lanHost(t, l, "rkt-node", "10.43.0.11/24")
	hc := nsClient(evil)
	base := "http://10.43.0.2"
	m, err := attest.MeasureFiles(filepath.Join(tree, "kernel8.img"), filepath.Join(tree, "initramfs8"), "console=serial0 racklet.marker=alpha\n", rootHash)
	if err != nil {
		t.Fatal(err)
	}
	serverKey, _ := serverkey.ParsePublic(s.ServerKey())

	t.Run("listens on server.address only", func(t *testing.T) {
		for _, addr := range []string{"10.43.0.3:80", "10.43.0.3:7070", "10.43.0.3:69"} {
			if resp, err := hc.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				t.Errorf("%s answered", addr)
			}
		}
		out, err := l.srvNS.Output(ctx, "ss", "-Hlnut")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			local := f[4]
			if !strings.HasPrefix(local, "10.43.0.2:") && !strings.Contains(local, "%eth0:") {
				t.Errorf("racklet-boot listens on %s (want 10.43.0.2, or DHCP bound to eth0)", local)
			}
		}
		t.Logf("sockets:\n%s", out)
	})

	t.Run("a proxy in the node's path cannot plant a disk key", func(t *testing.T) {
		var ln net.Listener
		if err := evil.Do(func() (err error) { ln, err = net.Listen("tcp", "10.43.0.66:8080"); return err }); err != nil {
			t.Fatal(err)
		}
		proxy := plantingProxy(t, base, evil)
		srv := &http.Server{Handler: proxy}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		hat, err := hatlink.NewClient(ctx, hatlink.Direct(nodeHAT))
		if err != nil {
			t.Fatal(err)
		}
		res, err := agent.Attest(ctx, hat, agent.Options{Node: "pi-01", Server: "http://10.43.0.66:8080", Measurements: m, ServerKey: serverKey, HTTPClient: nsClient(node)})
		if err == nil || len(res.Secrets) != 0 {
			t.Fatalf("attested through the planting proxy: %v", res.Secrets)
		}
		if proxy.planted == 0 {
			t.Error("the proxy planted nothing: the attack did not run")
		}
		t.Logf("through the proxy (%d answers rewritten): %v", proxy.planted, err)
	})

	// The secrets an answer must never carry.
	ns, err := s.verifier.Secrets.Secrets(ctx, "pi-01")
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(filepath.Join(s.dataDir, serverkey.PrivateFile))
	secrets := map[string]string{
		"join token":     ns.JoinToken,
		"disk key":       base64.StdEncoding.EncodeToString(ns.DiskKey),
		"operator token": s.AdminToken(),
		"server key":     strings.Split(string(pem), "\n")[1],
	}
	before := trustState(t, s)

	// The attacker's own HAT, quoting as pi-01 (enrolled) and pi-02 (no key yet).
	evilClient, err := hatlink.NewClient(ctx, hatlink.Direct(evilHAT))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Measure(ctx, evilClient, m); err != nil {
		t.Fatal(err)
	}
	evilKey := hatlink.EncodeKey(evilHAT.Identity().SignKey)
	quoteBody := func(nodeName string) string {
		var ch attest.Challenge
		resp, err := hc.Post(base+attest.PathPrefix+"challenge", "application/json", strings.NewReader(`{"node":"`+nodeName+`"}`))
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&ch)
			resp.Body.Close()
		}
		var nonce [32]byte
		copy(nonce[:], ch.Nonce)
		q, err := evilClient.Quote(ctx, nonce, hatlink.BootMask)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(attest.QuoteSubmission{Node: nodeName, Key: evilKey, Statement: q.Statement, Signature: q.Signature[:]})
		return string(b)
	}
	fp := enrol.Fingerprint(evilKey)
	body := func(pattern string, i int) string {
		switch {
		case strings.HasSuffix(pattern, "/power"):
			return `{"action":"off","by":"attacker"}`
		case strings.HasSuffix(pattern, "enrolments/approve"):
			return `{"ref":"` + fp + `","as":"pi-02"}`
		case strings.HasSuffix(pattern, "enrolments/forget"):
			return `{"ref":"` + fp + `"}`
		case strings.HasSuffix(pattern, "enrollments") && strings.HasPrefix(pattern, "POST"):
			if i%2 == 0 {
				return `{"node":"pi-02","action":"enroll","key":"` + evilKey + `"}`
			}
			return `{"node":"pi-01","action":"revoke"}`
		case strings.HasSuffix(pattern, "challenge"):
			return `{"node":"pi-01"}`
		case strings.HasSuffix(pattern, "quote"):
			return quoteBody([]string{"pi-01", "pi-02"}[i%2])
		case strings.HasSuffix(pattern, "report"):
			return `{"node":"pi-01","stage":"healthy","ok":true}`
		case strings.HasSuffix(pattern, "login"):
			return "token=" + url.QueryEscape(s.AdminToken()[:10]+"guess")
		}
		return ""
	}
	fill := strings.NewReplacer("{node}", "pi-01", "{key}", "pi-01", "{name...}", "5b154510/config.txt", "{mac}", "dc-a6-32-00-00-01")
	forged := fmt.Sprintf("%d.%s", time.Now().Add(time.Hour).Unix(), base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	creds := []func(r *http.Request){
		func(r *http.Request) {},
		func(r *http.Request) {
			b := make([]byte, 32)
			rand.Read(b)
			r.Header.Set("Authorization", "Bearer "+base64.RawURLEncoding.EncodeToString(b))
		},
		func(r *http.Request) { // the token with its last character changed
			tok := []byte(s.AdminToken())
			tok[len(tok)-1] = "AB"[b2i(tok[len(tok)-1] == 'A')]
			r.Header.Set("Authorization", "Bearer "+string(tok))
		},
		func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: adminauth.CookieName, Value: forged})
			r.Header.Set(adminauth.CSRFHeader, "1")
			r.Header.Set("Origin", "http://10.43.0.2")
		},
		func(r *http.Request) {
			r.Header.Set("X-Forwarded-For", "127.0.0.1")
			r.Header.Set("X-Real-IP", "127.0.0.1")
		},
	}

	patterns := s.http.Patterns()
	nodeRoutes := append(slices.Clone(httpbootNodeRoutes), NodeRoutes...)
	type tally struct{ tries, ok2xx, leaks int }
	byRoute := map[string]*tally{}
	statuses := map[string]map[int]int{}
	const tries = 100
	for _, pattern := range patterns {
		method, path, hasMethod := strings.Cut(pattern, " ")
		if !hasMethod {
			method, path = "", pattern
		}
		methods := []string{method}
		if method == "" {
			methods = []string{"GET", "POST"}
		}
		if path == "/" {
			path = "/anything/else"
		}
		operator := !slices.Contains(nodeRoutes, pattern)
		tl := &tally{}
		byRoute[pattern], statuses[pattern] = tl, map[int]int{}
		for i := range tries {
			for _, meth := range methods {
				u := base + fill.Replace(path)
				if strings.HasSuffix(pattern, "/console") && i%2 == 1 {
					u += "?follow=1"
				}
				req, _ := http.NewRequestWithContext(ctx, meth, u, strings.NewReader(body(pattern, i)))
				if strings.HasSuffix(pattern, "login") {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				} else {
					req.Header.Set("Content-Type", "application/json")
				}
				creds[i%len(creds)](req)
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", meth, u, err)
				}
				got, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				tl.tries++
				statuses[pattern][resp.StatusCode]++
				if operator && resp.StatusCode/100 == 2 {
					tl.ok2xx++
					t.Errorf("operator route %s answered %d without the credential: %.200s", pattern, resp.StatusCode, got)
				}
				if strings.HasSuffix(pattern, "quote") && resp.StatusCode == http.StatusOK {
					tl.ok2xx++
					t.Errorf("the attacker's quote was accepted: %.200s", got)
				}
				for what, secret := range secrets {
					if secret != "" && bytes.Contains(got, []byte(secret)) {
						tl.leaks++
						t.Errorf("%s %s revealed the %s", meth, u, what)
					}
				}
			}
		}
	}
	after := trustState(t, s)
	if after != before {
		t.Errorf("trust changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	names := make([]string, 0, len(byRoute))
	for p := range byRoute {
		names = append(names, p)
	}
	sort.Strings(names)
	var report strings.Builder
	totalTries, opRoutes, answered, leaks := 0, 0, 0, 0
	for _, p := range names {
		tl := byRoute[p]
		who := "node"
		if !slices.Contains(nodeRoutes, p) {
			who, opRoutes = "operator", opRoutes+1
		}
		totalTries += tl.tries
		answered += tl.ok2xx
		leaks += tl.leaks
		fmt.Fprintf(&report, "  %-48s %-8s %4d tries  %v\n", p, who, tl.tries, statuses[p])
	}
	t.Logf("attacker on the LAN, %d routes (%d operator), %d requests: %d operator answers or accepted quotes, %d secrets revealed, trust unchanged: %v\n%s",
		len(names), opRoutes, totalTries, answered, leaks, after == before, report.String())
	if opRoutes < 15 {
		t.Errorf("only %d operator routes walked: the route table is not what the test thinks", opRoutes)
	}

	// The attacker's claims on pi-02 wait for the operator, as conflicts
	// need: nothing was trusted.
	if pend := s.enrol.Claimed("pi-02"); len(pend) != 1 || pend[0] != evilKey {
		t.Errorf("pending for pi-02: %v, want the attacker's key waiting", pend)
	}

	t.Run("the operator and the node are served", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+AdminPrefix+"rack", nil)
		req.Header.Set("Authorization", "Bearer "+s.AdminToken())
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("with the token: %d", resp.StatusCode)
		}
		hat, err := hatlink.NewClient(ctx, hatlink.Direct(nodeHAT))
		if err != nil {
			t.Fatal(err)
		}
		res, err := agent.Attest(ctx, hat, agent.Options{Node: "pi-01", Server: base, Measurements: m, ServerKey: serverKey, HTTPClient: nsClient(node)})
		if err != nil || string(res.Secrets[attest.SecretDiskKey]) != string(ns.DiskKey) {
			t.Fatalf("pi-01 from its own host: %v", err)
		}
	})
}

// planter is a reverse proxy that replaces the disk key of every release
// with its own, wrapped to the quoting HAT's box key and registers.
type planter struct {
	http.Handler
	planted int
}

func plantingProxy(t *testing.T, target string, th *netlab.Thread) *planter {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = nsClient(th).Transport
	p := &planter{Handler: rp}
	var st hatlink.Statement
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		if strings.HasSuffix(r.URL.Path, "/quote") {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			var q attest.QuoteSubmission
			if json.Unmarshal(b, &q) == nil {
				st, _ = hatlink.ParseStatement(q.Statement)
			}
		}
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasSuffix(resp.Request.URL.Path, "/quote") || resp.StatusCode != http.StatusOK {
			return nil
		}
		var rel attest.Release
		if err := json.NewDecoder(resp.Body).Decode(&rel); err != nil {
			return err
		}
		resp.Body.Close()
		env, err := hatlink.Wrap(rand.Reader, st.BoxKey, st.Registers, []byte("attacker-chosen disk key, 32 b!!"))
		if err != nil {
			t.Errorf("wrap: %v", err)
		}
		for i := range rel.Secrets {
			if rel.Secrets[i].Name == attest.SecretDiskKey {
				rel.Secrets[i].Envelope = env
				p.planted++
			}
		}
		b, _ := json.Marshal(rel)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Del("Content-Length")
		return nil
	}
	return p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
