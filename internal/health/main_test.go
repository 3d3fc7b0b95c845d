package health

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the wall clock the tests start from.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newMonitor builds a Monitor from the defaults changed by edit.
func newMonitor(t *testing.T, edit func(*Config)) *Monitor {
	t.Helper()
	cfg := DefaultConfig()
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ruleIDs returns the rule ids of alerts, in order.
func ruleIDs(alerts []schema.Alert) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, a.Rule.ID)
	}
	return out
}

// only asserts that alerts is exactly one alert of rule and returns it.
func only(t *testing.T, alerts []schema.Alert, rule string) schema.Alert {
	t.Helper()
	if len(alerts) != 1 || alerts[0].Rule.ID != rule {
		t.Fatalf("alerts = %v, want one %s", ruleIDs(alerts), rule)
	}
	a := alerts[0]
	if a.Event.Kind != "alert" || a.Event.ID == "" || a.Rule.Ruleset != Ruleset || a.Message == "" || a.Trailwatch.Severity == "" {
		t.Fatalf("incomplete alert: %+v", a)
	}
	return a
}

// none asserts that there are no alerts.
func none(t *testing.T, alerts []schema.Alert, when string) {
	t.Helper()
	if len(alerts) != 0 {
		t.Fatalf("%s: unexpected alerts %v: %s", when, ruleIDs(alerts), alerts[0].Message)
	}
}
