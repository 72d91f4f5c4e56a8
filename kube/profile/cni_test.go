package profile

import (
	"encoding/json"
	"strings"
	"testing"
	"text/template"
)

// renderCNI renders containerd's CNI config template as its CRI plugin does
// (cniConfigTemplate: PodCIDR, PodCIDRRanges, Routes) and checks the result
// parses as JSON.
func renderCNI(t *testing.T, tmpl string, cidrs, routes []string) string {
	t.Helper()
	tp, err := template.New("cni").Parse(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = tp.Execute(&b, struct {
		PodCIDR       string
		PodCIDRRanges []string
		Routes        []string
	}{cidrs[0], cidrs, routes})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(b.String()), &v); err != nil {
		t.Fatalf("rendered CNI config is not JSON: %v\n%s", err, b.String())
	}
	return b.String()
}
