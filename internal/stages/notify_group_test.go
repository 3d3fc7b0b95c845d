package stages

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/silence"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs/slack"
)

// slackCalls records chat.postMessage / chat.update on slack-go's test
// server, each post with its own ts.
type slackCalls struct {
	mu    sync.Mutex
	calls []url.Values // "method" added to each form
}

func (s *slackCalls) bind(c slacktest.Customize) {
	h := func(method string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			f, _ := url.ParseQuery(string(b))
			f.Set("method", method)
			s.mu.Lock()
			s.calls = append(s.calls, f)
			ts := fmt.Sprintf("1700000000.%06d", len(s.calls))
			s.mu.Unlock()
			if method == "chat.update" {
				ts = f.Get("ts")
			}
			fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, f.Get("channel"), ts)
		}
	}
	c.Handle("/chat.postMessage", h("chat.postMessage"))
	c.Handle("/chat.update", h("chat.update"))
}

func (s *slackCalls) list() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]url.Values(nil), s.calls...)
}

func groupedAlertRec(t *testing.T, id, ip string) *kgo.Record {
	t.Helper()
	a := schema.Alert{
		Event: schema.EventMeta{ID: id, Kind: "alert"},
		Rule:  schema.Rule{ID: "auth-bruteforce", Name: "Brute force"},
		Trailwatch: schema.AlertTrailwatch{
			Severity: "high", Count: 5, GroupKey: map[string]string{"source.ip": ip},
		},
	}
	b, _ := json.Marshal(&a)
	return &kgo.Record{Topic: "alerts", Key: []byte(id), Value: b}
}

// TestNotifyGroupedRestartContinuesThread runs the notify stage with the
// Slack notifier grouping, on kfake: the first alert pages; a second one
// is accepted (pending) and the process "crashes"; the next process loads
// the group from the notified topic, does not page again, and threads the
// follow-up under the first page. A replay of both alerts pages nothing.
func TestNotifyGroupedRestartContinuesThread(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "notified", "dlq"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	prod, err := kgo.NewClient(base...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	rec := &slackCalls{}
	srv := slacktest.NewTestServer(rec.bind)
	srv.Start()
	t.Cleanup(srv.Stop)
	cfg := slack.DefaultConfig()
	cfg.Token, cfg.Channel, cfg.APIURL = "xoxb-test", "C-SEC", srv.GetAPIURL()
	cfg.GroupInterval = time.Minute

	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	start := func() *Notify {
		t.Helper()
		sent, state, err := LoadNotified(t.Context(), base, "notified")
		if err != nil {
			t.Fatal(err)
		}
		n, err := slack.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close(t.Context()) })
		n.Restore(state["slack"])
		h := NewNotify("notified", "dlq", []Notifier{{Name: "slack", AlertNotifier: n}}, sent, nil, nil)
		h.Now, h.Producer, h.lastPrune = func() time.Time { return now }, prod, now
		return h
	}
	handle := func(h *Notify, recs ...*kgo.Record) {
		t.Helper()
		out, err := h.Handle(t.Context(), recs)
		if err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(t.Context(), out...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	h := start()
	handle(h, groupedAlertRec(t, "a1", "203.0.113.9"))
	if got := rec.list(); len(got) != 1 || got[0].Get("thread_ts") != "" {
		t.Fatalf("first alert: %v, want one page (group_wait 0 pages within Handle)", got)
	}
	now = now.Add(10 * time.Second)
	handle(h, groupedAlertRec(t, "a2", "203.0.113.9")) // within group_interval: pending
	if len(rec.list()) != 1 {
		t.Fatal("follow-up sent before group_interval")
	}

	// Restart. The replay of a1 and a2 pages nothing new; the pending a2
	// goes out as an update of the first page and a reply in its thread.
	now = now.Add(2 * time.Minute)
	h2 := start()
	handle(h2, groupedAlertRec(t, "a1", "203.0.113.9"), groupedAlertRec(t, "a2", "203.0.113.9"))
	got := rec.list()
	if len(got) != 3 {
		t.Fatalf("after restart %d calls: %v, want update + thread reply", len(got), got)
	}
	if got[1].Get("method") != "chat.update" || got[1].Get("ts") != "1700000000.000001" ||
		got[2].Get("method") != "chat.postMessage" || got[2].Get("thread_ts") != "1700000000.000001" {
		t.Errorf("after restart: %v, want chat.update of the first page and a reply in its thread", got[1:])
	}
	// One more restart: nothing pending, nothing sent.
	now = now.Add(2 * time.Minute)
	h3 := start()
	handle(h3, groupedAlertRec(t, "a2", "203.0.113.9"))
	h3.gmu.Lock()
	recs, dead := h3.flushLocked(t.Context(), now)
	h3.gmu.Unlock()
	if n := len(rec.list()); n != 3 || len(dead) != 0 {
		t.Errorf("third process sent %d calls (want none new), %d dead; state %d", n-3, len(dead), len(recs))
	}
}

func TestNotifySilencedAlertIsNotPaged(t *testing.T) {
	store := silence.Open(filepath.Join(t.TempDir(), silence.FileName))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if _, err := store.Add(silence.Silence{Rule: "auth-bruteforce", Key: "source.ip=203.0.113.9", Until: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	paging, acting := &recNotifier{}, &recNotifier{}
	h := NewNotify("notified", "dlq", []Notifier{
		{Name: "slack", AlertNotifier: paging},
		{Name: "actions", AlertNotifier: acting, IgnoreSilences: true},
	}, nil, nil, nil)
	h.Silences, h.Now = store, func() time.Time { return now }
	out, err := h.Handle(t.Context(), []*kgo.Record{groupedAlertRec(t, "a1", "203.0.113.9"), groupedAlertRec(t, "a2", "198.51.100.7")})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(paging.sent) != "[a2]" || fmt.Sprint(acting.sent) != "[a1 a2]" {
		t.Errorf("paged %v, acted on %v; want the silenced a1 acted on only", paging.sent, acting.sent)
	}
	if len(out) != 4 {
		t.Errorf("%d markers, want 4 (silenced alerts are marked handled)", len(out))
	}
}
