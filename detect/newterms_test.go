package detect

import (
	"fmt"
	"slices"
	"testing"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

const newASN = `
id: new-asn
title: Credential from a new ASN
where: trailwatch.credential.fingerprint != ""
new_terms:
  by: [trailwatch.credential.fingerprint]
  fields: [source.as.number]
  history: 30d
  learning: 1d
  max_terms: 3
`

const hour = 3600.0

// use is a request with credential fp from asn at sec seconds after t0.
func use(sec float64, fp string, asn int64) schema.Event {
	return schema.Event{
		Timestamp:  at(sec),
		Event:      schema.EventMeta{ID: fmt.Sprintf("%s-%d@%v", fp, asn, sec)},
		Source:     schema.Endpoint{AS: schema.AS{Number: asn}},
		Trailwatch: schema.Trailwatch{Credential: schema.Credential{Fingerprint: fp}},
	}
}

func TestNewTerms(t *testing.T) {
	day := 24 * hour
	tests := []struct {
		name string
		rule string
		evs  []schema.Event
		want []float64
	}{
		{"a new ASN after learning fires", newASN,
			[]schema.Event{use(0, "k", 1), use(2*day, "k", 1), use(2*day+1, "k", 2)}, []float64{2*day + 1}},
		{"known ASNs are quiet", newASN,
			[]schema.Event{use(0, "k", 1), use(hour, "k", 2), use(2*day, "k", 1), use(3*day, "k", 2)}, []float64{}},
		{"new ASNs during learning are learned quietly", newASN,
			[]schema.Event{use(0, "k", 1), use(hour, "k", 2), use(2*day, "k", 2)}, []float64{}},
		{"the first term of a key never fires", newASN,
			[]schema.Event{use(0, "k", 1), use(0, "j", 1)}, []float64{}},
		{"a missing term is ignored", newASN,
			[]schema.Event{use(0, "k", 1), use(2*day, "k", 0)}, []float64{}},
		{"a term not seen within history is new again", newASN,
			[]schema.Event{use(0, "k", 1), use(hour, "k", 2), use(20*day, "k", 1), use(32*day, "k", 2)}, []float64{32 * day}},
		{"a key idle for all its history learns again", newASN,
			[]schema.Event{use(0, "k", 1), use(31*day, "k", 2), use(31*day+hour, "k", 3)}, []float64{}},
		{"a term evicted past max_terms is new again", newASN,
			[]schema.Event{use(0, "k", 1), use(1, "k", 2), use(2, "k", 3), use(2*day, "k", 4), use(2*day+1, "k", 1)}, []float64{2 * day, 2*day + 1}},
		{"suppress holds back a second new term", newASN + "suppress: 1h\n",
			[]schema.Event{use(0, "k", 1), use(2*day, "k", 2), use(2*day+1, "k", 3), use(2*day+hour, "k", 4)}, []float64{2 * day, 2*day + hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustDetector(t, mustRules(t, tt.rule), DefaultConfig())
			alerts, err := d.Observe(t.Context(), tt.evs)
			if err != nil {
				t.Fatal(err)
			}
			if got := fires(alerts); !slices.Equal(got, tt.want) {
				t.Errorf("alerts at %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewTermsAlertFields(t *testing.T) {
	d := mustDetector(t, mustRules(t, newASN), DefaultConfig())
	alerts, _ := d.Observe(t.Context(), []schema.Event{use(0, "k", 1), use(50*hour, "k", 64500)})
	if len(alerts) != 1 {
		t.Fatalf("got %d alerts, want 1", len(alerts))
	}
	tw := alerts[0].Trailwatch
	if tw.Aggregation != "new_terms(source.as.number)" || tw.Count != 1 || tw.Value != 1 || tw.Window != "720h0m0s" {
		t.Errorf("aggregation %q count %d value %v window %q", tw.Aggregation, tw.Count, tw.Value, tw.Window)
	}
	if !slices.Equal(tw.DistinctValues, []string{"64500"}) || !slices.Equal(tw.EventIDs, []string{"k-64500@180000"}) {
		t.Errorf("values %v ids %v", tw.DistinctValues, tw.EventIDs)
	}
	want := "Credential from a new ASN: new source.as.number=64500 (1 known in 720h0m0s) for trailwatch.credential.fingerprint=k"
	if alerts[0].Message != want {
		t.Errorf("message %q, want %q", alerts[0].Message, want)
	}
}

func TestNewTermsLateSkipped(t *testing.T) {
	d := mustDetector(t, mustRules(t, newASN), DefaultConfig())
	alerts, _ := d.Observe(t.Context(), []schema.Event{use(0, "k", 1), use(50*hour, "k", 1), use(50*hour-120, "k", 2)})
	if len(alerts) != 0 {
		t.Errorf("a late new term alerted")
	}
	if len(d.DrainChanges()) != 2 {
		t.Errorf("a late event changed durable state")
	}
}

// restoreAll feeds changes to a fresh detector as a compacted topic would:
// in order, later records for a key replacing earlier ones.
func restoreAll(t *testing.T, rs *RuleSet, changes []StateChange) *Detector {
	t.Helper()
	d := mustDetector(t, rs, DefaultConfig())
	for _, c := range changes {
		if err := d.Restore(c.Key, c.Value); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestNewTermsRestore(t *testing.T) {
	rs := mustRules(t, newASN)
	day := 24 * hour
	history := []schema.Event{use(0, "k", 1), use(hour, "k", 2), use(2*hour, "j", 7), use(2*day, "k", 2)}
	later := []schema.Event{use(3*day, "k", 2), use(3*day+1, "k", 1), use(3*day+2, "k", 3), use(3*day+3, "j", 8)}

	straight := mustDetector(t, rs, DefaultConfig())
	straight.Observe(t.Context(), history)
	want, _ := straight.Observe(t.Context(), later)
	if got := fires(want); !slices.Equal(got, []float64{3*day + 2, 3*day + 3}) {
		t.Fatalf("without restart: alerts at %v", got)
	}

	first := mustDetector(t, rs, DefaultConfig())
	first.Observe(t.Context(), history)
	changes := first.DrainChanges()
	if len(first.DrainChanges()) != 0 {
		t.Error("DrainChanges did not forget what it returned")
	}
	// A restart: restore the changelog, replay the history through Warm,
	// then go on: the same alerts, none twice.
	d := restoreAll(t, rs, changes)
	if len(d.DrainChanges()) != 0 {
		t.Error("Restore recorded changes")
	}
	d.Warm(history)
	if c := d.DrainChanges(); len(c) != 0 {
		t.Errorf("replaying restored history recorded %d changes", len(c))
	}
	alerts, _ := d.Observe(t.Context(), history)
	if len(alerts) != 0 {
		t.Errorf("replaying restored history alerted %d times", len(alerts))
	}
	got, _ := d.Observe(t.Context(), later)
	if !slices.EqualFunc(got, want, func(a, b schema.Alert) bool { return a.Event.ID == b.Event.ID }) {
		t.Errorf("after restore: alerts at %v, want %v", fires(got), fires(want))
	}

	t.Run("tombstones and unknown rules", func(t *testing.T) {
		d := mustDetector(t, rs, DefaultConfig())
		d.Observe(t.Context(), []schema.Event{use(0, "k", 1)})
		d.Observe(t.Context(), []schema.Event{use(40*day, "k", 2)}) // expires term 1
		changes := d.DrainChanges()
		if c := changes[len(changes)-2]; c.Value != nil {
			t.Fatalf("expiry recorded %x, want a tombstone", c.Value)
		}
		r := restoreAll(t, rs, append(changes, StateChange{Key: []byte("gone\x00x"), Value: []byte{1}}))
		if s := r.Stats(); s.Groups != 1 {
			t.Errorf("groups after restore %d, want 1", s.Groups)
		}
		alerts, _ := r.Observe(t.Context(), []schema.Event{use(42*day, "k", 1)})
		if len(alerts) != 1 {
			t.Errorf("a tombstoned term was still known after restore")
		}
	})
	t.Run("malformed records fail", func(t *testing.T) {
		d := mustDetector(t, rs, DefaultConfig())
		for _, c := range []StateChange{{Key: []byte("new-asn")}, {Key: []byte("new-asn\x00\x05ab")}, {Key: []byte("new-asn\x00\x01k\x01x"), Value: []byte{9}}} {
			if err := d.Restore(c.Key, c.Value); err == nil {
				t.Errorf("Restore(%q, %x) succeeded", c.Key, c.Value)
			}
		}
	})
}

func TestNewTermsMemory(t *testing.T) {
	rs := mustRules(t, newASN)
	t.Run("max_terms evicts the oldest with a tombstone", func(t *testing.T) {
		d := mustDetector(t, rs, DefaultConfig())
		d.Observe(t.Context(), []schema.Event{use(0, "k", 1), use(1, "k", 2), use(2, "k", 3), use(3, "k", 4)})
		s := d.Stats()
		if s.TermEvictions != 1 || s.Rules[0].TermEvictions != 1 {
			t.Errorf("term evictions %d (rule %d), want 1", s.TermEvictions, s.Rules[0].TermEvictions)
		}
		changes := d.DrainChanges()
		if len(changes) != 5 || changes[3].Value != nil {
			t.Errorf("want 3 terms, a tombstone, a term; got %d changes", len(changes))
		}
	})
	t.Run("max_groups evicts a key with tombstones", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.MaxGroups = 1
		d := mustDetector(t, rs, cfg)
		d.Observe(t.Context(), []schema.Event{use(0, "k", 1), use(1, "k", 2), use(2, "j", 1)})
		changes := d.DrainChanges()
		var tombs int
		for _, c := range changes {
			if c.Value == nil {
				tombs++
			}
		}
		if s := d.Stats(); s.Evictions != 1 || tombs != 2 {
			t.Errorf("evictions %d tombstones %d, want 1 and 2", s.Evictions, tombs)
		}
	})
	t.Run("Advance expires history with tombstones", func(t *testing.T) {
		d := mustDetector(t, rs, DefaultConfig())
		d.Observe(t.Context(), []schema.Event{use(0, "k", 1), use(10*24*hour, "k", 2), use(31*24*hour, "j", 1)})
		d.DrainChanges()
		d.Advance(at(31 * 24 * hour))
		changes := d.DrainChanges()
		if len(changes) != 1 || changes[0].Value != nil {
			t.Errorf("want one tombstone (term 1 of k), got %d changes", len(changes))
		}
		if s := d.Stats(); s.Groups != 2 {
			t.Errorf("groups %d, want 2", s.Groups)
		}
		d.Advance(at(31 * 24 * hour))
		d.Observe(t.Context(), []schema.Event{use(45*24*hour, "z", 1)})
		d.Advance(at(45 * 24 * hour))
		if s := d.Stats(); s.Groups != 2 || s.Expired != 1 {
			t.Errorf("groups %d expired %d, want k dropped", s.Groups, s.Expired)
		}
	})
	t.Run("last seen has the rule's resolution", func(t *testing.T) {
		d := mustDetector(t, rs, DefaultConfig())
		d.Observe(t.Context(), []schema.Event{use(0, "k", 1), use(60, "k", 1), use(hour, "k", 1)})
		if n := len(d.DrainChanges()); n != 2 {
			t.Errorf("got %d changes, want 2 (history 30d keeps last seen by the hour)", n)
		}
	})
}
