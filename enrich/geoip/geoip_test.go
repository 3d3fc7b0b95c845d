package geoip

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/enrich/internal/mmdbtest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

type (
	city = mmdbtest.City
	asn  = mmdbtest.ASN
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	t0     = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	london = city{CIDR: "81.2.69.0/24", ISO: "GB", Country: "United Kingdom", Name: "London", Lat: 51.5142, Lon: -0.0931}
	mtv    = city{CIDR: "2001:4860::/32", ISO: "US", Country: "United States", Name: "Mountain View", Lat: 37.386, Lon: -122.0838}
	sweden = city{CIDR: "89.160.20.0/24", ISO: "SE", Country: "Sweden", Lat: 62, Lon: 15} // country-level only
	asGB   = asn{CIDR: "81.2.69.0/24", Num: 20712, Org: "Andrews & Arnold Ltd"}
	asG6   = asn{CIDR: "2001:4860::/32", Num: 15169, Org: "GOOGLE"}
)

func newTestEnricher(t *testing.T, cfg Config) *Enricher {
	t.Helper()
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e
}

func testConfig(t *testing.T) Config {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.CityDB = filepath.Join(dir, "GeoLite2-City.mmdb")
	cfg.ASNDB = filepath.Join(dir, "GeoLite2-ASN.mmdb")
	cfg.ReloadInterval = 0
	mmdbtest.WriteCity(t, cfg.CityDB, t0, london, mtv, sweden)
	mmdbtest.WriteASN(t, cfg.ASNDB, t0, asGB, asG6)
	return cfg
}

func TestEnrich(t *testing.T) {
	e := newTestEnricher(t, testConfig(t))
	tests := []struct {
		name      string
		in        schema.Event
		wantSrc   schema.Endpoint
		wantCli   schema.Endpoint
		wantExtra map[string]string
	}{
		{
			name: "ipv4 city and asn",
			in:   schema.Event{Source: schema.Endpoint{IP: "81.2.69.142"}},
			wantSrc: schema.Endpoint{IP: "81.2.69.142",
				Geo: schema.Geo{CountryISOCode: "GB", CountryName: "United Kingdom", CityName: "London", Location: schema.GeoPoint{Lat: 51.5142, Lon: -0.0931}},
				AS:  schema.AS{Number: 20712, Organization: schema.ASOrganization{Name: "Andrews & Arnold Ltd"}}},
		},
		{
			name: "ipv6",
			in:   schema.Event{Source: schema.Endpoint{IP: "2001:4860:4860::8888"}},
			wantSrc: schema.Endpoint{IP: "2001:4860:4860::8888",
				Geo: schema.Geo{CountryISOCode: "US", CountryName: "United States", CityName: "Mountain View", Location: schema.GeoPoint{Lat: 37.386, Lon: -122.0838}},
				AS:  schema.AS{Number: 15169, Organization: schema.ASOrganization{Name: "GOOGLE"}}},
		},
		{
			name: "ipv4-mapped ipv6 looks up the ipv4 address",
			in:   schema.Event{Source: schema.Endpoint{IP: "::ffff:81.2.69.1"}},
			wantSrc: schema.Endpoint{IP: "::ffff:81.2.69.1",
				Geo: schema.Geo{CountryISOCode: "GB", CountryName: "United Kingdom", CityName: "London", Location: schema.GeoPoint{Lat: 51.5142, Lon: -0.0931}},
				AS:  schema.AS{Number: 20712, Organization: schema.ASOrganization{Name: "Andrews & Arnold Ltd"}}},
		},
		{
			name:    "country only, no asn",
			in:      schema.Event{Source: schema.Endpoint{IP: "89.160.20.128"}},
			wantSrc: schema.Endpoint{IP: "89.160.20.128", Geo: schema.Geo{CountryISOCode: "SE", CountryName: "Sweden", Location: schema.GeoPoint{Lat: 62, Lon: 15}}},
		},
		{
			name:    "public but not in the databases",
			in:      schema.Event{Source: schema.Endpoint{IP: "1.1.1.1"}},
			wantSrc: schema.Endpoint{IP: "1.1.1.1"},
		},
		{
			name:    "client looked up too, source private",
			in:      schema.Event{Source: schema.Endpoint{IP: "10.1.2.3"}, Client: schema.Endpoint{IP: "81.2.69.7"}},
			wantSrc: schema.Endpoint{IP: "10.1.2.3"},
			wantCli: schema.Endpoint{IP: "81.2.69.7",
				Geo: schema.Geo{CountryISOCode: "GB", CountryName: "United Kingdom", CityName: "London", Location: schema.GeoPoint{Lat: 51.5142, Lon: -0.0931}},
				AS:  schema.AS{Number: 20712, Organization: schema.ASOrganization{Name: "Andrews & Arnold Ltd"}}},
			wantExtra: map[string]string{"source.ip.scope": "private"},
		},
		{
			name:      "loopback",
			in:        schema.Event{Source: schema.Endpoint{IP: "::1"}, Client: schema.Endpoint{IP: "127.0.0.1"}},
			wantSrc:   schema.Endpoint{IP: "::1"},
			wantCli:   schema.Endpoint{IP: "127.0.0.1"},
			wantExtra: map[string]string{"source.ip.scope": "loopback", "client.ip.scope": "loopback"},
		},
		{
			name:      "reserved documentation range",
			in:        schema.Event{Source: schema.Endpoint{IP: "203.0.113.9"}},
			wantSrc:   schema.Endpoint{IP: "203.0.113.9"},
			wantExtra: map[string]string{"source.ip.scope": "reserved"},
		},
		{
			name:    "not an address",
			in:      schema.Event{Source: schema.Endpoint{IP: "gateway.internal"}},
			wantSrc: schema.Endpoint{IP: "gateway.internal"},
		},
		{
			name:    "normalizer's geo wins",
			in:      schema.Event{Source: schema.Endpoint{IP: "81.2.69.142", Geo: schema.Geo{CountryISOCode: "FR"}}},
			wantSrc: schema.Endpoint{IP: "81.2.69.142", Geo: schema.Geo{CountryISOCode: "FR"}, AS: schema.AS{Number: 20712, Organization: schema.ASOrganization{Name: "Andrews & Arnold Ltd"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []schema.Event{tt.in}
			if err := e.Enrich(t.Context(), evs); err != nil {
				t.Fatal(err)
			}
			if evs[0].Source != tt.wantSrc {
				t.Errorf("source = %+v\nwant     %+v", evs[0].Source, tt.wantSrc)
			}
			if evs[0].Client != tt.wantCli {
				t.Errorf("client = %+v\nwant     %+v", evs[0].Client, tt.wantCli)
			}
			if fmt.Sprint(evs[0].Trailwatch.Extra) != fmt.Sprint(tt.wantExtra) {
				t.Errorf("extra = %v, want %v", evs[0].Trailwatch.Extra, tt.wantExtra)
			}
		})
	}
}

func TestScope(t *testing.T) {
	tests := []struct{ ip, want string }{
		{"8.8.8.8", ""}, {"2606:4700::1", ""},
		{"127.0.0.53", ScopeLoopback}, {"::1", ScopeLoopback}, {"::ffff:127.0.0.1", ScopeLoopback},
		{"10.0.0.1", ScopePrivate}, {"172.16.5.4", ScopePrivate}, {"192.168.1.1", ScopePrivate},
		{"100.64.0.1", ScopePrivate}, {"fd00::1", ScopePrivate},
		{"169.254.169.254", ScopeReserved}, {"0.0.0.0", ScopeReserved}, {"224.0.0.251", ScopeReserved},
		{"255.255.255.255", ScopeReserved}, {"192.0.2.1", ScopeReserved}, {"2001:db8::1", ScopeReserved},
		{"fe80::1", ScopeReserved}, {"::", ScopeReserved}, {"ff02::1", ScopeReserved},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			if got := Scope(netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Fatalf("Scope(%s) = %q, want %q", tt.ip, got, tt.want)
			}
		})
	}
}

func TestCacheBoundAndCounters(t *testing.T) {
	cfg := testConfig(t)
	cfg.CacheSize = 2
	e := newTestEnricher(t, cfg)
	ips := []string{"81.2.69.1", "81.2.69.2", "81.2.69.1", "81.2.69.3", "81.2.69.2"}
	// miss, miss, hit, miss (evicts .2), miss (evicts .1)
	for _, ip := range ips {
		if err := e.Enrich(t.Context(), []schema.Event{{Source: schema.Endpoint{IP: ip}}}); err != nil {
			t.Fatal(err)
		}
	}
	st := e.Stats()
	if st.Hits != 1 || st.Misses != 4 || st.Evictions != 2 || st.CacheLen != 2 {
		t.Fatalf("stats = %+v, want 1 hit, 4 misses, 2 evictions, 2 cached", st)
	}
}

func TestReloadSwapsDatabases(t *testing.T) {
	cfg := testConfig(t)
	e := newTestEnricher(t, cfg)
	lookup := func() schema.Endpoint {
		evs := []schema.Event{{Source: schema.Endpoint{IP: "81.2.69.142"}}}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		return evs[0].Source
	}
	if got := lookup(); got.Geo.CityName != "London" {
		t.Fatalf("before reload: %+v", got)
	}
	if swapped, err := e.Reload(); err != nil || swapped {
		t.Fatalf("Reload of unchanged files = %v, %v; want false, nil", swapped, err)
	}

	mmdbtest.WriteCity(t, cfg.CityDB, t0.Add(time.Hour), city{CIDR: "81.2.69.0/24", ISO: "GB", Country: "United Kingdom", Name: "Cambridge", Lat: 52.2, Lon: 0.12})
	if swapped, err := e.Reload(); err != nil || !swapped {
		t.Fatalf("Reload = %v, %v; want true, nil", swapped, err)
	}
	got := lookup()
	if got.Geo.CityName != "Cambridge" || got.AS.Number != 20712 {
		t.Fatalf("after reload: %+v (cached result from the old database?)", got)
	}

	// A broken file is refused and the previous databases stay.
	if err := os.WriteFile(cfg.CityDB, []byte("not an mmdb"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reload(); err == nil {
		t.Fatal("Reload of a corrupt file succeeded")
	}
	if got := lookup(); got.Geo.CityName != "Cambridge" {
		t.Fatalf("after failed reload: %+v", got)
	}
	if st := e.Stats(); st.Reloads != 1 || st.ReloadErrors != 1 {
		t.Fatalf("stats = %+v, want 1 reload, 1 error", st)
	}
}

func TestReloadOnTicker(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReloadInterval = time.Minute
	synctest.Test(t, func(t *testing.T) {
		e, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := e.Close(t.Context()); err != nil {
				t.Error(err)
			}
		}()
		mmdbtest.WriteASN(t, cfg.ASNDB, t0.Add(time.Hour), asn{CIDR: "81.2.69.0/24", Num: 64500, Org: "Renamed Ltd"})
		time.Sleep(cfg.ReloadInterval + time.Second)
		synctest.Wait()
		evs := []schema.Event{{Source: schema.Endpoint{IP: "81.2.69.142"}}}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		if got := evs[0].Source.AS; got.Number != 64500 || got.Organization.Name != "Renamed Ltd" {
			t.Fatalf("as after tick = %+v", got)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no database", DefaultConfig(), "city_db: one of city_db or asn_db is required"},
		{"bad bounds", Config{ASNDB: "x", ReloadInterval: -1}, "reload_interval: must not be negative\ncache_size: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{CityDB: filepath.Join(t.TempDir(), "missing.mmdb"), CacheSize: 1}, nil); err == nil {
		t.Fatal("New with a missing file succeeded")
	}
}

func BenchmarkEnrich(b *testing.B) {
	dir := b.TempDir()
	cfg := DefaultConfig()
	cfg.CityDB, cfg.ASNDB, cfg.ReloadInterval = filepath.Join(dir, "c.mmdb"), filepath.Join(dir, "a.mmdb"), 0
	mmdbtest.WriteCity(b, cfg.CityDB, t0, london, mtv, sweden)
	mmdbtest.WriteASN(b, cfg.ASNDB, t0, asGB, asG6)
	e, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(b.Context())
	evs := make([]schema.Event, 1000)
	for i := range evs {
		evs[i].Source.IP = fmt.Sprintf("81.2.69.%d", i%250)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range evs {
			evs[i].Source.Geo, evs[i].Source.AS = schema.Geo{}, schema.AS{}
		}
		if err := e.Enrich(b.Context(), evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
