package enrich_test

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// TestChainState restarts a default chain from the changelog its
// DrainChanges produced: keys carry the member's name, Restore routes them
// back, and the restarted chain enriches the next batch as the one that
// never stopped.
func TestChainState(t *testing.T) {
	batch := func(from int) []schema.Event {
		evs := make([]schema.Event, 20)
		for i := range evs {
			n := from + i
			evs[i] = schema.Event{
				Timestamp:  t0.Add(time.Duration(n) * time.Minute),
				Event:      schema.EventMeta{ID: fmt.Sprint("ev-", n)},
				Source:     schema.Endpoint{IP: fmt.Sprintf("81.2.69.%d", n%4)},
				UserAgent:  schema.UserAgent{Original: "curl/8.5.0"},
				Trailwatch: schema.Trailwatch{Credential: schema.Credential{Fingerprint: fmt.Sprint("fp", n%3)}},
			}
		}
		return evs
	}
	newChain := func() *enrich.Enrichment {
		e, err := enrich.New(enrich.DefaultConfig(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close(context.Background()) })
		return e
	}
	live := newChain()
	first := batch(0)
	if err := live.Enrich(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	changelog := live.DrainChanges()
	if len(changelog) != 3 {
		t.Fatalf("%d changes, want one per credential", len(changelog))
	}
	for _, c := range changelog {
		if !bytes.HasPrefix(c.Key, []byte("actor/cred:fp")) || c.Value == nil {
			t.Fatalf("change %q = %d bytes", c.Key, len(c.Value))
		}
	}
	if again := live.DrainChanges(); len(again) != 0 {
		t.Fatalf("second drain returned %d changes", len(again))
	}

	restarted := newChain()
	for _, c := range changelog {
		if err := restarted.Restore(c.Key, c.Value); err != nil {
			t.Fatal(err)
		}
	}
	// A member that is not in the chain (turned off since) is skipped; a
	// key without a member name is an error.
	if err := restarted.Restore([]byte("gone/x"), []byte{1}); err != nil {
		t.Errorf("Restore of an absent member: %v", err)
	}
	if err := restarted.Restore([]byte("nameless"), []byte{1}); err == nil {
		t.Error("Restore of a key without a member name succeeded")
	}
	want, got := batch(20), batch(20)
	if err := live.Enrich(t.Context(), want); err != nil {
		t.Fatal(err)
	}
	if err := restarted.Enrich(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("event %d after restart:\n got  %+v\n want %+v", i, got[i].Trailwatch, want[i].Trailwatch)
		}
	}
	if want[19].Trailwatch.Session.Requests != 14 {
		t.Errorf("session = %+v, want the 14th request of fp0", want[19].Trailwatch.Session)
	}
}
