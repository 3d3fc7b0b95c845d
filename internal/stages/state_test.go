package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/internal/kafka"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// newCountryRule fires when a credential is used from a country it did not
// use within 30 days, once it has been known for an hour.
const newCountryRule = `
id: new-country
title: Credential from a new country
where: trailwatch.credential.fingerprint != ""
new_terms: {by: [trailwatch.actor], fields: [source.geo.country_iso_code], history: 30d, learning: 1h}
`

// stateHandler returns an events handler whose durable state goes to the
// "state" topic of cluster c, with the actor enricher on.
func stateHandler(t *testing.T, c *kfake.Cluster) *Detect {
	t.Helper()
	h := NewDetect("enriched", "alerts", "dlq", NewRuleBook(ruleSet(t, newCountryRule), detect.DefaultConfig()), NewDetectMetrics(nil), nil)
	cfg := enrich.DefaultConfig()
	en, err := enrich.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = en.Close(context.Background()) })
	base := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	h.Enricher, h.StateTopic = en, "state"
	h.ReadState = func(ctx context.Context, topic string, p int32, fn func(*kgo.Record) error) error {
		return kafka.ReadPartition(ctx, base, topic, p, fn)
	}
	return h
}

func countryEvent(t *testing.T, at time.Time, n int, country string) *kgo.Record {
	t.Helper()
	ev := schema.Event{Timestamp: at}
	ev.Event.ID = fmt.Sprintf("c%d", n)
	ev.Source.IP = fmt.Sprintf("192.0.2.%d", n)
	ev.Source.Geo.CountryISOCode = country
	ev.Trailwatch.Credential.Fingerprint = "twfp_apikey_000000000000000000000001"
	ev.Trailwatch.Actor = ev.ActorKey()
	b, _ := json.Marshal(&ev)
	return &kgo.Record{Topic: "events", Partition: 1, Key: []byte(ev.Trailwatch.Actor), Value: b, Timestamp: at}
}

// produceState writes the changelog records of out to the cluster, as the
// runner does before committing the batch.
func produceState(t *testing.T, c *kfake.Cluster, out []*kgo.Record) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kafka.Partitioner("state")))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, r := range out {
		if r.Topic == "state" {
			recs = append(recs, r)
		}
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return len(recs)
}

// TestStateSurvivesRestart shows first-seen history outliving the process:
// a credential known for days, used from a new country after a restart, is
// flagged by the enricher and alerted by the new_terms rule only because
// the successor restored the changelog.
func TestStateSurvivesRestart(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	day := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

	first := stateHandler(t, c)
	out, err := first.Handle(t.Context(), []*kgo.Record{countryEvent(t, day, 1, "US"), countryEvent(t, day.Add(48*time.Hour), 2, "US")})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := alertsOf(out); len(a) != 0 {
		t.Fatalf("a credential's first country alerted: %v", a)
	}
	if n := produceState(t, c, out); n == 0 {
		t.Fatal("no state records written")
	}
	for _, r := range out {
		if r.Topic == "state" && r.Partition != 1 {
			t.Errorf("state record for partition 1 written to partition %d", r.Partition)
		}
	}

	later := []*kgo.Record{countryEvent(t, day.Add(72*time.Hour), 3, "FR")}
	successor := stateHandler(t, c)
	successor.Assigned("events", 1)
	out, err = successor.Handle(t.Context(), later)
	if err != nil {
		t.Fatal(err)
	}
	alerts, _ := alertsOf(out)
	if len(alerts) != 1 {
		t.Fatalf("after a restart the new country raised %d alerts, want 1", len(alerts))
	}
	var enriched schema.Event
	for _, r := range out {
		if r.Topic == "enriched" {
			_ = json.Unmarshal(r.Value, &enriched)
		}
	}
	if !enriched.Trailwatch.Signals.FirstSeen.Country {
		t.Errorf("enricher did not flag the new country after a restart: %+v", enriched.Trailwatch.Signals)
	}

	// Without the changelog the same event is a stranger's first: quiet.
	// The restore is what made the difference above.
	cold := stateHandler(t, c)
	cold.StateTopic = ""
	out, err = cold.Handle(t.Context(), later)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := alertsOf(out); len(a) != 0 {
		t.Errorf("without restored state the event alerted %d times; the test would pass without the changelog", len(a))
	}
}
