package slack

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/trailwatch/trailwatch/internal/silence"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
	"github.com/trailwatch/trailwatch/outputs/route"
)

var _ outputs.Grouper = (*Notifier)(nil)

// calls records the Web API calls the notifier made, as forms.
type calls struct {
	mu  sync.Mutex
	all []call
}

type call struct {
	method string
	form   url.Values
}

func (c *calls) add(method string, f url.Values) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, call{method, f})
}

func (c *calls) list() []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call(nil), c.all...)
}

// apiServer is slacktest with chat.postMessage and chat.update answered by
// recording handlers: slacktest serves no chat.update, and its
// postMessage ts has a one-second resolution, so every post here gets its
// own ts ("1700000000.00000N").
func apiServer(t *testing.T) (string, *calls) {
	t.Helper()
	c := &calls{}
	var mu sync.Mutex
	seq := 0
	record := func(method string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			f, _ := url.ParseQuery(string(b))
			c.add(method, f)
			mu.Lock()
			seq++
			ts := fmt.Sprintf("1700000000.%06d", seq)
			mu.Unlock()
			if method == "chat.update" {
				ts = f.Get("ts")
			}
			w.Header().Set("Content-Type", "application/json")
			// Slack answers with the channel's ID, whatever name was used.
			_, _ = fmt.Fprintf(w, `{"ok":true,"channel":"C-%s","ts":%q}`, strings.TrimPrefix(f.Get("channel"), "C-"), ts)
		}
	}
	s := server(t, map[string]http.HandlerFunc{
		"/chat.postMessage": record("chat.postMessage"),
		"/chat.update":      record("chat.update"),
	})
	return s.GetAPIURL(), c
}

func groupAlert(id, ip string, at time.Time, count int64) schema.Alert {
	a := testAlert()
	a.Event.ID = id
	a.Source.IP = ip
	a.Trailwatch.GroupKey = map[string]string{"source.ip": ip}
	a.Trailwatch.Count = count
	a.Trailwatch.FirstSeen, a.Trailwatch.LastSeen = at, at.Add(time.Minute)
	return a
}

func formBlocks(t *testing.T, f url.Values) string {
	t.Helper()
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(f.Get("blocks")), &blocks); err != nil {
		t.Fatal(err)
	}
	return blockText(t, blocks)
}

// TestGroupingUpdatesInPlaceAndThreads walks one group through its life:
// the first alerts wait group_wait and go out as one page; later alerts
// update that page in place (running count) and reply in its thread at
// most every group_interval; after repeat_interval a new page is posted.
func TestGroupingUpdatesInPlaceAndThreads(t *testing.T) {
	api, rec := apiServer(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := newNotifier(t, Config{
		Token: "xoxb-test", Channel: "C-SEC", APIURL: api, Grouping: true,
		GroupWait: 30 * time.Second, GroupInterval: 5 * time.Minute, RepeatInterval: time.Hour,
	})
	flush := func(at time.Time) {
		t.Helper()
		if _, dead := n.Flush(t.Context(), at); len(dead) > 0 {
			t.Fatalf("dead letters: %+v", dead)
		}
	}
	n.Accept(t0, groupAlert("a1", "203.0.113.9", t0, 10))
	n.Accept(t0.Add(10*time.Second), groupAlert("a2", "203.0.113.9", t0.Add(10*time.Second), 5))
	flush(t0.Add(20 * time.Second)) // within group_wait: nothing
	if got := rec.list(); len(got) != 0 {
		t.Fatalf("sent during group_wait: %v", got)
	}
	flush(t0.Add(30 * time.Second))
	got := rec.list()
	if len(got) != 1 || got[0].method != "chat.postMessage" || got[0].form.Get("thread_ts") != "" {
		t.Fatalf("after group_wait: %+v, want one top-level post", got)
	}
	if text := formBlocks(t, got[0].form); !strings.Contains(text, "*Alerts*\n2") || !strings.Contains(text, "*Count*\n15") {
		t.Errorf("first page lacks the gathered totals:\n%s", text)
	}
	pageTS := "1700000000.000001"

	// A follow-up within group_interval waits; at the interval it updates
	// the page and replies in its thread.
	n.Accept(t0.Add(time.Minute), groupAlert("a3", "203.0.113.9", t0.Add(time.Minute), 7))
	flush(t0.Add(2 * time.Minute))
	if len(rec.list()) != 1 {
		t.Fatal("follow-up sent before group_interval")
	}
	flush(t0.Add(30*time.Second + 5*time.Minute))
	got = rec.list()
	if len(got) != 3 {
		t.Fatalf("after group_interval %d calls, want update + reply: %+v", len(got), got)
	}
	up, reply := got[1], got[2]
	if up.method != "chat.update" || up.form.Get("ts") != pageTS || up.form.Get("channel") != "C-SEC" {
		t.Errorf("update = %s %v, want chat.update of ts %s", up.method, up.form, pageTS)
	}
	if text := formBlocks(t, up.form); !strings.Contains(text, "*Alerts*\n3") || !strings.Contains(text, "*Count*\n22") {
		t.Errorf("updated page lacks the running totals:\n%s", text)
	}
	if reply.method != "chat.postMessage" || reply.form.Get("thread_ts") != pageTS || !strings.Contains(reply.form.Get("text"), "1 more alert(s)") {
		t.Errorf("reply = %s %v, want a thread reply to %s", reply.method, reply.form, pageTS)
	}

	// Past repeat_interval a new alert opens a new page.
	n.Accept(t0.Add(2*time.Hour), groupAlert("a4", "203.0.113.9", t0.Add(2*time.Hour), 1))
	flush(t0.Add(2 * time.Hour))
	got = rec.list()
	if len(got) != 4 || got[3].method != "chat.postMessage" || got[3].form.Get("thread_ts") != "" {
		t.Fatalf("after repeat_interval: %+v, want a new top-level post", got[3:])
	}
	if st := n.Stats(); st.Pages != 2 || st.Updates != 1 || st.Replies != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestGroupingKeepsGroupsApart(t *testing.T) {
	api, rec := apiServer(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := newNotifier(t, Config{Token: "xoxb-test", Channel: "C-SEC", APIURL: api, Grouping: true})
	n.Accept(t0, groupAlert("a1", "203.0.113.1", t0, 1), groupAlert("a2", "203.0.113.2", t0, 1), groupAlert("a3", "203.0.113.1", t0, 1))
	n.Flush(t.Context(), t0)
	if got := rec.list(); len(got) != 2 {
		t.Fatalf("%d posts for two groups, want 2", len(got))
	}
}

func TestRoutingPicksChannel(t *testing.T) {
	routes := []Route{
		{Match: route.Match{Severity: []string{"critical"}}, Channel: "C-ONCALL"},
		{Match: route.Match{Tags: []string{"noise"}}, Drop: true},
		{Match: route.Match{Routes: []string{"platform"}}, Channel: "C-PLATFORM"},
		{Match: route.Match{Rules: []string{"auth-bruteforce"}, Severity: []string{"high"}}, Channel: "C-AUTH"},
	}
	tests := []struct {
		name    string
		edit    func(a *schema.Alert)
		want    string // "" means dropped
		grouped bool
	}{
		{name: "critical first", edit: func(a *schema.Alert) { a.Trailwatch.Severity = "critical" }, want: "C-ONCALL"},
		{name: "dropped by tag", edit: func(a *schema.Alert) { a.Tags = append(a.Tags, "noise") }},
		{name: "rule route", edit: func(a *schema.Alert) { a.Trailwatch.Routes = []string{"platform"} }, want: "C-PLATFORM"},
		{name: "rule and severity", edit: func(*schema.Alert) {}, want: "C-AUTH"},
		{name: "default channel", edit: func(a *schema.Alert) { a.Rule.ID = "other" }, want: "C-DEFAULT"},
		{name: "grouped too", edit: func(a *schema.Alert) { a.Trailwatch.Severity = "critical" }, want: "C-ONCALL", grouped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, rec := apiServer(t)
			n := newNotifier(t, Config{Token: "xoxb-test", Channel: "C-DEFAULT", APIURL: api, Routes: routes, Grouping: tt.grouped})
			a := testAlert()
			tt.edit(&a)
			if tt.grouped {
				n.Accept(time.Now(), a)
				n.Flush(t.Context(), time.Now())
			} else if _, err := n.Notify(t.Context(), a); err != nil {
				t.Fatal(err)
			}
			got := rec.list()
			if tt.want == "" {
				if len(got) != 0 || n.Stats().Dropped != 1 {
					t.Fatalf("dropped alert posted: %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].form.Get("channel") != tt.want {
				t.Fatalf("posted %+v, want one post to %s", got, tt.want)
			}
		})
	}
}

// TestGroupingRestoredStateContinuesThread: a notifier restored from the
// state records another one returned does not page again and threads its
// follow-ups under the first page.
func TestGroupingRestoredStateContinuesThread(t *testing.T) {
	api, rec := apiServer(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := Config{Token: "xoxb-test", Channel: "C-SEC", APIURL: api, Grouping: true, GroupInterval: time.Minute, RepeatInterval: time.Hour}
	state := map[string][]byte{}
	keep := func(ch map[string][]byte) {
		for k, v := range ch {
			if v == nil {
				delete(state, k)
			} else {
				state[k] = v
			}
		}
	}
	first := newNotifier(t, cfg)
	keep(first.Accept(t0, groupAlert("a1", "203.0.113.9", t0, 3)))
	ch, _ := first.Flush(t.Context(), t0)
	keep(ch)
	keep(first.Accept(t0.Add(10*time.Second), groupAlert("a2", "203.0.113.9", t0, 3))) // pending at the "crash"

	second := newNotifier(t, cfg)
	second.Restore(state)
	second.Flush(t.Context(), t0.Add(30*time.Second)) // before group_interval: nothing
	second.Flush(t.Context(), t0.Add(2*time.Minute))
	got := rec.list()
	if len(got) != 3 || got[1].method != "chat.update" || got[2].form.Get("thread_ts") != "1700000000.000001" {
		t.Fatalf("calls after restart = %+v, want update + reply in the first page's thread", got)
	}
}

func TestSilenceSuppressesPendingGroup(t *testing.T) {
	api, rec := apiServer(t)
	store := silence.Open(filepath.Join(t.TempDir(), silence.FileName))
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := newNotifier(t, Config{Token: "xoxb-test", Channel: "C-SEC", APIURL: api, Grouping: true, GroupWait: time.Minute}, WithSilences(store))
	n.Accept(t0, groupAlert("a1", "203.0.113.9", t0, 3), groupAlert("a2", "198.51.100.1", t0, 3))
	// Silenced during the group wait: that group is not paged, the other is.
	if _, err := store.Add(silence.Silence{Rule: "auth-bruteforce", Key: "source.ip=203.0.113.9", Until: t0.Add(time.Hour)}, t0); err != nil {
		t.Fatal(err)
	}
	n.Flush(t.Context(), t0.Add(time.Minute))
	got := rec.list()
	if len(got) != 1 || !strings.Contains(got[0].form.Get("text"), "198.51.100.1") {
		t.Fatalf("posted %+v, want only the unsilenced group", got)
	}
	if n.Stats().Silenced != 1 {
		t.Errorf("silenced = %d, want 1", n.Stats().Silenced)
	}
}

func TestGroupingRateLimitKeepsPending(t *testing.T) {
	limited := true
	var mu sync.Mutex
	posts := 0
	s := server(t, map[string]http.HandlerFunc{
		"/chat.postMessage": func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			posts++
			if limited {
				w.Header().Set("Retry-After", "30")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_, _ = io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1.1"}`)
		},
	})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := newNotifier(t, Config{Token: "xoxb-test", Channel: "C1", APIURL: s.GetAPIURL(), Grouping: true},
		withClock(func() time.Time { return now }))
	n.Accept(now, groupAlert("a1", "203.0.113.1", now, 1), groupAlert("a2", "203.0.113.2", now, 1))
	_, dead := n.Flush(t.Context(), now)
	mu.Lock()
	if posts != 1 || len(dead) != 0 {
		t.Fatalf("%d posts, %d dead after a 429; want 1 request and the rest held back", posts, len(dead))
	}
	limited = false
	mu.Unlock()
	now = now.Add(10 * time.Second)
	n.Flush(t.Context(), now) // within Retry-After: no request
	mu.Lock()
	if posts != 1 {
		t.Fatalf("%d posts during Retry-After, want 1", posts)
	}
	mu.Unlock()
	now = now.Add(30 * time.Second)
	n.Flush(t.Context(), now)
	mu.Lock()
	defer mu.Unlock()
	if posts != 3 {
		t.Errorf("%d posts after Retry-After, want both groups paged (3 requests)", posts)
	}
}
