package actor

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// Places with their GeoIP answer, as geoip would have filled them.
var (
	london   = schema.Geo{CountryISOCode: "GB", Location: schema.GeoPoint{Lat: 51.5142, Lon: -0.0931}}
	paris    = schema.Geo{CountryISOCode: "FR", Location: schema.GeoPoint{Lat: 48.8566, Lon: 2.3522}}
	newYork  = schema.Geo{CountryISOCode: "US", Location: schema.GeoPoint{Lat: 40.7128, Lon: -74.0060}}
	reading  = schema.Geo{CountryISOCode: "GB", Location: schema.GeoPoint{Lat: 51.4543, Lon: -0.9781}}
	nowhere  = schema.Geo{}
	firefox  = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	curlUA   = "curl/8.5.0"
	seqCount int
)

// ev is one event: a credential actor (or, with cred "", the IP itself)
// at t0+at from ip located at geo, with a fresh event id.
func ev(cred, ip string, at time.Duration, geo schema.Geo, ua string, bytes int64) schema.Event {
	seqCount++
	e := schema.Event{
		Timestamp: t0.Add(at),
		Event:     schema.EventMeta{ID: fmt.Sprintf("ev-%d", seqCount)},
		Source:    schema.Endpoint{IP: ip, Geo: geo},
		UserAgent: schema.UserAgent{Original: ua},
		HTTP:      schema.HTTP{Response: schema.HTTPResponse{Bytes: bytes}},
	}
	if cred != "" {
		e.Trailwatch.Credential.Fingerprint = cred
	}
	return e
}

func newEnricher(t testing.TB, mod func(*Config)) *Enricher {
	t.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// run enriches a copy of evs and returns it.
func run(t testing.TB, e *Enricher, evs []schema.Event) []schema.Event {
	t.Helper()
	out := append([]schema.Event(nil), evs...)
	if err := e.Enrich(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sessions(evs []schema.Event) []string {
	var s []string
	for _, e := range evs {
		ss := e.Trailwatch.Session
		if ss.ID == "" {
			s = append(s, "-")
			continue
		}
		s = append(s, fmt.Sprintf("%s@%s %d/%d", ss.ID[:6], ss.Start.Sub(t0), ss.Requests, ss.Bytes))
	}
	return s
}

func TestSessions(t *testing.T) {
	evs := []schema.Event{
		ev("a", "81.2.69.1", 0, london, firefox, 100),
		ev("a", "81.2.69.1", 10*time.Minute, london, firefox, 50),
		ev("b", "81.2.69.1", 11*time.Minute, london, firefox, 7), // another actor, own session
		ev("a", "81.2.69.1", 39*time.Minute, london, firefox, 0), // 29m gap: same session
		ev("a", "81.2.69.1", 69*time.Minute, london, firefox, 1), // 30m gap: a new one
		ev("", "81.2.69.9", 70*time.Minute, london, curlUA, 0),   // IP-only actors have sessions too
	}
	evs[3].HTTP.Response = schema.HTTPResponse{Body: schema.HTTPBody{Bytes: 25}} // body bytes when bytes is unset
	got := run(t, newEnricher(t, nil), evs)
	ids := map[string]string{}
	for _, e := range got {
		ids[e.ActorKey()+e.Trailwatch.Session.Start.String()] = e.Trailwatch.Session.ID
	}
	if len(ids) != 4 {
		t.Errorf("want 4 distinct sessions, got %v", ids)
	}
	counts := make([]string, len(got))
	for i, e := range got {
		ss := e.Trailwatch.Session
		counts[i] = fmt.Sprintf("%s %d/%d", ss.Start.Sub(t0), ss.Requests, ss.Bytes)
	}
	want := []string{"0s 1/100", "0s 2/150", "11m0s 1/7", "0s 3/175", "1h9m0s 1/1", "1h10m0s 1/0"}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("sessions = %q\nwant       %q", counts, want)
	}
	if got[0].Trailwatch.Session.ID != got[3].Trailwatch.Session.ID || got[3].Trailwatch.Session.ID == got[4].Trailwatch.Session.ID {
		t.Errorf("session ids: %s", sessions(got))
	}
	// A fresh enricher replaying the same events gives the same ids.
	again := run(t, newEnricher(t, nil), evs)
	for i := range got {
		if again[i].Trailwatch.Session != got[i].Trailwatch.Session {
			t.Errorf("event %d: session %+v on replay, %+v first", i, again[i].Trailwatch.Session, got[i].Trailwatch.Session)
		}
	}
}

func TestFirstSeen(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name     string
		learning time.Duration
		evs      []schema.Event
		want     []schema.FirstSeen
	}{
		{
			name:     "learning period flags nothing, then each new value",
			learning: day,
			evs: []schema.Event{
				ev("a", "81.2.69.1", 0, london, firefox, 0),
				ev("a", "81.2.69.2", time.Hour, london, curlUA, 0), // learning
				ev("a", "81.2.69.1", 2*day, london, firefox, 0),    // known
				ev("a", "81.2.69.3", 2*day+time.Hour, paris, firefox, 0),
				ev("a", "81.2.69.3", 2*day+2*time.Hour, paris, firefox, 0),
			},
			want: []schema.FirstSeen{{}, {}, {}, {IP: true, Country: true}, {}},
		},
		{
			name:     "no learning: only the first event is exempt",
			learning: 0,
			evs: []schema.Event{
				ev("a", "81.2.69.1", 0, london, firefox, 0),
				ev("a", "81.2.69.2", time.Minute, london, curlUA, 0),
			},
			want: []schema.FirstSeen{{}, {IP: true, UserAgent: true}},
		},
		{
			name:     "a value unused for longer than history is new again",
			learning: 0,
			evs: []schema.Event{
				ev("a", "81.2.69.1", 0, london, firefox, 0),
				ev("a", "81.2.69.2", time.Minute, london, firefox, 0),
				ev("a", "81.2.69.2", 29*day, london, firefox, 0),
				ev("a", "81.2.69.1", 31*day, london, firefox, 0), // unused for 31 days
			},
			want: []schema.FirstSeen{{}, {IP: true}, {}, {IP: true}},
		},
		{
			name:     "IP-only actors have no baseline",
			learning: 0,
			evs: []schema.Event{
				ev("", "81.2.69.1", 0, london, firefox, 0),
				ev("", "81.2.69.1", time.Minute, paris, curlUA, 0),
			},
			want: []schema.FirstSeen{{}, {}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnricher(t, func(c *Config) { c.Learning = tt.learning })
			got := run(t, e, tt.evs)
			for i := range got {
				if f := got[i].Trailwatch.Signals.FirstSeen; f != tt.want[i] {
					t.Errorf("event %d: first_seen %+v, want %+v", i, f, tt.want[i])
				}
			}
		})
	}
}

func TestASNFirstSeen(t *testing.T) {
	e := newEnricher(t, func(c *Config) { c.Learning = 0 })
	a := ev("a", "81.2.69.1", 0, london, firefox, 0)
	a.Source.AS.Number = 20712
	b := ev("a", "81.2.69.2", time.Minute, london, firefox, 0)
	b.Source.AS.Number = 20712
	c := ev("a", "81.2.69.3", 2*time.Minute, london, firefox, 0)
	c.Source.AS.Number = 64512
	got := run(t, e, []schema.Event{a, b, c})
	want := []schema.FirstSeen{{}, {IP: true}, {IP: true, ASN: true}}
	for i := range got {
		if f := got[i].Trailwatch.Signals.FirstSeen; f != want[i] {
			t.Errorf("event %d: first_seen %+v, want %+v", i, f, want[i])
		}
	}
}

func TestDistinctCounts(t *testing.T) {
	evs := []schema.Event{
		ev("a", "81.2.69.1", 0, london, firefox, 0),
		ev("a", "81.2.69.2", 10*time.Minute, london, firefox, 0),
		ev("b", "81.2.69.2", 20*time.Minute, london, firefox, 0),
		ev("a", "81.2.69.3", 30*time.Minute, london, firefox, 0),
		ev("", "81.2.69.2", 40*time.Minute, london, firefox, 0),  // anonymous from the shared IP
		ev("a", "81.2.69.3", 65*time.Minute, london, firefox, 0), // .1 fell out of the hour
		ev("c", "81.2.69.2", 130*time.Minute, london, firefox, 0),
	}
	got := run(t, newEnricher(t, nil), evs)
	want := [][2]int64{{1, 1}, {2, 1}, {1, 2}, {3, 1}, {0, 2}, {2, 1}, {1, 1}}
	for i := range got {
		sg := got[i].Trailwatch.Signals
		if g := [2]int64{sg.DistinctIPs, sg.DistinctActors}; g != want[i] {
			t.Errorf("event %d: distinct ips, actors = %v, want %v", i, g, want[i])
		}
	}
}

func TestTravel(t *testing.T) {
	tests := []struct {
		name  string
		from  schema.Geo
		to    schema.Geo
		after time.Duration
		want  schema.Travel
	}{
		{name: "london to new york in an hour", from: london, to: newYork, after: time.Hour,
			want: schema.Travel{FromIP: "81.2.69.1", FromCountry: "GB", DistanceKM: 5572.3, Seconds: 3600, SpeedKMH: 5572.3, Impossible: true}},
		{name: "london to new york in a day", from: london, to: newYork, after: 24 * time.Hour,
			want: schema.Travel{FromIP: "81.2.69.1", FromCountry: "GB", DistanceKM: 5572.3, Seconds: 86400, SpeedKMH: 232.2}},
		{name: "geoip jitter is too short to flag", from: london, to: reading, after: time.Minute,
			want: schema.Travel{FromIP: "81.2.69.1", FromCountry: "GB", DistanceKM: 61.6, Seconds: 60, SpeedKMH: 3698.5}},
		{name: "same place: no travel", from: london, to: london, after: time.Minute},
		{name: "not located: no travel", from: london, to: nowhere, after: time.Minute},
		{name: "simultaneous: speed is per one second", from: london, to: newYork, after: 0,
			want: schema.Travel{FromIP: "81.2.69.1", FromCountry: "GB", DistanceKM: 5572.3, SpeedKMH: 20060177.1, Impossible: true}},
		{name: "fast but closer than min_distance_km", from: london, to: paris, after: time.Minute,
			want: schema.Travel{FromIP: "81.2.69.1", FromCountry: "GB", DistanceKM: 342.9, Seconds: 60, SpeedKMH: 20576.4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnricher(t, nil)
			got := run(t, e, []schema.Event{
				ev("a", "81.2.69.1", 0, tt.from, firefox, 0),
				ev("a", "81.2.69.2", time.Minute, tt.from, firefox, 0), // the previous located event
				ev("a", "203.0.113.7", time.Minute+tt.after, tt.to, firefox, 0),
			})
			if tr := got[1].Trailwatch.Signals.Travel; tr != (schema.Travel{}) {
				t.Errorf("travel at the same place: %+v", tr)
			}
			want := tt.want
			if want.FromIP != "" {
				want.FromIP = "81.2.69.2"
			}
			if tr := got[2].Trailwatch.Signals.Travel; tr != want {
				t.Errorf("travel = %+v\nwant     %+v", tr, want)
			}
			if n := e.Stats().Impossible; (n == 1) != want.Impossible {
				t.Errorf("Impossible = %d", n)
			}
		})
	}
}

func TestOutOfOrder(t *testing.T) {
	e := newEnricher(t, func(c *Config) { c.Learning = 0 })
	first := run(t, e, []schema.Event{
		ev("a", "81.2.69.1", time.Hour, london, firefox, 10),
		ev("a", "81.2.69.1", time.Hour+5*time.Minute, london, firefox, 10),
	})
	late := run(t, e, []schema.Event{
		ev("a", "81.2.69.1", time.Hour-10*time.Minute, london, firefox, 1),              // before the start, within the gap
		ev("a", "81.2.69.9", 0, london, firefox, 1),                                     // an hour late: no session
		ev("a", "81.2.69.1", time.Hour+6*time.Minute, newYork, firefox, 1),              // in order again
		ev("a", "81.2.69.1", time.Hour+5*time.Minute+30*time.Second, paris, firefox, 1), // late, another place
	})
	sid := first[0].Trailwatch.Session.ID
	tests := []struct {
		name string
		got  schema.Event
		sess schema.Session
		fs   schema.FirstSeen
		from string
	}{
		{name: "late within the gap joins the session", got: late[0],
			sess: schema.Session{ID: sid, Start: t0.Add(time.Hour), Requests: 3, Bytes: 21}},
		// It is now the actor's first event in event time, so it is not
		// flagged (learning 0 exempts the first event).
		{name: "too late for the session: no session, becomes the first event", got: late[1]},
		{name: "in order again counts every event applied", got: late[2], fs: schema.FirstSeen{Country: true}, from: "GB",
			sess: schema.Session{ID: sid, Start: t0.Add(time.Hour), Requests: 4, Bytes: 22}},
		{name: "late located event compares with the stay before it", got: late[3], fs: schema.FirstSeen{Country: true}, from: "GB",
			sess: schema.Session{ID: sid, Start: t0.Add(time.Hour), Requests: 5, Bytes: 23}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s := tt.got.Trailwatch.Session; s != tt.sess {
				t.Errorf("session = %+v\nwant      %+v", s, tt.sess)
			}
			if f := tt.got.Trailwatch.Signals.FirstSeen; f != tt.fs {
				t.Errorf("first_seen = %+v, want %+v", f, tt.fs)
			}
			if c := tt.got.Trailwatch.Signals.Travel.FromCountry; c != tt.from {
				t.Errorf("travel from %q, want %q", c, tt.from)
			}
		})
	}
	// The late event did not disturb the stays: the next event in order
	// compares with New York, the last place in event time.
	next := run(t, e, []schema.Event{ev("a", "81.2.69.1", 2*time.Hour, london, firefox, 0)})
	if tr := next[0].Trailwatch.Signals.Travel; tr.FromCountry != "US" || !tr.Impossible {
		t.Errorf("travel after the late event: %+v", tr)
	}
	if st := e.Stats(); st.Late != 1 || st.Sessions != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{Learning: -1, MinDistanceKM: -1}
	want := strings.Join([]string{
		"session_gap: must be positive",
		"history: must be positive",
		"learning: must not be negative",
		"period: must be positive",
		"max_speed_kmh: must be positive",
		"min_distance_km: must not be negative",
		"max_actors: must be at least 1",
		"max_ip_actors: must be at least 1",
		"max_values: must be at least 1",
		"replay_window: must be at least 1",
	}, "\n")
	if err := cfg.Validate(); err == nil || err.Error() != want {
		t.Fatalf("Validate =\n%v\nwant\n%s", err, want)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDistanceKM(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want                   float64
	}{
		{name: "same point", lat1: 10, lon1: 20, lat2: 10, lon2: 20, want: 0},
		{name: "quarter meridian", lat1: 0, lon1: 0, lat2: 90, lon2: 0, want: 10007.5},
		{name: "antipodes", lat1: 0, lon1: 0, lat2: 0, lon2: 180, want: 20015.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := distanceKM(tt.lat1, tt.lon1, tt.lat2, tt.lon2); d < tt.want-0.1 || d > tt.want+0.1 {
				t.Fatalf("distance = %.2f, want %.1f", d, tt.want)
			}
		})
	}
}
