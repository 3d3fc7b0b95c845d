package hop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func newTest(t testing.TB, mod func(*Config)) *Enricher {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Enabled = true
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// hopEv is one hop's event: id, event time offset, request and trace ids.
func hopEv(id string, sec int, reqID, traceID string) schema.Event {
	ev := schema.Event{Timestamp: t0.Add(time.Duration(sec) * time.Second)}
	ev.Event.ID, ev.HTTP.Request.ID, ev.Trace.ID = id, reqID, traceID
	return ev
}

func with(ev schema.Event, f func(*schema.Event)) schema.Event { f(&ev); return ev }

func TestCorrelate(t *testing.T) {
	const amzn = "Root=1-67891233-abcdef012345678912345678"
	tests := []struct {
		name string
		evs  []schema.Event
		want []schema.Hop
	}{
		{
			name: "cdn, balancer, gateway, service by request id",
			evs: []schema.Event{
				with(hopEv("cdn", 0, "req-1", ""), func(ev *schema.Event) { ev.Source.IP = "81.2.69.142" }),
				with(hopEv("lb", 0, "req-1", ""), func(ev *schema.Event) {
					ev.Source.IP = "198.51.100.10"
					ev.Trailwatch.Extra = map[string]string{"http_x_forwarded_for": "81.2.69.142"}
				}),
				with(hopEv("gw", 1, "req-1", ""), func(ev *schema.Event) { ev.Source.IP = "10.0.0.5" }),
				with(hopEv("svc", 1, "req-1", ""), func(ev *schema.Event) { ev.Source.IP = "10.0.0.9" }),
			},
			want: []schema.Hop{
				{ID: "req-1", ClientIP: "81.2.69.142"},
				{ID: "req-1", Index: 1, Duplicate: true, FirstEventID: "cdn", ClientIP: "81.2.69.142"},
				{ID: "req-1", Index: 2, Duplicate: true, FirstEventID: "cdn", ClientIP: "81.2.69.142"},
				{ID: "req-1", Index: 3, Duplicate: true, FirstEventID: "cdn", ClientIP: "81.2.69.142"},
			},
		},
		{
			name: "first seen is the service: the first public address of its chain",
			evs: []schema.Event{
				with(hopEv("svc", 0, "req-2", ""), func(ev *schema.Event) {
					ev.Source.IP = "10.0.0.9"
					ev.Trailwatch.Extra = map[string]string{"x_forwarded_for": "192.168.1.4, 81.2.69.142:5123, 198.51.100.10, 10.0.0.5"}
				}),
				with(hopEv("cdn", 0, "req-2", ""), func(ev *schema.Event) { ev.Source.IP = "81.2.69.142" }),
			},
			want: []schema.Hop{
				{ID: "req-2", ClientIP: "81.2.69.142"},
				{ID: "req-2", Index: 1, Duplicate: true, FirstEventID: "svc", ClientIP: "81.2.69.142"},
			},
		},
		{
			name: "a client resolved through trusted proxies wins over the chain",
			evs: []schema.Event{
				with(hopEv("gw", 0, "req-3", ""), func(ev *schema.Event) {
					ev.Source.IP = "81.2.69.142"
					ev.Trailwatch.Extra = map[string]string{"source.proxy.ip": "10.0.0.5", "http_x_forwarded_for": "203.0.113.66, 81.2.69.142"}
				}),
			},
			want: []schema.Hop{{ID: "req-3", ClientIP: "81.2.69.142"}},
		},
		{
			name: "client.ip when no chain, source.ip when nothing public",
			evs: []schema.Event{
				with(hopEv("a", 0, "req-4", ""), func(ev *schema.Event) { ev.Source.IP, ev.Client.IP = "10.0.0.5", "81.2.69.142" }),
				with(hopEv("b", 0, "req-5", ""), func(ev *schema.Event) {
					ev.Source.IP = "10.0.0.5"
					ev.Trailwatch.Extra = map[string]string{"xff": "unknown, 127.0.0.1, 100.64.1.1"}
				}),
			},
			want: []schema.Hop{{ID: "req-4", ClientIP: "81.2.69.142"}, {ID: "req-5", ClientIP: "10.0.0.5"}},
		},
		{
			name: "alb trace id links to the service's amzn trace header and request id",
			evs: []schema.Event{
				with(hopEv("alb", 0, "", amzn), func(ev *schema.Event) { ev.Source.IP = "81.2.69.142" }),
				hopEv("svc", 0, "req-6", "Self=1-67891234-12456789abcdef012345678;"+amzn+";Parent=53995c3f42cd8ad8;Sampled=1"),
				hopEv("worker", 1, "req-6", ""), // linked through the service's request id
			},
			want: []schema.Hop{
				{ID: "1-67891233-abcdef012345678912345678", ClientIP: "81.2.69.142"},
				{ID: "1-67891233-abcdef012345678912345678", Index: 1, Duplicate: true, FirstEventID: "alb", ClientIP: "81.2.69.142"},
				{ID: "1-67891233-abcdef012345678912345678", Index: 2, Duplicate: true, FirstEventID: "alb", ClientIP: "81.2.69.142"},
			},
		},
		{
			name: "traceparent trace id",
			evs: []schema.Event{
				hopEv("a", 0, "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
				hopEv("b", 0, "", "4bf92f3577b34da6a3ce929d0e0e4736"),
			},
			want: []schema.Hop{
				{ID: "4bf92f3577b34da6a3ce929d0e0e4736"},
				{ID: "4bf92f3577b34da6a3ce929d0e0e4736", Index: 1, Duplicate: true, FirstEventID: "a"},
			},
		},
		{
			name: "an id reused after the window starts afresh",
			evs:  []schema.Event{hopEv("a", 0, "req-7", ""), hopEv("b", 121, "req-7", ""), hopEv("c", 122, "req-7", "")},
			want: []schema.Hop{
				{ID: "req-7"},
				{ID: "req-7"},
				{ID: "req-7", Index: 1, Duplicate: true, FirstEventID: "b"},
			},
		},
		{
			name: "no id, or a dash, is left alone",
			evs:  []schema.Event{hopEv("a", 0, "", ""), hopEv("b", 0, "-", "-")},
			want: []schema.Hop{{}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTest(t, nil)
			evs := append([]schema.Event(nil), tt.evs...)
			if err := e.Enrich(t.Context(), evs); err != nil {
				t.Fatal(err)
			}
			for i := range evs {
				if evs[i].Trailwatch.Hop != tt.want[i] {
					t.Errorf("event %d hop = %+v\nwant          %+v", i, evs[i].Trailwatch.Hop, tt.want[i])
				}
			}
			// Redelivered one by one, in reverse: every event gets the same answer.
			for i := len(tt.evs) - 1; i >= 0; i-- {
				again := []schema.Event{tt.evs[i]}
				if err := e.Enrich(t.Context(), again); err != nil {
					t.Fatal(err)
				}
				if tt.want[i].ID != "" && again[0].Trailwatch.Hop != evs[i].Trailwatch.Hop {
					t.Errorf("redelivered event %d hop = %+v, first time %+v", i, again[0].Trailwatch.Hop, evs[i].Trailwatch.Hop)
				}
			}
		})
	}
}

func TestBoundsAndCounters(t *testing.T) {
	t.Run("lru evicts live ids and counts them", func(t *testing.T) {
		e := newTest(t, func(c *Config) { c.MaxIDs = 3 })
		var evs []schema.Event
		for i := range 5 {
			evs = append(evs, hopEv(fmt.Sprint("e", i), 0, fmt.Sprint("req-", i), ""))
		}
		evs = append(evs, hopEv("late", 1, "req-0", "")) // req-0 was evicted
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		if h := evs[5].Trailwatch.Hop; h.Duplicate {
			t.Errorf("hop of an evicted id = %+v, want a first hop", h)
		}
		if st := e.Stats(); st.Evictions != 3 || st.IDs != 3 || st.First != 6 || st.Duplicates != 0 {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("expired ids leave without counting as evictions", func(t *testing.T) {
		e := newTest(t, func(c *Config) { c.MaxIDs = 2; c.Window = time.Minute })
		evs := []schema.Event{hopEv("a", 0, "req-a", ""), hopEv("b", 1, "req-b", ""), hopEv("c", 300, "req-c", "")}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		if st := e.Stats(); st.Evictions != 0 || st.Expired != 2 || st.IDs != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("hops past max_hops get indexes but are not remembered", func(t *testing.T) {
		e := newTest(t, func(c *Config) { c.MaxHops = 2 })
		evs := []schema.Event{hopEv("a", 0, "r", ""), hopEv("b", 0, "r", ""), hopEv("c", 0, "r", "")}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		if evs[2].Trailwatch.Hop.Index != 2 {
			t.Fatalf("third hop = %+v", evs[2].Trailwatch.Hop)
		}
		again := []schema.Event{hopEv("b", 0, "r", "")}
		if err := e.Enrich(t.Context(), again); err != nil {
			t.Fatal(err)
		}
		if again[0].Trailwatch.Hop.Index != 1 {
			t.Fatalf("redelivered remembered hop = %+v", again[0].Trailwatch.Hop)
		}
		if st := e.Stats(); st.Redelivered != 1 || st.Duplicates != 2 {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("done context", func(t *testing.T) {
		e := newTest(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		evs := []schema.Event{hopEv("a", 0, "r", "")}
		if err := e.Enrich(ctx, evs); err == nil || evs[0].Trailwatch.Hop.ID != "" {
			t.Fatalf("Enrich with a done context: %v, %+v", err, evs[0].Trailwatch.Hop)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"default", DefaultConfig(), ""},
		{"bad", Config{Window: 0, MaxIDs: 0, MaxHops: -1}, "window: must be positive\nmax_ids: must be at least 1\nmax_hops: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("Validate = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"Root=1-5-6", "Self=a;Root=b;Parent=c", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "req-1", " - "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		c := canonical(id)
		if len(c) > len(id) || c != "" && !strings.Contains(id, c) {
			t.Fatalf("canonical(%q) = %q", id, c)
		}
	})
}

// BenchmarkEnrich measures a warm correlator over batches of 10,000
// events in groups of four hops, redelivered (the steady state of a
// replay) and fresh (every id new).
func BenchmarkEnrich(b *testing.B) {
	const batch = 10_000
	mk := func(round int) []schema.Event {
		evs := make([]schema.Event, batch)
		for i := range evs {
			evs[i] = hopEv(fmt.Sprint(round, "-", i), i/1000, fmt.Sprint(round, "-req-", i/4), "")
			evs[i].Source.IP = "81.2.69.142"
		}
		return evs
	}
	b.Run("10k events, 2.5k ids, redelivered", func(b *testing.B) {
		e := newTest(b, nil)
		evs := mk(0)
		b.ReportAllocs()
		for b.Loop() {
			_ = e.Enrich(b.Context(), evs)
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("10k events, 2.5k ids, fresh", func(b *testing.B) {
		e := newTest(b, nil)
		rounds := make([][]schema.Event, 8)
		for i := range rounds {
			rounds[i] = mk(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			evs := append([]schema.Event(nil), rounds[i%len(rounds)]...)
			for j := range evs {
				evs[j].HTTP.Request.ID = fmt.Sprint(i, "-", evs[j].HTTP.Request.ID)
			}
			b.StartTimer()
			_ = e.Enrich(b.Context(), evs)
			i++
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	})
}
