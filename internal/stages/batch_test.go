package stages

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// TestDetectBatchesStayApart hands the detect handler two batches over
// three partitions, with an undecodable record and a duplicate among them:
// each good event comes out once, enriched, keyed as its record, and the
// first batch's output still holds the first batch's events after the
// second batch reused the handler's buffers.
func TestDetectBatchesStayApart(t *testing.T) {
	h, _ := keyedHandlers(t)
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	batch := func(from, n int) ([]*kgo.Record, map[string]schema.Event) {
		recs := credEvents(t, start, from, n)
		want := map[string]schema.Event{}
		for _, r := range recs {
			var ev schema.Event
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatal(err)
			}
			want[ev.Event.ID] = ev
		}
		bad := &kgo.Record{Topic: "events", Partition: 1, Value: []byte(`{"event":{"id":`)}
		dup := *recs[0]
		return append(append(recs[:n/2:n/2], bad), append(recs[n/2:], &dup)...), want
	}
	check := func(name string, out []*kgo.Record, want map[string]schema.Event) {
		t.Helper()
		got := map[string]int{}
		dlq := 0
		for _, r := range out {
			switch r.Topic {
			case "dlq":
				dlq++
			case "enriched":
				var ev schema.Event
				if err := normalize.DecodeEvent(r.Value, &ev); err != nil {
					t.Fatalf("%s: enriched record does not decode: %v", name, err)
				}
				w, ok := want[ev.Event.ID]
				if !ok {
					t.Fatalf("%s: enriched event %q is not from this batch", name, ev.Event.ID)
				}
				got[ev.Event.ID]++
				if string(r.Key) != w.ActorKey() || ev.Source.IP != w.Source.IP || !ev.Timestamp.Equal(w.Timestamp) ||
					ev.Trailwatch.Credential.Fingerprint != w.Trailwatch.Credential.Fingerprint {
					t.Errorf("%s: enriched %q = key %q %+v, want the input event %+v", name, ev.Event.ID, r.Key, ev, w)
				}
			}
		}
		if dlq != 1 {
			t.Errorf("%s: %d dead-letter records, want 1 (the undecodable one)", name, dlq)
		}
		for id := range want {
			if got[id] != 1 {
				t.Errorf("%s: event %q enriched %d times, want once", name, id, got[id])
			}
		}
	}
	recs1, want1 := batch(0, 12)
	out1, err := h.Handle(t.Context(), recs1)
	if err != nil {
		t.Fatal(err)
	}
	recs2, want2 := batch(100, 30)
	out2, err := h.Handle(t.Context(), recs2)
	if err != nil {
		t.Fatal(err)
	}
	check("second batch", out2, want2)
	check("first batch, after the second", out1, want1)
}

// TestKeyedDecodesBadRecordsApart gives the keyed handler a batch where
// undecodable records sit between good ones of the same family: each bad
// one goes to the dead-letter topic and the good ones still group and
// alert.
func TestKeyedDecodesBadRecordsApart(t *testing.T) {
	h, kh := keyedHandlers(t)
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	out, err := h.Handle(t.Context(), credEvents(t, start, 0, 4))
	if err != nil {
		t.Fatal(err)
	}
	rep := repartitioned(out)
	if len(rep) != 4 {
		t.Fatalf("%d repartition records, want 4", len(rep))
	}
	var mixed []*kgo.Record
	for i, r := range rep {
		bad := *r
		bad.Value = []byte(fmt.Sprintf(`{"event":{"id":"bad%d"`, i))
		mixed = append(mixed, r, &bad)
	}
	kout, err := kh.Handle(t.Context(), mixed)
	if err != nil {
		t.Fatal(err)
	}
	var dlq, alerts int
	for _, r := range kout {
		switch r.Topic {
		case "dlq":
			dlq++
			if !strings.Contains(Header(r, HeaderDLQReason), "decode event") {
				t.Errorf("dead-letter reason %q does not name the decode error", Header(r, HeaderDLQReason))
			}
		case "alerts":
			alerts++
		}
	}
	if dlq != 4 || alerts != 1 {
		t.Errorf("%d dead-letter records and %d alerts, want 4 and 1", dlq, alerts)
	}
}

// TestRecordArenaValuesAreIndependent carves many events, some larger than
// what is left of a block, and requires every value to decode to its own
// event and to end at its own capacity, so that appending to one cannot
// write over the next.
func TestRecordArenaValuesAreIndependent(t *testing.T) {
	a := newRecordArena(4, &blockPool{})
	var evs []schema.Event
	var vals [][]byte
	var recs []*kgo.Record
	for i := range 3000 {
		var ev schema.Event
		ev.Event.ID = fmt.Sprintf("id-%d", i)
		ev.URL.Original = strings.Repeat("x", i%7*1000) // up to 6 KB, against a 512 B hint
		evs = append(evs, ev)
		vals = append(vals, a.event(&evs[i], 16))
		r := a.record()
		r.Key = a.bytes(ev.Event.ID)
		recs = append(recs, r)
	}
	for i, v := range vals {
		if len(v) != cap(v) {
			t.Fatalf("value %d has spare capacity %d: an append would overwrite the next", i, cap(v)-len(v))
		}
		var got schema.Event
		if err := normalize.DecodeEvent(v, &got); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, evs[i]) {
			t.Fatalf("value %d decodes to %q, want %q", i, got.Event.ID, evs[i].Event.ID)
		}
		if string(recs[i].Key) != evs[i].Event.ID || cap(recs[i].Key) != len(recs[i].Key) {
			t.Fatalf("key %d = %q (cap %d), want %q", i, recs[i].Key, cap(recs[i].Key), evs[i].Event.ID)
		}
		if i > 0 && recs[i] == recs[i-1] {
			t.Fatalf("records %d and %d are the same", i-1, i)
		}
	}
}

// TestBlockPoolLendsBlocksBackOnlyWhenProduced carves a batch, then a
// second one before the first is acknowledged: the second must get blocks
// of its own and leave the first batch's values as they were. Once both
// are acknowledged, the next batch must write into a block they used.
func TestBlockPoolLendsBlocksBackOnlyWhenProduced(t *testing.T) {
	var pool blockPool
	carve := func(tag string) [][]byte {
		a := newRecordArena(16, &pool)
		var vals [][]byte
		for i := range 2000 { // ~2.5 MB: three blocks
			var ev schema.Event
			ev.Event.ID = fmt.Sprintf("%s-%d", tag, i)
			ev.URL.Original = strings.Repeat(tag, 600)
			vals = append(vals, a.event(&ev, 1300))
		}
		return vals
	}
	decodesTo := func(vals [][]byte, tag string) {
		t.Helper()
		for i, v := range vals {
			var ev schema.Event
			if err := normalize.DecodeEvent(v, &ev); err != nil || ev.Event.ID != fmt.Sprintf("%s-%d", tag, i) {
				t.Fatalf("value %d of batch %s now decodes to %q (%v)", i, tag, ev.Event.ID, err)
			}
		}
	}
	first := carve("a")
	second := carve("b") // first not yet acknowledged
	decodesTo(first, "a")
	decodesTo(second, "b")
	if len(pool.spare) != 0 {
		t.Fatalf("%d blocks spare before any acknowledgement", len(pool.spare))
	}
	blocksOf := func() map[*byte]bool {
		m := map[*byte]bool{}
		for _, b := range pool.lent {
			m[unsafe.SliceData(b[:1])] = true
		}
		return m
	}
	before := blocksOf()
	pool.produced()
	if len(pool.spare) != len(before) || len(pool.lent) != 0 {
		t.Fatalf("after the acknowledgement: %d blocks spare, %d lent; want the %d lent before spare", len(pool.spare), len(pool.lent), len(before))
	}
	decodesTo(carve("c"), "c")
	reused := 0
	for b := range blocksOf() {
		if before[b] {
			reused++
		}
	}
	if reused == 0 {
		t.Error("the batch after the acknowledgement allocated new blocks instead of reusing the acknowledged ones")
	}
	var none *blockPool
	if b := none.block(); cap(b) != arenaBlock || len(b) != 0 {
		t.Errorf("a nil pool gave a block of len %d cap %d", len(b), cap(b))
	}
}
