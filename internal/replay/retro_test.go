package replay

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestChangedRules(t *testing.T) {
	prev := loadRules(t, testRules)
	tests := []struct {
		name string
		next string
		want []string
	}{
		{name: "same rules", next: testRules, want: nil},
		{name: "title edit does not count", next: strings.Replace(testRules, "title: Admin request", "title: Admin page", 1), want: nil},
		{name: "condition changed", next: strings.Replace(testRules, `"/admin"`, `"/adm"`, 1), want: []string{"t-admin"}},
		{name: "window changed", next: strings.Replace(testRules, "count: 5", "count: 4", 1), want: []string{"t-burst"}},
		{name: "rule added", next: testRules + "  - {id: t-new, title: New, severity: low, where: 'url.path == \"/new\"'}\n", want: []string{"t-new"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ChangedRules(prev, loadRules(t, tc.next))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("changed %v, want %v", got, tc.want)
			}
		})
	}
	if got := ChangedRules(nil, prev); !slices.Equal(got, []string{"t-admin", "t-burst"}) {
		t.Errorf("with no previous set: %v, want every rule", got)
	}
}

// TestRetroHuntRunsOnlyChangedRules: a changed rule is run over the look
// back and reports what it would have caught; the unchanged one is not run.
func TestRetroHuntRunsOnlyChangedRules(t *testing.T) {
	cl, opts := fakeKafka(t, 3, "events")
	now := base.Add(2 * time.Hour)
	var evs []schema.Event
	for i := range 120 {
		ev := adminEvent(i, base.Add(time.Duration(i)*time.Minute))
		if i%2 == 0 {
			ev.URL.Path = "/admin-old"
		}
		evs = append(evs, ev)
	}
	produceEvents(t, cl, "events", evs)
	prev := loadRules(t, testRules)
	next := loadRules(t, strings.Replace(testRules, `url.path startsWith "/admin"`, `url.path == "/admin-old"`, 1))
	cfg := Config{Kafka: opts, Topic: "events", Input: InputEvents, To: now, Detect: detect.DefaultConfig(), DedupIDs: 100}
	var got []schema.Alert
	rep, err := RetroHunt(t.Context(), prev, next, RetroConfig{Enabled: true, LookBack: time.Hour}, cfg,
		func(_ context.Context, a []schema.Alert) error { got = append(got, a...); return nil }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Changed, []string{"t-admin"}) {
		t.Fatalf("changed %v, want [t-admin]", rep.Changed)
	}
	// The last hour holds 30 "/admin-old" events.
	if rep.Result.Alerts != 30 || len(got) != 30 || rep.Result.AlertsByRule["t-admin"] != 30 {
		t.Fatalf("%d alerts (%d sunk), want 30: %s", rep.Result.Alerts, len(got), rep)
	}
	for _, a := range got {
		if !strings.HasPrefix(a.Trailwatch.RunID, "retro-") || a.Timestamp.Before(now.Add(-time.Hour)) {
			t.Fatalf("alert %s: run %q at %s", a.Event.ID, a.Trailwatch.RunID, a.Timestamp)
		}
	}
	if !strings.Contains(rep.String(), "t-admin 30") {
		t.Errorf("report %q does not say what was caught", rep)
	}

	none, err := RetroHunt(t.Context(), prev, prev, RetroConfig{Enabled: true, LookBack: time.Hour}, cfg, nil, nil)
	if err != nil || len(none.Changed) != 0 || none.Result.RunID != "" {
		t.Fatalf("unchanged rules ran a replay: %+v, %v", none, err)
	}
}

func TestRetroConfigValidate(t *testing.T) {
	if err := (RetroConfig{Enabled: true}).Validate(); err == nil || !strings.Contains(err.Error(), "look_back") {
		t.Fatalf("err %v, want look_back named", err)
	}
	if err := DefaultRetroConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestProgressPrinter(t *testing.T) {
	p := Progress{Records: 250, Total: 1000, Events: 500, Elapsed: 2 * time.Second}
	tests := []struct {
		name    string
		tty     bool
		updates []time.Duration // clock offsets of successive updates
		want    string
	}{
		{name: "plain lines at the interval", tty: false, updates: []time.Duration{0, time.Second, 5 * time.Second},
			want: "replay: 250/1000 records (25.0%), 500 events, 250 events/s, ETA 6s\n" +
				"replay: 250/1000 records (25.0%), 500 events, 250 events/s, ETA 6s\n"},
		{name: "terminal line rewritten in place", tty: true, updates: []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond},
			want: "\rreplay: 250/1000 records (25.0%), 500 events, 250 events/s, ETA 6s\x1b[K" +
				"\rreplay: 250/1000 records (25.0%), 500 events, 250 events/s, ETA 6s\x1b[K\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			pp := NewProgressPrinter(&buf, tc.tty, 5*time.Second)
			clock := base
			pp.now = func() time.Time { return clock }
			for _, at := range tc.updates {
				clock = base.Add(at)
				pp.Update(p)
			}
			pp.Done()
			if buf.String() != tc.want {
				t.Fatalf("got %q\nwant %q", buf.String(), tc.want)
			}
		})
	}
}
