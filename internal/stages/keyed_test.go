package stages

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// keyedHandlers returns the two detect handlers over the threshold rule
// (grouped by source.ip), with repartitioning on.
func keyedHandlers(t *testing.T) (*Detect, *KeyedDetect) {
	t.Helper()
	book := NewRuleBook(ruleSet(t, threshold), detect.DefaultConfig())
	m := NewDetectMetrics(nil)
	h := NewDetect("enriched", "alerts", "dlq", book, m, nil)
	h.RepartitionTopic, h.DedupIDs = "repart", 1000
	kh := NewKeyedDetect("alerts", "dlq", book, m, nil)
	kh.DedupIDs = 1000
	return h, kh
}

// credEvents returns n refused requests from one address, each with its own
// credential, spread over three events partitions as actor keying does.
func credEvents(t *testing.T, start time.Time, from, n int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		ev := schema.Event{Timestamp: start.Add(time.Duration(i) * time.Second)}
		ev.Event.ID = fmt.Sprintf("ev%d", i)
		ev.Source.IP = "203.0.113.9"
		ev.HTTP.Response.StatusCode = 401
		ev.Trailwatch.Credential.Fingerprint = fmt.Sprintf("twfp_apikey_%024d", i)
		b, _ := json.Marshal(&ev)
		out = append(out, &kgo.Record{Topic: "events", Partition: int32(i % 3), Key: []byte(ev.ActorKey()), Value: b, Timestamp: ev.Timestamp})
	}
	return out
}

// repartitioned returns the repartition records of out, as the keyed
// consumer would read them (all keys of one address on one partition).
func repartitioned(out []*kgo.Record) []*kgo.Record {
	var rs []*kgo.Record
	for _, r := range out {
		if r.Topic == "repart" {
			c := *r
			c.Partition = 1
			rs = append(rs, &c)
		}
	}
	return rs
}

func TestRepartitionBringsAGroupTogether(t *testing.T) {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	h, kh := keyedHandlers(t)
	out, err := h.Handle(t.Context(), credEvents(t, start, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if a, enriched := alertsOf(out); len(a) != 0 || enriched != 3 {
		t.Fatalf("events handler: %d alerts, %d enriched; want 0 (the rule is not actor-local) and 3", len(a), enriched)
	}
	rep := repartitioned(out)
	if len(rep) != 3 {
		t.Fatalf("%d repartition records, want 3", len(rep))
	}
	for _, r := range rep {
		if Header(r, HeaderFamily) != "source.ip" || string(r.Key) != string(rep[0].Key) {
			t.Fatalf("record %q family %q: want family source.ip and one key for one address", r.Key, Header(r, HeaderFamily))
		}
	}
	got, err := kh.Handle(t.Context(), rep)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := alertsOf(got); len(a) != 1 {
		t.Fatalf("keyed handler: %d alerts, want 1", len(a))
	}

	// The same records again (a producer retry after a crash) are dropped.
	again, err := kh.Handle(t.Context(), rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("redelivered records produced %d records, want none", len(again))
	}

	// Events that match no keyed rule are not repartitioned.
	quiet := credEvents(t, start, 10, 1)
	var ev schema.Event
	_ = json.Unmarshal(quiet[0].Value, &ev)
	ev.HTTP.Response.StatusCode = 200
	quiet[0].Value, _ = json.Marshal(&ev)
	out, err = h.Handle(t.Context(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(repartitioned(out)); n != 0 {
		t.Errorf("a non-matching event was repartitioned %d times", n)
	}
}

func TestKeyedWarmRebuildsStateAfterKill(t *testing.T) {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	h, _ := keyedHandlers(t)
	out, err := h.Handle(t.Context(), credEvents(t, start, 0, 5))
	if err != nil {
		t.Fatal(err)
	}
	rep := repartitioned(out)
	before, after := rep[:2], rep[2:]

	// The process that read the first two records died; its successor
	// warms up on them, then gets the rest and alerts once, as the dead
	// one would have.
	_, successor := keyedHandlers(t)
	successor.Assigned("repart", 1)
	successor.Warm(t.Context(), before)
	got, err := successor.Handle(t.Context(), after)
	if err != nil {
		t.Fatal(err)
	}
	alerts, _ := alertsOf(got)
	if len(alerts) != 1 {
		t.Fatalf("successor raised %d alerts, want 1", len(alerts))
	}

	// The alert is the one a process that never died raises: same id.
	_, steady := keyedHandlers(t)
	whole, err := steady.Handle(t.Context(), rep)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := alertsOf(whole); len(want) != 1 || want[0] != alerts[0] {
		t.Errorf("successor alert %v, uninterrupted run %v: want the same id", alerts, want)
	}
}

func TestKeyedRejectsRecordsWithoutFamily(t *testing.T) {
	_, kh := keyedHandlers(t)
	out, err := kh.Handle(t.Context(), []*kgo.Record{{Topic: "repart", Value: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Topic != "dlq" {
		t.Fatalf("got %+v, want one dead-letter record", out)
	}
}

// TestRepartitionMergesPartitionsInEventTime hands the events handler a
// batch holding three partitions' records one partition after the other
// (how a backlog is read): the repartition records come out in event time,
// so the keyed rules do not take the later partitions' events as late.
func TestRepartitionMergesPartitionsInEventTime(t *testing.T) {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	h, _ := keyedHandlers(t)
	recs := credEvents(t, start, 0, 30)
	slices.SortStableFunc(recs, func(a, b *kgo.Record) int { return int(a.Partition - b.Partition) })
	out, err := h.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	rep := repartitioned(out)
	if len(rep) != 30 {
		t.Fatalf("%d repartition records, want 30", len(rep))
	}
	for i := 1; i < len(rep); i++ {
		if rep[i].Timestamp.Before(rep[i-1].Timestamp) {
			t.Fatalf("record %d (%s) comes after a later one (%s)", i, rep[i].Timestamp, rep[i-1].Timestamp)
		}
	}
}
