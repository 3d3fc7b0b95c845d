package actor

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/enrich/internal/state"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// history is a day of traffic by a few credentials, some sharing IPs,
// moving between cities, and anonymous clients, in event-time order with
// a few events late by seconds; split into batches.
func history(n int) []schema.Event {
	places := []schema.Geo{london, paris, newYork, reading}
	evs := make([]schema.Event, 0, n)
	for i := range n {
		cred := fmt.Sprintf("cred-%d", i%5)
		if i%7 == 0 {
			cred = "" // anonymous: an IP-only actor
		}
		at := time.Duration(i) * 3 * time.Minute
		if i%11 == 0 {
			at -= 40 * time.Second // late
		}
		e := ev(cred, fmt.Sprintf("81.2.69.%d", i%9), at, places[(i/13)%len(places)], []string{firefox, curlUA}[i/17%2], int64(i))
		e.Source.AS.Number = int64(64512 + i%3)
		evs = append(evs, e)
	}
	return evs
}

func batches(evs []schema.Event, size int) [][]schema.Event {
	var out [][]schema.Event
	for len(evs) > 0 {
		n := min(size, len(evs))
		out = append(out, evs[:n])
		evs = evs[n:]
	}
	return out
}

func restore(t *testing.T, e *Enricher, log []state.Change) {
	t.Helper()
	for _, c := range log {
		if err := e.Restore(c.Key, c.Value); err != nil {
			t.Fatal(err)
		}
	}
}

func sameOutput(t *testing.T, what string, got, want []schema.Event) {
	t.Helper()
	for i := range want {
		if !reflect.DeepEqual(got[i].Trailwatch, want[i].Trailwatch) {
			t.Fatalf("%s: event %d:\n got  %+v\n want %+v", what, i, got[i].Trailwatch, want[i].Trailwatch)
		}
	}
}

// TestRestart runs the same history through one enricher that lives
// throughout and through one that restarts between batches as the detect
// stage restarts it: restored from its changelog (credentials and users),
// then warmed with the partition's committed input (which rebuilds the
// IP-only actors, never written to the changelog), with and without the
// batch in flight redelivered.
func TestRestart(t *testing.T) {
	// Batches of 50 hold up to 10 events of one actor: a window of 16
	// remembers them all, so a redelivered batch is exact.
	window := func(c *Config) { c.ReplayWindow = 16 }
	bs := batches(history(400), 50)
	ref := newEnricher(t, window)
	var want [][]schema.Event
	for _, b := range bs {
		want = append(want, run(t, ref, b))
	}
	tests := []struct {
		name string
		// crash after the changelog of batch i was written but before its
		// offsets were committed: i is delivered again after the restart.
		redeliver bool
	}{
		{name: "restart between batches"},
		{name: "crash after the changelog, batch redelivered", redeliver: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var changelog []state.Change // a compacted topic, in order
			e := newEnricher(t, window)
			var replays uint64
			for i, b := range bs {
				got := run(t, e, b)
				sameOutput(t, fmt.Sprintf("batch %d", i), got, want[i])
				for _, c := range e.DrainChanges() {
					if len(c.Key) > 3 && string(c.Key[:3]) == "ip:" {
						t.Fatalf("IP-only actor %s written to the changelog", c.Key)
					}
					changelog = append(changelog, c)
				}
				// Restart: a fresh enricher restored from the log and
				// warmed with the committed batches.
				e = newEnricher(t, window)
				restore(t, e, changelog)
				committed := bs[:i+1]
				if tt.redeliver {
					committed = bs[:i]
				}
				for _, w := range committed {
					run(t, e, w)
				}
				e.DrainChanges() // written when first processed
				if tt.redeliver {
					before := e.Stats().Replays
					again := run(t, e, b)
					// An IP-only actor's event is enriched afresh: its
					// distinct_actors counts the credentials as restored,
					// which already hold the whole batch. Everything else
					// is as the first time.
					exp := slices.Clone(want[i])
					for j := range exp {
						if exp[j].Trailwatch.Credential.Fingerprint == "" {
							exp[j].Trailwatch.Signals.DistinctActors = again[j].Trailwatch.Signals.DistinctActors
						}
					}
					sameOutput(t, fmt.Sprintf("batch %d redelivered", i), again, exp)
					if ch := e.DrainChanges(); len(ch) != 0 {
						t.Fatalf("batch %d redelivered changed %d actors", i, len(ch))
					}
					replays = e.Stats().Replays - before
				}
			}
			if got, w := e.Stats(), ref.Stats(); got.Actors != w.Actors || got.IPActors != w.IPActors {
				t.Errorf("actors after restarts %d+%d, without %d+%d", got.Actors, got.IPActors, w.Actors, w.IPActors)
			}
			if tt.redeliver {
				// The credentials' events are recognised from the
				// changelog; IP-only actors see them for the first time
				// after the warm-up, as the first delivery did.
				credEvents := 0
				for _, ev := range bs[len(bs)-1] {
					if ev.Trailwatch.Credential.Fingerprint != "" {
						credEvents++
					}
				}
				if replays != uint64(credEvents) {
					t.Errorf("redelivery replays = %d, want the last batch's credential events, %d", replays, credEvents)
				}
			}
		})
	}
}

// TestRedeliveryIsIdempotent sends batches again in the same process, as
// after an abandoned batch: each event gets what it got the first time,
// nothing is counted twice, and later batches are unaffected.
func TestRedeliveryIsIdempotent(t *testing.T) {
	window := func(c *Config) { c.ReplayWindow = 16 } // > any actor's events per batch
	bs := batches(history(300), 40)
	ref := newEnricher(t, window)
	e := newEnricher(t, window)
	for i, b := range bs {
		want := run(t, ref, b)
		got := run(t, e, b)
		sameOutput(t, fmt.Sprintf("batch %d", i), got, want)
		again := run(t, e, b)
		sameOutput(t, fmt.Sprintf("batch %d again", i), again, want)
		// Enriching the already enriched events changes nothing either.
		twice := append([]schema.Event(nil), got...)
		if err := e.Enrich(t.Context(), twice); err != nil {
			t.Fatal(err)
		}
		sameOutput(t, fmt.Sprintf("batch %d enriched twice", i), twice, want)
	}
	if st, w := e.Stats(), ref.Stats(); st.Sessions != w.Sessions || st.Replays != 600 {
		t.Errorf("stats %+v\nwithout redelivery %+v", st, w)
	}
}

// TestHotActorBeyondReplayWindow redelivers a batch holding more of one
// actor's events than the replay window: those in the window get the same
// output, older ones are not counted again.
func TestHotActorBeyondReplayWindow(t *testing.T) {
	e := newEnricher(t, func(c *Config) { c.ReplayWindow = 4 })
	var b []schema.Event
	for i := range 10 {
		b = append(b, ev("hot", "81.2.69.1", time.Duration(i)*time.Second, london, firefox, 1))
	}
	first := run(t, e, b)
	again := run(t, e, b)
	for i := range again {
		s := again[i].Trailwatch.Session
		want := first[i].Trailwatch.Session
		if i < 6 {
			// Older than the window: the session as it stands, not counted.
			want.Requests, want.Bytes = 10, 10
		}
		if s != want {
			t.Errorf("event %d: session %+v, want %+v", i, s, want)
		}
	}
	if st := e.Stats(); st.Replays != 4 || st.Stale != 6 || st.Sessions != 1 {
		t.Errorf("stats = %+v", st)
	}
	next := run(t, e, []schema.Event{ev("hot", "81.2.69.1", 11*time.Second, london, firefox, 1)})
	if s := next[0].Trailwatch.Session; s.Requests != 11 || s.Bytes != 11 {
		t.Errorf("next event: session %+v, want 11 requests", s)
	}
}

func TestBounds(t *testing.T) {
	e := newEnricher(t, func(c *Config) {
		c.MaxActors, c.MaxIPActors, c.MaxValues, c.Learning = 2, 3, 2, 0
	})
	var b []schema.Event
	for i := range 4 { // a's IPs: .0 .1 .2 .3 through two slots
		b = append(b, ev("a", fmt.Sprintf("81.2.69.%d", i), time.Duration(i)*time.Minute, london, firefox, 0))
	}
	b = append(b, ev("b", "81.2.69.3", 5*time.Minute, london, firefox, 0))
	for i := range 5 { // a scan from five addresses evicts only IP actors
		b = append(b, ev("", fmt.Sprintf("198.51.100.%d", i), 6*time.Minute, london, firefox, 0))
	}
	b = append(b, ev("c", "81.2.69.3", 7*time.Minute, london, firefox, 0)) // evicts a
	b = append(b, ev("b", "81.2.69.3", 8*time.Minute, london, firefox, 0))
	got := run(t, e, b)
	st := e.Stats()
	if st.Actors != 2 || st.IPActors != 3 || st.Evictions != 1 || st.IPEvictions != 2 || st.ValueEvictions != 2 {
		t.Errorf("stats = %+v", st)
	}
	if n := got[len(got)-1].Trailwatch.Signals.DistinctActors; n != 2 {
		t.Errorf("distinct actors of the shared IP after a was evicted = %d, want 2 (b, c)", n)
	}
	if n := got[3].Trailwatch.Signals.DistinctIPs; n != 2 {
		t.Errorf("distinct ips with two slots = %d, want 2", n)
	}
	var deleted []string
	for _, c := range e.DrainChanges() {
		if c.Value == nil {
			deleted = append(deleted, string(c.Key))
		}
	}
	slices.Sort(deleted)
	// IP-only actors are never written, so never deleted either.
	if want := []string{"cred:a"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted = %q, want %q", deleted, want)
	}
	// The evicted actor comes back new: it learns again.
	back := run(t, e, []schema.Event{ev("a", "81.2.69.9", 9*time.Minute, paris, curlUA, 0)})
	if f := back[0].Trailwatch.Signals.FirstSeen; f != (schema.FirstSeen{}) {
		t.Errorf("first event of a re-created actor flagged %+v", f)
	}
}

func TestRestoreBadRecords(t *testing.T) {
	e := newEnricher(t, nil)
	run(t, e, []schema.Event{ev("a", "81.2.69.1", 0, london, firefox, 1)})
	good := e.DrainChanges()[0]
	tests := []struct {
		name  string
		value []byte
	}{
		{name: "unknown version", value: append([]byte{9}, good.Value[1:]...)},
		{name: "truncated", value: good.Value[:len(good.Value)-3]},
		{name: "trailing bytes", value: append(slices.Clone(good.Value), 0)},
	}
	fresh := newEnricher(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := fresh.Restore(good.Key, tt.value); err == nil {
				t.Fatal("Restore succeeded")
			}
		})
	}
	if st := fresh.Stats(); st.RestoreErrors != 3 || st.Actors != 0 {
		t.Errorf("stats = %+v", st)
	}
	// A delete forgets the actor.
	if err := fresh.Restore(good.Key, good.Value); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Restore(good.Key, nil); err != nil {
		t.Fatal(err)
	}
	if st := fresh.Stats(); st.Actors != 0 || st.Restored != 2 {
		t.Errorf("after delete: %+v", st)
	}
}

func BenchmarkEnrich(b *testing.B) {
	for _, actors := range []int{100, 10_000} {
		b.Run(fmt.Sprintf("%d credentials, batches of 10k", actors), func(b *testing.B) {
			e := newEnricher(b, nil)
			tmpl := make([]schema.Event, 10_000)
			for i := range tmpl {
				tmpl[i] = ev(fmt.Sprintf("cred-%d", i%actors), fmt.Sprintf("81.2.%d.%d", i%7, i%200), time.Duration(i)*time.Millisecond, []schema.Geo{london, paris}[i%97/96], firefox, 100)
			}
			evs := make([]schema.Event, len(tmpl))
			step := time.Duration(0)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				copy(evs, tmpl)
				step += 10 * time.Second
				for i := range evs {
					evs[i].Timestamp = evs[i].Timestamp.Add(step)
					evs[i].Event.ID = fmt.Sprintf("%d-%d", step, i)
				}
				b.StartTimer()
				if err := e.Enrich(b.Context(), evs); err != nil {
					b.Fatal(err)
				}
				e.DrainChanges()
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
