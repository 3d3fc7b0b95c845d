package iplist

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

func writeFile(t testing.TB, path, body string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

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

func TestParseList(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string // prefix=label
		wantErr    string
	}{
		{name: "plain with comments", body: "# tor exits\n1.2.3.4\n\n10.0.0.0/8   # office\n2001:db8::/32\n",
			want: []string{"1.2.3.4/32=", "10.0.0.0/8=", "2001:db8::/32="}},
		{name: "csv with header", body: "cidr,label\n192.168.0.0/16,office\n\"172.16.0.0/12\",\"vpn pool\"\n",
			want: []string{"192.168.0.0/16=office", "172.16.0.0/12=vpn pool"}},
		{name: "unmasked and mapped", body: "10.1.2.3/8\n::ffff:10.0.0.0/104\n::ffff:1.2.3.4\n",
			want: []string{"10.0.0.0/8=", "10.0.0.0/8=", "1.2.3.4/32="}},
		{name: "bad line names file and line", body: "1.2.3.4\nnot-an-ip\n10.0.0.0/33\n", wantErr: "test.txt:2: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseList("test.txt", strings.NewReader(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "test.txt:3: ") {
					t.Fatalf("err = %v, want %q and line 3", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, e := range got {
				s = append(s, e.prefix.String()+"="+e.label)
			}
			if !slices.Equal(s, tt.want) {
				t.Fatalf("got %v, want %v", s, tt.want)
			}
		})
	}
}

// TestTableMatchesBruteForce checks the flattened table against the most
// specific prefix found by scanning every entry, over random nested and
// overlapping-by-nesting prefixes of both families.
func TestTableMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			b[0], b[1] = 0x20, 0x01
			b[2] = byte(rng.IntN(4))
			for i := 3; i < 16; i++ {
				b[i] = byte(rng.IntN(256))
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	for round := range 20 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			var prefixes []netip.Prefix
			for range 200 {
				v6 := rng.IntN(3) == 0
				a := randAddr(v6)
				bits := 8 + rng.IntN(25)
				if v6 {
					bits = 16 + rng.IntN(113)
				}
				prefixes = append(prefixes, netip.PrefixFrom(a, bits).Masked())
			}
			prefixes = append(prefixes, netip.MustParsePrefix("::/0"), netip.MustParsePrefix("ffff::/16"))
			spans := make([]span, len(prefixes))
			for i, p := range prefixes {
				lo, hi := prefixRange(p)
				spans[i] = span{lo, hi, int32(i)}
			}
			tab := buildTable(slices.Clone(spans))
			for i := 1; i < len(tab.segs); i++ {
				if !tab.segs[i-1].hi.less(tab.segs[i].lo) {
					t.Fatalf("segments %d and %d overlap", i-1, i)
				}
			}
			// The reference: scan every prefix, keep the narrowest one that
			// contains a in the shared mapped space; on a tie, the later one.
			probe := func(a netip.Addr) {
				k := addrU128(a)
				want := int32(-1)
				for i, sp := range spans {
					if k.less(sp.lo) || sp.hi.less(k) {
						continue
					}
					if want < 0 || !narrower(spans[want], sp) {
						want = int32(i)
					}
				}
				if got := tab.lookup(k); got != want {
					t.Fatalf("lookup(%s) = %d, want %d", a, got, want)
				}
			}
			for range 2000 {
				probe(randAddr(rng.IntN(2) == 0))
			}
			for _, p := range prefixes {
				probe(p.Addr())
			}
			probe(netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
		})
	}
}

// narrower reports whether a covers strictly fewer addresses than b.
func narrower(a, b span) bool {
	// For nested prefixes the narrower starts later or ends earlier.
	return b.lo.less(a.lo) || a.hi.less(b.hi)
}

func TestTableEdges(t *testing.T) {
	tests := []struct {
		name     string
		prefixes []string
		probes   map[string]int32
	}{
		{name: "empty", probes: map[string]int32{"1.2.3.4": -1}},
		{name: "whole space then a hole", prefixes: []string{"::/0", "10.0.0.0/8"},
			probes: map[string]int32{"::": 0, "9.255.255.255": 0, "10.0.0.0": 1, "10.255.255.255": 1, "11.0.0.0": 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": 0}},
		{name: "duplicate later wins", prefixes: []string{"10.0.0.0/8", "10.0.0.0/8"},
			probes: map[string]int32{"10.1.1.1": 1}},
		{name: "same end as parent", prefixes: []string{"10.0.0.0/8", "10.255.0.0/16", "10.255.255.255/32"},
			probes: map[string]int32{"10.255.255.255": 2, "10.255.255.254": 1, "10.254.0.0": 0, "11.0.0.0": -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var spans []span
			for i, p := range tt.prefixes {
				lo, hi := prefixRange(netip.MustParsePrefix(p))
				spans = append(spans, span{lo, hi, int32(i)})
			}
			tab := buildTable(spans)
			for a, want := range tt.probes {
				if got := tab.lookup(addrU128(netip.MustParseAddr(a))); got != want {
					t.Errorf("lookup(%s) = %d, want %d", a, got, want)
				}
			}
		})
	}
}

func TestEnrich(t *testing.T) {
	dir := t.TempDir()
	internal, tor, intel := filepath.Join(dir, "internal.csv"), filepath.Join(dir, "tor.txt"), filepath.Join(dir, "intel.csv")
	writeFile(t, internal, "cidr,label\n10.0.0.0/8,corp\n10.9.0.0/16,vpn\n", t0)
	writeFile(t, tor, "# exits\n185.220.101.1\n185.220.102.0/24\n2001:db8:7::/48\n", t0)
	writeFile(t, intel, "indicator,note\n185.220.102.7,c2 node\nevil.example,phishing kit\nhttp://Bad.Example/dl/x.exe,dropper\n", t0)
	cfg := Config{Lists: []List{
		{Name: "internal", File: internal},
		{Name: "tor_exit", File: tor, Threat: true, Confidence: "Medium"},
		{Name: "intel", File: intel, Format: FormatCSV, Column: "indicator", LabelColumn: "note", Threat: true},
	}}
	e := newTestEnricher(t, cfg)
	torHit := func(ip, field string) schema.ThreatEnrichment {
		typ := "ipv4-addr"
		if strings.Contains(ip, ":") {
			typ = "ipv6-addr"
		}
		return schema.ThreatEnrichment{
			Indicator: schema.ThreatIndicator{Type: typ, IP: ip, Provider: "tor_exit", Confidence: "Medium"},
			Matched:   schema.ThreatMatched{Atomic: ip, Field: field, Type: MatchedType},
		}
	}
	tests := []struct {
		name   string
		in     schema.Event
		tags   []string
		labels map[string]string
		threat []schema.ThreatEnrichment
	}{
		{name: "no match", in: schema.Event{Source: schema.Endpoint{IP: "8.8.8.8"}, URL: schema.URL{Domain: "example.com", Full: "https://example.com/"}}},
		{name: "internal with label, most specific", in: schema.Event{Source: schema.Endpoint{IP: "10.9.1.1"}},
			tags: []string{"iplist:internal"}, labels: map[string]string{"iplist_internal": "vpn"}},
		{name: "threat on client behind internal proxy",
			in:     schema.Event{Source: schema.Endpoint{IP: "10.1.1.1"}, Client: schema.Endpoint{IP: "185.220.101.1"}, Tags: []string{"existing"}},
			tags:   []string{"existing", "iplist:internal", "iplist:tor_exit", "threat:tor_exit"},
			labels: map[string]string{"iplist_internal": "corp"},
			threat: []schema.ThreatEnrichment{torHit("185.220.101.1", "client.ip")}},
		{name: "two threat lists, description from the label", in: schema.Event{Source: schema.Endpoint{IP: "185.220.102.7"}},
			tags:   []string{"iplist:tor_exit", "threat:tor_exit", "iplist:intel", "threat:intel"},
			labels: map[string]string{"iplist_intel": "c2 node"},
			threat: []schema.ThreatEnrichment{torHit("185.220.102.7", "source.ip"), {
				Indicator: schema.ThreatIndicator{Type: "ipv4-addr", IP: "185.220.102.7", Provider: "intel", Description: "c2 node"},
				Matched:   schema.ThreatMatched{Atomic: "185.220.102.7", Field: "source.ip", Type: MatchedType},
			}}},
		{name: "ipv6 network", in: schema.Event{Source: schema.Endpoint{IP: "2001:db8:7::1"}},
			tags: []string{"iplist:tor_exit", "threat:tor_exit"}, threat: []schema.ThreatEnrichment{torHit("2001:db8:7::1", "source.ip")}},
		{name: "subdomain of a listed domain on url.domain", in: schema.Event{URL: schema.URL{Domain: "Login.EVIL.example"}},
			tags: []string{"iplist:intel", "threat:intel"}, labels: map[string]string{"iplist_intel": "phishing kit"},
			threat: []schema.ThreatEnrichment{{
				Indicator: schema.ThreatIndicator{Type: "domain-name", Domain: "evil.example", Provider: "intel", Description: "phishing kit"},
				Matched:   schema.ThreatMatched{Atomic: "Login.EVIL.example", Field: "url.domain", Type: MatchedType},
			}}},
		{name: "domain on destination.domain", in: schema.Event{Destination: schema.Endpoint{Domain: "evil.example."}},
			tags: []string{"iplist:intel", "threat:intel"}, labels: map[string]string{"iplist_intel": "phishing kit"},
			threat: []schema.ThreatEnrichment{{
				Indicator: schema.ThreatIndicator{Type: "domain-name", Domain: "evil.example", Provider: "intel", Description: "phishing kit"},
				Matched:   schema.ThreatMatched{Atomic: "evil.example.", Field: "destination.domain", Type: MatchedType},
			}}},
		{name: "a suffix that is not a subdomain does not match", in: schema.Event{URL: schema.URL{Domain: "notevil.example"}}},
		{name: "url with a query and other case", in: schema.Event{URL: schema.URL{Full: "HTTP://bad.example/dl/x.exe?session=1#top"}},
			tags: []string{"iplist:intel", "threat:intel"}, labels: map[string]string{"iplist_intel": "dropper"},
			threat: []schema.ThreatEnrichment{{
				Indicator: schema.ThreatIndicator{Type: "url", URL: "http://bad.example/dl/x.exe", Provider: "intel", Description: "dropper"},
				Matched:   schema.ThreatMatched{Atomic: "HTTP://bad.example/dl/x.exe?session=1#top", Field: "url.full", Type: MatchedType},
			}}},
		{name: "another path on a listed url's host does not match", in: schema.Event{URL: schema.URL{Full: "http://bad.example/index.html"}}},
		{name: "garbage address", in: schema.Event{Source: schema.Endpoint{IP: "unknown"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []schema.Event{tt.in}
			for range 2 { // enriching twice (a retried batch) changes nothing more
				if err := e.Enrich(t.Context(), evs); err != nil {
					t.Fatal(err)
				}
			}
			ev := evs[0]
			if !slices.Equal(ev.Tags, tt.tags) {
				t.Errorf("tags = %v, want %v", ev.Tags, tt.tags)
			}
			if fmt.Sprint(ev.Labels) != fmt.Sprint(tt.labels) {
				t.Errorf("labels = %v, want %v", ev.Labels, tt.labels)
			}
			if !slices.Equal(ev.Threat.Enrichments, tt.threat) {
				t.Errorf("threat.enrichments =\n%+v\nwant\n%+v", ev.Threat.Enrichments, tt.threat)
			}
			if ev.Trailwatch.Extra != nil {
				t.Errorf("extra = %v, want none", ev.Trailwatch.Extra)
			}
		})
	}
	st := e.Stats()
	if st.Lists[0].Entries != 2 || st.Lists[1].Matches != 6 || st.Lists[2].Domains != 1 || st.Lists[2].URLs != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestEnrichmentsAreBounded(t *testing.T) {
	dir := t.TempDir()
	var lists []List
	for i := range MaxEnrichments + 3 {
		path := filepath.Join(dir, fmt.Sprint(i))
		writeFile(t, path, "198.51.100.0/24\n", t0)
		lists = append(lists, List{Name: fmt.Sprint("feed", i), File: path, Threat: true})
	}
	e := newTestEnricher(t, Config{Lists: lists})
	evs := []schema.Event{{Source: schema.Endpoint{IP: "198.51.100.1"}}}
	for range 2 {
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(evs[0].Threat.Enrichments); n != MaxEnrichments {
		t.Fatalf("%d enrichments, want %d", n, MaxEnrichments)
	}
	if n := len(evs[0].Tags); n != 2*len(lists) {
		t.Fatalf("%d tags, want every list's two", n)
	}
	if st := e.Stats(); st.Truncated != 6 {
		t.Fatalf("Truncated = %d, want 3 per pass", st.Truncated)
	}
}

func TestRefresh(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.txt")
	writeFile(t, path, "1.2.3.4\n", t0)
	e := newTestEnricher(t, Config{Lists: []List{{Name: "block", File: path}}})
	matches := func(ip string) bool {
		evs := []schema.Event{{Source: schema.Endpoint{IP: ip}}}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		return slices.Contains(evs[0].Tags, "iplist:block")
	}
	if !matches("1.2.3.4") || matches("5.6.7.8") {
		t.Fatal("initial list wrong")
	}
	if changed, err := e.Refresh(); changed || err != nil {
		t.Fatalf("Refresh unchanged = %v, %v", changed, err)
	}
	writeFile(t, path, "5.6.7.0/24\n", t0.Add(time.Minute))
	if changed, err := e.Refresh(); !changed || err != nil {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}
	if matches("1.2.3.4") || !matches("5.6.7.8") {
		t.Fatal("refreshed list not in use")
	}
	writeFile(t, path, "5.6.7.0/24\ngarbage\n", t0.Add(2*time.Minute))
	if _, err := e.Refresh(); err == nil || !strings.Contains(err.Error(), "block.txt:2") {
		t.Fatalf("Refresh of a bad file: %v", err)
	}
	if !matches("5.6.7.8") {
		t.Fatal("bad refresh dropped the previous list")
	}
	if st := e.Stats(); st.Refreshes != 1 || st.RefreshErrors != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestRefreshOnTicker(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "block.txt")
	writeFile(t, path, "1.2.3.4\n", t0)
	synctest.Test(t, func(t *testing.T) {
		e, err := New(Config{Lists: []List{{Name: "block", File: path}}, RefreshInterval: time.Minute}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.Background())
		writeFile(t, path, "9.9.9.9\n", t0.Add(time.Hour))
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		evs := []schema.Event{{Source: schema.Endpoint{IP: "9.9.9.9"}}}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(evs[0].Tags, "iplist:block") {
			t.Fatal("ticker did not refresh the list")
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty", DefaultConfig(), "lists: at least one list is required"},
		{"bad entries", Config{Lists: []List{{Name: "a b", File: "x"}, {File: "y"}, {Name: "ok"}, {Name: "ok", File: "z"}}, RefreshInterval: -1},
			"lists[0].name: \"a b\": only letters, digits, '_' and '-'\nlists[1].name: required\nlists[2].file: required (or url)\nlists[3].name: \"ok\": duplicate\nrefresh_interval: must not be negative"},
		{"bad feeds", Config{Lists: []List{
			{Name: "a", File: "x", URL: "https://feeds.example/a"},
			{Name: "b", URL: "ftp://user:pw@feeds.example/b?key=s3cret", Format: "xml"},
			{Name: "c", File: "c", Token: "t", Format: FormatCSV},
			{Name: "d", URL: "https://feeds.example/d", Token: "t", TokenFile: "f", Confidence: "sure", Refresh: -1, Timeout: -1, MaxBytes: -1},
		}},
			"lists[0].url: set either file or url, not both\n" +
				"lists[1].url: ftp://feeds.example/b: want an http or https URL\n" +
				"lists[1].format: \"xml\": one of [plain csv tor stix misp]\n" +
				"lists[2].file: headers, token, token_file and ca_file need a url\n" +
				"lists[2].column: required with format csv\n" +
				"lists[3].token: set either token or token_file, not both\n" +
				"lists[3].confidence: \"sure\": one of Low, Medium, High, None, Not Specified\n" +
				"lists[3].refresh: must not be negative\nlists[3].timeout: must not be negative\nlists[3].max_bytes: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err == nil || err.Error() != tt.want {
				t.Fatalf("Validate =\n%v\nwant\n%s", err, tt.want)
			}
		})
	}
}

// BenchmarkLookup measures one address against one list of n networks.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{100, 10_000, 1_000_000} {
		b.Run(fmt.Sprintf("%d networks", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 4))
			spans := make([]span, n)
			for i := range spans {
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 20+rng.IntN(13)).Masked()
				lo, hi := prefixRange(p)
				spans[i] = span{lo, hi, int32(i)}
			}
			tab := buildTable(spans)
			probes := make([]u128, 1024)
			for i := range probes {
				probes[i] = addrU128(netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tab.lookup(probes[i&1023])
				i++
			}
		})
	}
}
