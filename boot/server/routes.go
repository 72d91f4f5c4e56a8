package server

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/boot/adminauth"
	"github.com/racklet/racklet-boot/boot/nodeapi"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/dashboard"
)

// Every HTTP route racklet-boot serves is one of two audiences:
//
//   - nodes (and their firmware), open to the LAN but bounded: boot files,
//     iPXE scripts, the Pi's boot.img, the attestation challenge and quote,
//     the agent's whoami and reports, /healthz and /metrics (counts by
//     route and status, no names, addresses or secrets: Prometheus scrapes
//     it without a credential);
//   - operators, behind the operator check (Options.AdminAuth, by default
//     boot/adminauth with the data directory's token and socket): the admin
//     API, the dashboard, the node inventory (/api/v1/nodes…) and the
//     attestation enrolments.
//
// The dashboard's login and its stylesheet are open: they show nothing.
// boot/server's route test walks httpboot.Server.Patterns and fails for a
// route that is in neither list.

// NodeRoutes are the patterns open to the LAN (besides httpboot's boot
// file, iPXE, health and metrics routes and its fallback).
var NodeRoutes = []string{
	verifier.ChallengePattern,
	verifier.QuotePattern,
	"GET " + bootparams.WhoAmIPath,
	"POST " + bootparams.ReportPath,
	"GET " + adminauth.LoginPath,
	"POST " + adminauth.LoginPath,
	"POST " + adminauth.LogoutPath,
	"GET " + dashboard.Prefix + "style.css",
}

// operator wraps h in the operator check.
func (s *Server) operator(h http.Handler) http.Handler {
	if s.opts.AdminAuth != nil {
		return s.opts.AdminAuth(h)
	}
	return s.auth.Wrap(h)
}

// mounts are the routes boot/server adds to httpboot's own, by pattern.
func (s *Server) mounts() map[string]http.Handler {
	m := map[string]http.Handler{}
	node := &nodeapi.Handler{
		Nodes:  nodeapi.DirectoryFunc(s.nodeAt),
		Events: s.events,
		AB:     s.ab,
		Log:    s.component("nodeapi"),
	}
	// The answers the agent acts on are signed with the server key.
	m["GET "+bootparams.WhoAmIPath] = s.signer.Sign(node)
	m["POST "+bootparams.ReportPath] = node
	for p, h := range s.verifier.NodeRoutes() {
		m[p] = s.signer.Sign(h)
	}
	for p, h := range s.verifier.OperatorRoutes() {
		m[p] = s.operator(h)
	}
	for p, h := range s.adminRoutes() {
		m[p] = s.operator(h)
	}
	login := s.auth.LoginHandler()
	m["GET "+adminauth.LoginPath] = login
	m["POST "+adminauth.LoginPath] = login
	m["POST "+adminauth.LogoutPath] = login
	m["GET "+dashboard.Prefix+"style.css"] = dashboard.Handler()
	return m
}

// nodeAddr is where a node is: its DHCP lease (attestation keeps nonces
// issued to it apart from other clients asking in its name).
func (s *Server) nodeAddr(ctx context.Context, node string) (netip.Addr, bool) {
	if a, ok := s.dhcp.AddrForNode(node); ok {
		return a, true
	}
	if n, ok := s.inv.Load().ByName(node); ok && n.Address.IsValid() {
		return n.Address, true
	}
	return netip.Addr{}, false
}
