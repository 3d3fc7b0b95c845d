package stages

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/detect/ruletest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// shippedRules loads the rule pack in rules/.
func shippedRules(t testing.TB) *detect.RuleSet {
	t.Helper()
	rs, err := detect.LoadDir(filepath.Join("..", "..", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// enrichedEvent is an access event with every part of the schema an
// enriched nginx or gateway event has, varied by i over keys addresses.
func enrichedEvent(start time.Time, i, keys int) schema.Event {
	statuses := []int{200, 200, 200, 401, 404, 500, 200, 403, 429, 503}
	paths := []string{"/api/v1/login", "/api/v1/orders", "/admin", "/api/v1/export", "/.env", "/api/v1/catalog"}
	methods := []string{"GET", "GET", "POST", "PUT", "DELETE", "GET"}
	ip := fmt.Sprintf("10.%d.%d.%d", i%keys/65536, i%keys/256%256, i%keys%256)
	path := paths[i%len(paths)]
	ev := schema.Event{Timestamp: start.Add(time.Duration(i) * 10 * time.Millisecond)}
	ev.Event = schema.EventMeta{ID: fmt.Sprintf("gen-%d", i), Kind: "event", Category: []string{"web"}, Type: []string{"access"},
		Outcome: "success", Dataset: "nginx.access", Module: "nginx", Duration: int64(i%900) * 1_000_000, Ingested: ev.Timestamp.Add(time.Second)}
	ev.Source = schema.Endpoint{IP: ip, Address: ip, Port: 40000 + i%20000,
		Geo: schema.Geo{CountryISOCode: "NL", CountryName: "Netherlands", CityName: "Amsterdam", Location: schema.GeoPoint{Lat: 52.37, Lon: 4.89}},
		AS:  schema.AS{Number: int64(64500 + i%7), Organization: schema.ASOrganization{Name: "Example Transit B.V."}}}
	ev.Destination = schema.Endpoint{IP: "10.0.0.5", Port: 443}
	ev.UserAgent = schema.UserAgent{Original: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Name: "Firefox", Version: "128.0",
		OS: schema.UserAgentOS{Name: "Linux", Full: "Linux x86_64"}, Device: schema.UserAgentDevice{Name: "Other"}}
	ev.HTTP = schema.HTTP{Version: "1.1", Request: schema.HTTPRequest{Method: methods[i%len(methods)], Bytes: 412, Referrer: "https://app.example.com/"},
		Response: schema.HTTPResponse{StatusCode: statuses[i%len(statuses)], Bytes: int64(i % 9000), Body: schema.HTTPBody{Bytes: int64(i % 8800)}}}
	ev.URL = schema.URL{Original: path + "?page=" + fmt.Sprint(i%40), Path: path, Query: "page=" + fmt.Sprint(i%40), Domain: "api.example.com", Scheme: "https"}
	ev.Observer = schema.Observer{Name: "edge-1", Hostname: "edge-1.example.com", Type: "proxy", Vendor: "nginx", Product: "nginx"}
	ev.Related = schema.Related{IP: []string{ip, "10.0.0.5"}, Hosts: []string{"api.example.com"}}
	ev.Service = schema.Service{Name: fmt.Sprintf("svc-%d", i%4)}
	ev.Trailwatch = schema.Trailwatch{Source: "nginx",
		Credential: schema.Credential{Fingerprint: fmt.Sprintf("twfp_apikey_%024d", i%keys), Type: "apikey"},
		Raw:        schema.RawRef{Origin: "/var/log/nginx/access.log", Offset: int64(i) * 211, Hash: fmt.Sprintf("%064x", i), Collector: "file", Partition: int32(i % 3), KafkaOffset: int64(i)},
		Session:    schema.Session{ID: fmt.Sprintf("s-%d", i%keys), Start: start, Requests: int64(i/keys + 1), Bytes: int64(i) * 300},
		Signals:    schema.Signals{DistinctIPs: 1, DistinctActors: 1},
		Identity:   schema.Identity{Owner: "team-payments", Team: "payments", Service: "checkout", Known: i%5 != 0}}
	if i%3 == 0 {
		ev.User = schema.User{Name: fmt.Sprintf("user%d", i%97)}
	}
	ev.Trailwatch.Actor = ev.ActorKey()
	return ev
}

// projectionStream is a varied event stream in segments, each later than
// the last: the events of every shipped rule's inline tests (as written,
// and laid over an enriched event), every normalizer golden's events, and
// generated enriched traffic from many addresses.
func projectionStream(t *testing.T, set *detect.RuleSet) []schema.Event {
	t.Helper()
	var out []schema.Event
	next := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	segment := func(name string, evs []schema.Event) {
		if len(evs) == 0 {
			return
		}
		first, last := evs[0].Timestamp, evs[0].Timestamp
		for _, ev := range evs {
			if ev.Timestamp.Before(first) {
				first = ev.Timestamp
			}
			if ev.Timestamp.After(last) {
				last = ev.Timestamp
			}
		}
		shift := next.Sub(first)
		for i, ev := range evs {
			ev.Timestamp = ev.Timestamp.Add(shift)
			ev.Event.ID = fmt.Sprintf("%s/%d/%s", name, i, ev.Event.ID)
			if ev.Trailwatch.Actor == "" {
				ev.Trailwatch.Actor = ev.ActorKey()
			}
			out = append(out, ev)
		}
		next = next.Add(last.Sub(first) + time.Hour)
	}
	for _, r := range set.Rules() {
		for k, tc := range r.Tests {
			evs := ruletest.Events(tc)
			segment(fmt.Sprintf("%s/%d", r.ID, k), evs)
			over := make([]schema.Event, len(evs))
			for i := range evs {
				over[i] = enrichedEvent(evs[i].Timestamp, i, 1)
				over[i].Timestamp = evs[i].Timestamp
				b, _ := json.Marshal(&evs[i])
				if err := json.Unmarshal(b, &over[i]); err != nil {
					t.Fatal(err)
				}
			}
			segment(fmt.Sprintf("%s/%d/enriched", r.ID, k), over)
		}
	}
	goldens, _ := filepath.Glob(filepath.Join("..", "..", "normalize", "testdata", "*", "*.golden.json"))
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		var recs []struct {
			Events []schema.Event `json:"events"`
		}
		if json.Unmarshal(data, &recs) != nil {
			continue // not a list of records: another golden shape
		}
		var evs []schema.Event
		for _, r := range recs {
			evs = append(evs, r.Events...)
		}
		segment(filepath.Base(filepath.Dir(g))+"/"+filepath.Base(g), evs)
	}
	gen := make([]schema.Event, 6000)
	for i := range gen {
		gen[i] = enrichedEvent(next, i, 150)
	}
	segment("generated", gen)
	return out
}

// actorPartition is the events partition of an actor key, of n.
func actorPartition(key []byte, n int) int32 {
	h := fnv.New32a()
	h.Write(key)
	return int32(h.Sum32() % uint32(n))
}

// keyedRun is what the keyed stage wrote for a stream, and the size of
// the repartition records it read.
type keyedRun struct {
	alerts, dlq, state []string
	local              int // alerts of the events handler
	repartition        int // repartition records
	repartBytes        int // their values' bytes
}

// runKeyed feeds evs, encoded as the normalize stage does and spread over
// three events partitions by actor, through Detect in batches of 250, and
// each batch's repartition records (over two partitions, by key) through
// KeyedDetect.
func runKeyed(t *testing.T, set *detect.RuleSet, evs []schema.Event, whole bool) keyedRun {
	t.Helper()
	book := NewRuleBook(set, detect.DefaultConfig())
	m := NewDetectMetrics(nil)
	h := NewDetect("enriched", "alerts", "dlq", book, m, nil)
	h.RepartitionTopic, h.RepartitionWhole, h.DedupIDs = "repart", whole, 1000
	kh := NewKeyedDetect("alerts", "dlq", book, m, nil)
	kh.DedupIDs, kh.StateTopic = 1000, "state"
	var run keyedRun
	offsets := map[int32]int64{}
	for from := 0; from < len(evs); from += 250 {
		var in []*kgo.Record
		for i := from; i < min(from+250, len(evs)); i++ {
			key := []byte(evs[i].ActorKey())
			p := actorPartition(key, 3)
			in = append(in, &kgo.Record{Topic: "events", Partition: p, Offset: offsets[p], Key: key,
				Value: normalize.AppendEvent(nil, &evs[i]), Timestamp: evs[i].Timestamp})
			offsets[p]++
		}
		out, err := h.Handle(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		var rep []*kgo.Record
		for _, r := range out {
			switch r.Topic {
			case "alerts":
				run.local++
			case "repart":
				c := *r
				c.Partition = 10 + actorPartition(r.Key, 2)
				c.Offset = offsets[c.Partition]
				offsets[c.Partition]++
				rep = append(rep, &c)
				run.repartition++
				run.repartBytes += len(r.Value)
			}
		}
		got, err := kh.Handle(t.Context(), rep)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range got {
			switch r.Topic {
			case "alerts":
				run.alerts = append(run.alerts, string(r.Value))
			case "dlq":
				run.dlq = append(run.dlq, fmt.Sprintf("%s %s %v", r.Key, r.Value, r.Headers))
			case "state":
				run.state = append(run.state, fmt.Sprintf("%d %q %q", r.Partition, r.Key, r.Value))
			default:
				t.Fatalf("keyed stage wrote to %q", r.Topic)
			}
		}
	}
	return run
}

// TestKeyedProjectionSameAlerts runs the shipped rules over a varied
// stream twice, with whole and with projected repartition records: the
// keyed stage must raise the same alerts, byte for byte, and write the
// same dead letters and state, from smaller records.
func TestKeyedProjectionSameAlerts(t *testing.T) {
	set := shippedRules(t)
	evs := projectionStream(t, set)
	whole := runKeyed(t, set, evs, true)
	proj := runKeyed(t, set, evs, false)

	rules := map[string]bool{}
	for _, a := range whole.alerts {
		var al schema.Alert
		if err := json.Unmarshal([]byte(a), &al); err != nil {
			t.Fatal(err)
		}
		rules[al.Rule.ID] = true
	}
	t.Logf("%d events, %d repartition records; keyed alerts %d from %d rules; whole %d B/record, projected %d B/record",
		len(evs), whole.repartition, len(whole.alerts), len(rules), whole.repartBytes/max(whole.repartition, 1), proj.repartBytes/max(proj.repartition, 1))
	var keyed int
	for _, f := range detect.NewRouter(set).Families() {
		keyed += f.Rules.Len()
	}
	// The comparison proves something only if most keyed rules fire.
	if len(rules) < keyed*3/4 {
		t.Errorf("only %d of %d keyed rules raised alerts", len(rules), keyed)
	}
	if !slices.Equal(whole.alerts, proj.alerts) {
		for i := range max(len(whole.alerts), len(proj.alerts)) {
			var w, p string
			if i < len(whole.alerts) {
				w = whole.alerts[i]
			}
			if i < len(proj.alerts) {
				p = proj.alerts[i]
			}
			if w != p {
				t.Fatalf("alert %d of %d/%d differs\nwhole:     %s\nprojected: %s", i, len(whole.alerts), len(proj.alerts), w, p)
			}
		}
	}
	if !slices.Equal(whole.dlq, proj.dlq) {
		t.Errorf("dead letters differ\nwhole:     %q\nprojected: %q", whole.dlq, proj.dlq)
	}
	if !slices.Equal(whole.state, proj.state) {
		t.Errorf("state records differ: %d whole, %d projected", len(whole.state), len(proj.state))
	}
	if whole.local != proj.local || whole.repartition != proj.repartition {
		t.Errorf("local alerts %d/%d, repartition records %d/%d: want the same", whole.local, proj.local, whole.repartition, proj.repartition)
	}
	if proj.repartBytes*2 > whole.repartBytes {
		t.Errorf("projected records are %d bytes, whole %d: want under half", proj.repartBytes, whole.repartBytes)
	}
}

// TestRepartitionRecordsNameTheirFields checks the headers: a projected
// record names its family's projection, a whole one "all".
func TestRepartitionRecordsNameTheirFields(t *testing.T) {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for _, whole := range []bool{false, true} {
		t.Run(fmt.Sprintf("whole=%v", whole), func(t *testing.T) {
			h, _ := keyedHandlers(t)
			h.RepartitionWhole = whole
			out, err := h.Handle(t.Context(), credEvents(t, start, 0, 3))
			if err != nil {
				t.Fatal(err)
			}
			_, router, _ := h.book.current()
			want := router.Family("source.ip").Fields().ID()
			if whole {
				want = "all"
			}
			rep := repartitioned(out)
			if len(rep) != 3 {
				t.Fatalf("%d repartition records, want 3", len(rep))
			}
			for _, r := range rep {
				if got := Header(r, HeaderFields); got != want {
					t.Errorf("%s header %q, want %q", HeaderFields, got, want)
				}
			}
		})
	}
}

// TestKeyedCountsProjectionMismatch hands the keyed stage a record
// projected for other rules (a rule change in flight): it is processed,
// and counted.
func TestKeyedCountsProjectionMismatch(t *testing.T) {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	h, kh := keyedHandlers(t)
	out, err := h.Handle(t.Context(), credEvents(t, start, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	rep := repartitioned(out)
	for _, r := range rep {
		r.Headers = []kgo.RecordHeader{{Key: HeaderFamily, Value: []byte("source.ip")}, {Key: HeaderFields, Value: []byte("0123456789abcdef")}}
	}
	got, err := kh.Handle(t.Context(), rep)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := alertsOf(got); len(a) != 1 {
		t.Errorf("%d alerts, want 1: a mismatched record is still processed", len(a))
	}
	if n := testutil.ToFloat64(kh.m.mismatch); n != 3 {
		t.Errorf("mismatches counted %v, want 3", n)
	}
	if !strings.Contains(Header(rep[0], HeaderFields), "0123") {
		t.Fatal("test records lost their header")
	}
}
