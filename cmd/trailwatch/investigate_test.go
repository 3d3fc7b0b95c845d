package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
)

// TestInvestigate indexes one actor's requests and alerts (and another
// actor's, and a replay run's alert) into the real OpenSearch node and
// checks the timeline and totals investigate prints, as a table and as
// NDJSON.
func TestInvestigate(t *testing.T) {
	osURL := testenv.OpenSearch(t)
	run := fmt.Sprintf("inv%d", time.Now().UnixNano())
	esCfg := elasticsearch.DefaultConfig()
	esCfg.Addresses, esCfg.Flavor = []string{osURL}, elasticsearch.FlavorOpenSearch
	esCfg.EventsIndex, esCfg.AlertsIndex = run+"-events", run+"-alerts"
	ix, err := elasticsearch.New(esCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close(t.Context())
	if err := ix.EnsureIndices(t.Context()); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var docs []outputs.Document
	event := func(i int, ip, path string, status int, country, cred string) {
		ev := schema.Event{Timestamp: base.Add(time.Duration(i) * time.Minute)}
		ev.Event.ID = fmt.Sprintf("%s-ev-%d", run, i)
		ev.Event.Outcome = "success"
		if status >= 400 {
			ev.Event.Outcome = "failure"
		}
		ev.Source.IP, ev.Source.Geo.CountryISOCode = ip, country
		ev.HTTP.Request.Method, ev.HTTP.Response.StatusCode = "GET", status
		ev.URL.Path = path
		ev.UserAgent.Original = "curl/8.0"
		ev.Trailwatch.Credential.Fingerprint = cred
		ev.Trailwatch.Identity.Owner = "team-payments"
		docs = append(docs, outputs.Document{Kind: outputs.KindEvents, ID: ev.Event.ID, Timestamp: ev.Timestamp, Body: normalize.AppendEvent(nil, &ev)})
	}
	alert := func(id, rule, ip string, at time.Time, runID string) {
		a := schema.Alert{Timestamp: at, Message: rule + " fired"}
		a.Event.ID, a.Event.Kind, a.Rule.ID, a.Source.IP, a.Trailwatch.Severity, a.Trailwatch.RunID = id, "alert", rule, ip, "high", runID
		b, _ := json.Marshal(&a)
		docs = append(docs, outputs.Document{Kind: outputs.KindAlerts, ID: id, Timestamp: at, Body: b})
	}
	const ip = "198.51.100.9"
	event(0, ip, "/api/a", 200, "DE", "fp1")
	event(1, ip, "/api/b", 200, "DE", "fp1")
	event(2, ip, "/login", 401, "FR", "fp2")
	event(3, ip, "/login", 401, "FR", "fp2")
	event(4, ip, "/admin", 200, "US", "fp2")
	event(5, "192.0.2.1", "/api/a", 200, "DE", "fp1") // another address
	event(500, ip, "/late", 200, "DE", "fp1")         // outside the range
	alert(run+"-a1", "auth-bruteforce", ip, base.Add(3*time.Minute+time.Second), "")
	alert(run+"-a2", "admin-probe", ip, base.Add(4*time.Minute), "")
	alert(run+"-a3", "admin-probe", ip, base.Add(4*time.Minute), "replay-x") // a replay run's
	if err := ix.Write(t.Context(), docs); err != nil {
		t.Fatal(err)
	}
	es := osClient{osURL}
	es.refresh(t, esCfg.EventsIndex)
	es.refresh(t, esCfg.AlertsIndex)

	cfgPath := filepath.Join(t.TempDir(), "trailwatch.yaml")
	cfg := fmt.Sprintf("index:\n  type: elasticsearch\n  elasticsearch: {addresses: [%s], flavor: opensearch, events_index: %s, alerts_index: %s}\n",
		osURL, esCfg.EventsIndex, esCfg.AlertsIndex)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	rng := []string{"-c", cfgPath, "--from", "2026-11-20T12:00:00Z", "--to", "2026-11-20T13:00:00Z"}

	t.Run("table", func(t *testing.T) {
		code, out, errs := runCmd(t, t.Context(), "", append([]string{"investigate", "--ip", ip}, rng...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		for _, want := range []string{
			"TIME", "OWNER",
			"2026-11-20T12:02:00Z  GET", "/login", "401", "FR", "curl/8.0", "team-payments",
			"2026-11-20T12:03:01Z  ALERT   auth-bruteforce",
			"5 requests (5 listed), 4 distinct endpoints, 1 IPs, 3 countries",
			"outcomes: success 3, failure 2; status codes: 200 3, 401 2",
			"2 alerts (2 listed): admin-probe 1, auth-bruteforce 1",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "/late") || strings.Contains(out, "192.0.2.1") {
			t.Errorf("output holds documents outside the range or of another actor:\n%s", out)
		}
		// The alert at 12:03:01 sits between the requests of 12:03 and 12:04.
		if i, j, k := strings.Index(out, "12:03:00Z"), strings.Index(out, "auth-bruteforce"), strings.Index(out, "12:04:00Z"); !(i < j && j < k) {
			t.Errorf("timeline not in time order:\n%s", out)
		}
	})
	t.Run("ndjson by credential", func(t *testing.T) {
		code, out, errs := runCmd(t, t.Context(), "", append([]string{"investigate", "--credential", "fp2", "--json"}, rng...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 { // 3 events of fp2 (alerts carry no credential here), totals
			t.Fatalf("%d lines, want 4:\n%s", len(lines), out)
		}
		var tot struct{ Totals totals }
		if err := json.Unmarshal([]byte(lines[3]), &tot); err != nil {
			t.Fatal(err)
		}
		if tot.Totals.Requests != 3 || tot.Totals.Endpoints != 2 || tot.Totals.Countries != 2 || tot.Totals.Statuses["401"] != 2 {
			t.Errorf("totals %+v", tot.Totals)
		}
	})
	t.Run("limit lists fewer but totals count all", func(t *testing.T) {
		code, out, errs := runCmd(t, t.Context(), "", append([]string{"investigate", "--ip", ip, "--limit", "2"}, rng...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		if !strings.Contains(out, "5 requests (2 listed)") || !strings.Contains(out, "2 alerts (2 listed)") {
			t.Errorf("totals:\n%s", out)
		}
	})
}
