package useragent

import (
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Real user agents a gateway sees: browsers, API clients, SDKs, scanners.
var agents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"curl/8.5.0",
	"python-requests/2.31.0",
	"Go-http-client/1.1",
	"aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.2 md/GOOS#linux md/GOARCH#amd64",
	"okhttp/4.12.0",
}

func TestEnrich(t *testing.T) {
	e, err := New(DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   schema.UserAgent
		want schema.UserAgent
	}{
		{name: "chrome on windows", in: schema.UserAgent{Original: agents[0]},
			want: schema.UserAgent{Original: agents[0], Name: "Chrome", Version: "124.0.0.0", OS: schema.UserAgentOS{Name: "Windows", Version: "10.0", Full: "Windows 10.0"}, Device: schema.UserAgentDevice{Name: "Other"}}},
		{name: "safari on iphone", in: schema.UserAgent{Original: agents[1]},
			want: schema.UserAgent{Original: agents[1], Name: "Safari", Version: "17.4", OS: schema.UserAgentOS{Name: "iOS", Version: "17.4", Full: "iOS 17.4"}, Device: schema.UserAgentDevice{Name: "iPhone"}}},
		{name: "googlebot", in: schema.UserAgent{Original: agents[4]},
			want: schema.UserAgent{Original: agents[4], Name: "Googlebot", Version: "2.1", Device: schema.UserAgentDevice{Name: "Spider"}}},
		{name: "curl", in: schema.UserAgent{Original: agents[5]},
			want: schema.UserAgent{Original: agents[5], Name: "curl", Version: "8.5.0", Device: schema.UserAgentDevice{Name: "Other"}}},
		{name: "already parsed by the normalizer", in: schema.UserAgent{Original: agents[0], Name: "Custom"},
			want: schema.UserAgent{Original: agents[0], Name: "Custom"}},
		{name: "too long", in: schema.UserAgent{Original: strings.Repeat("A", 1025)},
			want: schema.UserAgent{Original: strings.Repeat("A", 1025)}},
		{name: "empty", in: schema.UserAgent{}, want: schema.UserAgent{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []schema.Event{{UserAgent: tt.in}}
			if err := e.Enrich(t.Context(), evs); err != nil {
				t.Fatal(err)
			}
			if evs[0].UserAgent != tt.want {
				t.Fatalf("got  %+v\nwant %+v", evs[0].UserAgent, tt.want)
			}
		})
	}
	if st := e.Stats(); st.TooLong != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestCacheBound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.CacheSize = 3
	e, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		evs := make([]schema.Event, len(agents))
		for i, a := range agents {
			evs[i].UserAgent.Original = a
		}
		if err := e.Enrich(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	// Ten distinct agents cycled twice through three slots: all misses.
	if st := e.Stats(); st.CacheLen != 3 || st.Misses != 20 || st.Hits != 0 || st.Evictions != 17 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{}.Validate()
	if want := "cache_size: must be at least 1\nmax_length: must be at least 1"; err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want %q", err, want)
	}
}

func BenchmarkParse(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "cached"
		if !cached {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			if !cached {
				cfg.CacheSize = 1
			}
			e, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			evs := make([]schema.Event, len(agents))
			b.ReportAllocs()
			for b.Loop() {
				for i, a := range agents {
					evs[i].UserAgent = schema.UserAgent{Original: a}
				}
				if err := e.Enrich(b.Context(), evs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
