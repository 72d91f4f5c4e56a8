package server

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metricsql"
)

// dashboardFile is the Grafana dashboard shipped in examples/.
const dashboardFile = "../../examples/grafana/racklet-boot.json"

// dashboardMetrics returns, for every query of the dashboard, the metric
// names it selects (parsed as PromQL, Grafana's $__ variables given values).
func dashboardMetrics(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")
	queries := map[string][]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			e, err := metricsql.Parse(grafana.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: query %q: %v", p.Title, tg.Expr, err)
				continue
			}
			var names []string
			metricsql.VisitAll(e, func(e metricsql.Expr) {
				me, ok := e.(*metricsql.MetricExpr)
				if !ok {
					return
				}
				for _, lfs := range me.LabelFilterss {
					for _, lf := range lfs {
						if lf.Label == "__name__" {
							names = append(names, lf.Value)
						}
					}
				}
			})
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
			}
			queries[p.Title+": "+tg.Expr] = names
		}
	}
	if len(queries) == 0 {
		t.Fatalf("%s has no queries", dashboardFile)
	}
	return queries
}

// TestDashboardParses: every query of the dashboard is PromQL and selects a
// racklet, process or Go metric.
func TestDashboardParses(t *testing.T) {
	for q, names := range dashboardMetrics(t) {
		for _, n := range names {
			if !strings.HasPrefix(n, "racklet_") && !strings.HasPrefix(n, "process_") && !strings.HasPrefix(n, "go_") {
				t.Errorf("%s: %s is not a metric racklet-boot exports", q, n)
			}
		}
	}
}

// checkDashboard fails unless every metric the dashboard queries appears in
// exposition, the text a running server's /metrics answered.
func checkDashboard(t *testing.T, exposition string) {
	t.Helper()
	exported := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		exported[name] = true
	}
	var missing []string
	for q, names := range dashboardMetrics(t) {
		for _, n := range names {
			if !exported[n] {
				missing = append(missing, n+" (in "+q+")")
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("the dashboard queries a metric the server does not export: %s", m)
	}
}
