package enrich_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/enrich/actor"
	"github.com/trailwatch/trailwatch/enrich/geoip"
	"github.com/trailwatch/trailwatch/enrich/internal/mmdbtest"
	"github.com/trailwatch/trailwatch/enrich/iplist"
	"github.com/trailwatch/trailwatch/enrich/proxies"
	"github.com/trailwatch/trailwatch/enrich/useragent"
	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	_ enrich.Enricher = (*enrich.Chain)(nil)
	_ enrich.Enricher = (*geoip.Enricher)(nil)
	_ enrich.Enricher = (*iplist.Enricher)(nil)
	_ enrich.Enricher = (*proxies.Enricher)(nil)
	_ enrich.Enricher = (*useragent.Enricher)(nil)
	_ enrich.Enricher = (*actor.Enricher)(nil)
	_ enrich.Stateful = (*actor.Enricher)(nil)
	_ enrich.Stateful = (*enrich.Chain)(nil)
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture writes databases and lists into dir and returns a YAML config
// naming them, as a user would write it.
func fixture(t testing.TB, dir string, threatFeed int) string {
	t.Helper()
	cities := []mmdbtest.City{
		{CIDR: "81.2.69.0/24", ISO: "GB", Country: "United Kingdom", Name: "London", Lat: 51.5142, Lon: -0.0931},
		{CIDR: "2001:4860::/32", ISO: "US", Country: "United States", Name: "Mountain View", Lat: 37.386, Lon: -122.0838},
	}
	asns := []mmdbtest.ASN{{CIDR: "81.2.69.0/24", Num: 20712, Org: "Andrews & Arnold Ltd"}, {CIDR: "185.220.0.0/16", Num: 208294, Org: "Tor Relay Org"}}
	// A few hundred more networks so the trees have depth.
	for i := range 200 {
		cities = append(cities, mmdbtest.City{CIDR: fmt.Sprintf("%d.%d.0.0/16", 20+i%80, i), ISO: "DE", Country: "Germany", Name: "Berlin", Lat: 52.5, Lon: 13.4})
		asns = append(asns, mmdbtest.ASN{CIDR: fmt.Sprintf("%d.%d.0.0/16", 20+i%80, i), Num: uint32(64512 + i), Org: fmt.Sprintf("Org %d", i)})
	}
	mmdbtest.WriteCity(t, filepath.Join(dir, "city.mmdb"), t0, cities...)
	mmdbtest.WriteASN(t, filepath.Join(dir, "asn.mmdb"), t0, asns...)
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("internal.csv", "cidr,label\n10.0.0.0/8,corp\n192.168.0.0/16,office\n")
	var tor strings.Builder
	tor.WriteString("# tor exits\n185.220.101.1\n")
	for i := range threatFeed {
		fmt.Fprintf(&tor, "%d.%d.%d.%d\n", 100+i%50, i>>16&255, i>>8&255, i&255)
	}
	write("tor.txt", tor.String())
	// A CSV feed of domains and URLs, a tenth of the address feed's size.
	var intel strings.Builder
	intel.WriteString("indicator,threat\nevil.example,phishing\nhttp://dl.example/x.exe,dropper\n")
	for i := range threatFeed / 10 {
		fmt.Fprintf(&intel, "bad%d.example,c2\nhttp://files%d.example/p/%d.bin,malware\n", i, i, i)
	}
	write("intel.csv", intel.String())
	return fmt.Sprintf(`
enrich:
  proxies:
    trusted_proxies: [10.0.0.0/8]
  hop:
    enabled: true
    window: 2m
  iplist:
    refresh_interval: 1m
    lists:
      - {name: internal, file: %[1]s/internal.csv}
      - {name: tor_exit, file: %[1]s/tor.txt, threat: true}
      - {name: intel, file: %[1]s/intel.csv, format: csv, column: indicator, label_column: threat, threat: true, confidence: High}
  geoip:
    city_db: %[1]s/city.mmdb
    asn_db: %[1]s/asn.mmdb
    reload_interval: 30s
    cache_size: 50000
  user_agent:
    cache_size: 1000
`, dir)
}

type root struct {
	Enrich enrich.Config `koanf:"enrich"`
}

func load(t testing.TB, yaml string) enrich.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trailwatch.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var r root
	if err := config.Load(&r, root{Enrich: enrich.DefaultConfig()}, config.Sources{File: path, Environ: []string{}}); err != nil {
		t.Fatal(err)
	}
	return r.Enrich
}

func TestChainFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := load(t, fixture(t, dir, 10))
	if cfg.GeoIP.ReloadInterval != 30*time.Second || len(cfg.IPList.Lists) != 3 || !cfg.Hop.Enabled || !cfg.IPList.Lists[1].Threat || !cfg.UserAgent.Enabled || cfg.UserAgent.MaxLength != 1024 {
		t.Fatalf("config decoded as %+v", cfg)
	}
	e, err := enrich.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := e.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	// proxies, hop, iplist, geoip, user_agent, and actor when it is on.
	if want := 5 + btoi(cfg.Actor.Enabled); e.Len() != want {
		t.Fatalf("chain has %d enrichers, want %d", e.Len(), want)
	}
	ua := "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	evs := []schema.Event{{
		// A Tor exit behind our load balancer, lying in X-Forwarded-For.
		Source:     schema.Endpoint{IP: "10.0.0.5", Port: 55000},
		Client:     schema.Endpoint{IP: "81.2.69.142"},
		UserAgent:  schema.UserAgent{Original: ua},
		Related:    schema.Related{IP: []string{"10.0.0.5", "81.2.69.142"}},
		Trailwatch: schema.Trailwatch{Actor: "ip:10.0.0.5", Extra: map[string]string{"http_x_forwarded_for": "81.2.69.142, 185.220.101.1"}},
		Event:      schema.EventMeta{ID: "gw-1"},
		HTTP:       schema.HTTP{Request: schema.HTTPRequest{ID: "req-42"}},
		URL:        schema.URL{Domain: "login.evil.example", Full: "https://login.evil.example/"},
	}}
	if err := e.Enrich(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	want := schema.Endpoint{IP: "185.220.101.1", Address: "185.220.101.1", AS: schema.AS{Number: 208294, Organization: schema.ASOrganization{Name: "Tor Relay Org"}}}
	if ev.Source != want || ev.Client != want {
		t.Errorf("source = %+v\nclient = %+v\nwant     %+v", ev.Source, ev.Client, want)
	}
	if tags := []string{"iplist:tor_exit", "threat:tor_exit", "iplist:intel", "threat:intel"}; !slices.Equal(ev.Tags, tags) {
		t.Errorf("tags = %v, want %v", ev.Tags, tags)
	}
	wantExtra := map[string]string{
		"http_x_forwarded_for": "81.2.69.142, 185.220.101.1",
		"source.proxy.ip":      "10.0.0.5",
	}
	if !maps.Equal(ev.Trailwatch.Extra, wantExtra) {
		t.Errorf("extra = %v\nwant    %v", ev.Trailwatch.Extra, wantExtra)
	}
	wantThreat := []schema.ThreatEnrichment{
		{
			Indicator: schema.ThreatIndicator{Type: "ipv4-addr", IP: "185.220.101.1", Provider: "tor_exit"},
			Matched:   schema.ThreatMatched{Atomic: "185.220.101.1", Field: "source.ip", Type: "indicator_match_rule"},
		},
		{
			Indicator: schema.ThreatIndicator{Type: "domain-name", Domain: "evil.example", Provider: "intel", Description: "phishing", Confidence: "High"},
			Matched:   schema.ThreatMatched{Atomic: "login.evil.example", Field: "url.domain", Type: "indicator_match_rule"},
		},
	}
	if !slices.Equal(ev.Threat.Enrichments, wantThreat) {
		t.Errorf("threat.enrichments = %+v\nwant %+v", ev.Threat.Enrichments, wantThreat)
	}
	// The hop saw the client proxies resolved, not the forged leftmost entry.
	if h := (schema.Hop{ID: "req-42", ClientIP: "185.220.101.1"}); ev.Trailwatch.Hop != h {
		t.Errorf("hop = %+v, want %+v", ev.Trailwatch.Hop, h)
	}
	if ev.Trailwatch.Actor != "ip:185.220.101.1" || !slices.Equal(ev.Related.IP, []string{"10.0.0.5", "81.2.69.142", "185.220.101.1"}) {
		t.Errorf("actor %q related %v", ev.Trailwatch.Actor, ev.Related.IP)
	}
	if ev.UserAgent.Name != "Firefox" || ev.UserAgent.OS.Name != "Linux" {
		t.Errorf("user_agent = %+v", ev.UserAgent)
	}
	st := e.Stats()
	if st.Proxies.Rewritten != 1 || st.GeoIP.Misses != 1 || st.UserAgent.Misses != 1 || st.IPList.Lists[1].Matches != 1 || st.Hop.First != 1 {
		t.Errorf("stats = %+v %+v %+v %+v %+v", st.Proxies, st.GeoIP, st.UserAgent, st.IPList, st.Hop)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	cfg := enrich.DefaultConfig()
	cfg.Proxies.TrustedProxies = []string{"nope"}
	cfg.GeoIP.CityDB = "x.mmdb"
	cfg.GeoIP.CacheSize = 0
	cfg.IPList.Lists = []iplist.List{{Name: "a"}}
	cfg.UserAgent.MaxLength = 0
	cfg.Hop.Enabled, cfg.Hop.MaxIDs = true, 0
	_, err := enrich.New(cfg, nil)
	want := strings.Join([]string{
		`proxies.trusted_proxies[0]: "nope": not an address or CIDR`,
		`hop.max_ids: must be at least 1`,
		`iplist.lists[0].file: required (or url)`,
		`geoip.cache_size: must be at least 1`,
		`user_agent.max_length: must be at least 1`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("New error =\n%v\nwant\n%s", err, want)
	}
	// A missing file fails New and leaves no goroutine behind (goleak).
	cfg = enrich.DefaultConfig()
	cfg.IPList.Lists = []iplist.List{{Name: "a", File: filepath.Join(t.TempDir(), "a.txt")}}
	if _, err := enrich.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "enrich iplist: lists[0].file:") {
		t.Fatalf("New with a missing list: %v", err)
	}
}

func TestDefaultChainOnlyParsesUserAgents(t *testing.T) {
	e, err := enrich.New(enrich.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	st := e.Stats()
	if e.Len() != 1+btoi(st.Actor != nil) || st.UserAgent == nil || st.GeoIP != nil || st.IPList != nil || st.Proxies != nil || st.Hop != nil {
		t.Fatalf("default chain: %d enrichers, stats %+v", e.Len(), st)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.Enrich(ctx, make([]schema.Event, 1)); err == nil {
		t.Fatal("Enrich with a done context succeeded")
	}
}

// BenchmarkChain runs the whole chain from a config over a realistic mix
// with warm caches over batches of 10,000 events: about 9,000 distinct
// public clients (a third behind the trusted load balancer with
// X-Forwarded-For, 1% Tor exits), 5% private sources, 40 distinct user
// agents, a 10k-entry address feed and a 2k-entry domain and URL feed
// (a tenth of the requests to a listed domain), three hops per request id. events/s is per core: the chain runs on
// one goroutine.
func BenchmarkChain(b *testing.B) {
	dir := b.TempDir()
	cfg := load(b, fixture(b, dir, 10_000))
	e, err := enrich.New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())

	agents := make([]string, 40)
	for i := range agents {
		switch i % 4 {
		case 0:
			agents[i] = fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.%d.0 Safari/537.36", i)
		case 1:
			agents[i] = fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", i)
		case 2:
			agents[i] = fmt.Sprintf("python-requests/2.%d.0", i)
		default:
			agents[i] = fmt.Sprintf("aws-sdk-go-v2/1.%d.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64", i)
		}
	}
	const batch = 10_000
	tmpl := make([]schema.Event, batch)
	for i := range tmpl {
		ev := &tmpl[i]
		client := fmt.Sprintf("%d.%d.%d.%d", 20+i%80, i%200, (i/7)%256, i%2000%256)
		if i%9 == 0 {
			client = fmt.Sprintf("81.2.69.%d", i%250)
		}
		switch {
		case i%20 == 0:
			ev.Source.IP = fmt.Sprintf("192.168.%d.%d", i%4, i%200)
		case i%3 == 0:
			ev.Source.IP = "10.0.0.5"
			ev.Client.IP = client
			ev.Trailwatch.Extra = map[string]string{"http_x_forwarded_for": client + ", 10.0.0.9"}
		default:
			ev.Source.IP = client
		}
		if i%97 == 0 {
			ev.Source.IP = "185.220.101.1"
		}
		ev.UserAgent.Original = agents[i%len(agents)]
		ev.Trailwatch.Actor = "ip:" + ev.Source.IP
		// Three hops per request; every tenth request to a listed domain.
		ev.Event.ID = fmt.Sprint("ev-", i)
		ev.HTTP.Request.ID = fmt.Sprint("req-", i/3)
		ev.URL.Domain = fmt.Sprintf("api%d.example.com", i%50)
		if i%30 < 3 {
			ev.URL.Domain = fmt.Sprintf("x.bad%d.example", i%500)
		}
		ev.URL.Full = "https://" + ev.URL.Domain + "/v1/items?page=2"
	}
	evs := make([]schema.Event, batch)
	round := 0
	reset := func() {
		copy(evs, tmpl)
		for i := range evs {
			if tmpl[i].Trailwatch.Extra != nil {
				evs[i].Trailwatch.Extra = maps.Clone(tmpl[i].Trailwatch.Extra)
			}
			// Each round is the next second of traffic, new events (so
			// actor correlation counts them rather than taking replays).
			evs[i].Timestamp = t0.Add(time.Duration(round*batch+i) * 100 * time.Microsecond)
			evs[i].Event.ID = fmt.Sprint(tmpl[i].Event.ID, "-", round)
		}
		round++
	}
	reset()
	if err := e.Enrich(b.Context(), evs); err != nil { // warm the caches
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		reset()
		b.StartTimer()
		if err := e.Enrich(b.Context(), evs); err != nil {
			b.Fatal(err)
		}
		e.DrainChanges() // as the detect stage does after each batch
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
	st := e.Stats()
	if st.GeoIP.Evictions != 0 || st.UserAgent.Evictions != 0 || st.Actor.Evictions+st.Actor.IPEvictions != 0 {
		b.Fatalf("caches not warm: %+v %+v %+v", st.GeoIP, st.UserAgent, st.Actor)
	}
}
