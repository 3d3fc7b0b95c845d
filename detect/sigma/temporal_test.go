package sigma

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// TestTemporalCorrelation converts temporal and temporal_ordered
// correlations into sequence rules and runs them.
func TestTemporalCorrelation(t *testing.T) {
	bases := "title: Failed login\nid: base-1\nname: failed_login\nlogsource: {category: webserver}\ndetection:\n  sel: {sc-status: 401}\n  condition: sel\n---\n" +
		"title: Admin access\nid: base-2\nname: admin access\nlogsource: {category: webserver}\ndetection:\n  sel: {cs-uri-stem|startswith: /admin, sc-status: 200}\n  condition: sel\n---\n"
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(sec int, ip, path string, status int) schema.Event {
		return schema.Event{
			Timestamp: start.Add(time.Duration(sec) * time.Second),
			Event:     schema.EventMeta{ID: fmt.Sprintf("e%d", sec), Category: []string{"web"}},
			Source:    schema.Endpoint{IP: ip},
			URL:       schema.URL{Path: path},
			HTTP:      schema.HTTP{Response: schema.HTTPResponse{StatusCode: status}},
		}
	}
	// Admin access first, the failure second: only an unordered
	// correlation fires; the other address does it in order.
	evs := []schema.Event{ev(0, "a", "/admin/x", 200), ev(10, "a", "/login", 401), ev(20, "b", "/login", 401), ev(30, "b", "/admin/y", 200), ev(400, "c", "/login", 401), ev(800, "c", "/admin", 200)}
	tests := []struct {
		typ     string
		ordered string
		want    []string // source.ip of the alerts
	}{
		{"temporal", "ordered: false", []string{"a", "b"}},
		{"temporal_ordered", "ordered: true", []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			src := bases + "title: Failure and admin\nid: corr-1\nlevel: high\ncorrelation:\n  type: " + tt.typ +
				"\n  rules: [failed_login, admin access]\n  timespan: 5m\n  group-by: [c-ip]\n"
			out, probs := Convert("t.yml", []byte(src))
			if len(probs) > 0 {
				t.Fatalf("problems: %v", probs)
			}
			var yml []byte
			for _, c := range out {
				if c.ID == "sigma-corr-1" {
					yml = c.YAML
				}
			}
			for _, want := range []string{"sequence:", "within: 5m", tt.ordered, "name: failed_login", "name: admin-access", "by: [source.ip]"} {
				if !strings.Contains(string(yml), want) {
					t.Errorf("rule lacks %q:\n%s", want, yml)
				}
			}
			path := filepath.Join(t.TempDir(), "corr.yaml")
			if err := os.WriteFile(path, yml, 0o600); err != nil {
				t.Fatal(err)
			}
			rs, err := detect.LoadFiles(path)
			if err != nil {
				t.Fatalf("converted rule does not load: %v\n%s", err, yml)
			}
			d, err := detect.New(rs, detect.DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			alerts, err := d.Observe(t.Context(), evs)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range alerts {
				got = append(got, a.Trailwatch.GroupKey["source.ip"])
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("alerts for %v, want %v", got, tt.want)
			}
		})
	}
}
