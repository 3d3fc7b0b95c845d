package proxies

import (
	"slices"
	"testing"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestEnrich(t *testing.T) {
	e, err := New(Config{TrustedProxies: []string{"10.0.0.0/8", "192.168.1.1", "fd00::/8"}, XFFExtraKeys: DefaultConfig().XFFExtraKeys}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		src, cli, proxy, actor string
		related                []string
	}
	tests := []struct {
		name string
		in   schema.Event
		want want
	}{
		{
			name: "untrusted peer: xff ignored",
			in:   schema.Event{Source: schema.Endpoint{IP: "203.0.113.5"}, Client: schema.Endpoint{IP: "1.1.1.1"}},
			want: want{src: "203.0.113.5", cli: "1.1.1.1"},
		},
		{
			name: "trusted peer, client.ip only",
			in:   schema.Event{Source: schema.Endpoint{IP: "10.0.0.7", Address: "10.0.0.7", Port: 41234}, Client: schema.Endpoint{IP: "81.2.69.142"}, Trailwatch: schema.Trailwatch{Actor: "ip:10.0.0.7"}},
			want: want{src: "81.2.69.142", cli: "81.2.69.142", proxy: "10.0.0.7", actor: "ip:81.2.69.142", related: []string{"10.0.0.7", "81.2.69.142"}},
		},
		{
			name: "spoofed leftmost entry skipped: rightmost untrusted wins",
			in: schema.Event{Source: schema.Endpoint{IP: "10.0.0.7"}, Client: schema.Endpoint{IP: "6.6.6.6"},
				Trailwatch: schema.Trailwatch{Actor: "cred:abc", Extra: map[string]string{"http_x_forwarded_for": "6.6.6.6, 81.2.69.142, 10.1.1.1,192.168.1.1"}}},
			want: want{src: "81.2.69.142", cli: "81.2.69.142", proxy: "10.0.0.7", actor: "cred:abc", related: []string{"10.0.0.7", "81.2.69.142"}},
		},
		{
			name: "all hops trusted: leftmost",
			in:   schema.Event{Source: schema.Endpoint{IP: "10.0.0.7"}, Trailwatch: schema.Trailwatch{Extra: map[string]string{"xff": "10.9.9.9, 10.1.1.1"}}},
			want: want{src: "10.9.9.9", cli: "10.9.9.9", proxy: "10.0.0.7", related: []string{"10.0.0.7", "10.9.9.9"}},
		},
		{
			name: "ports and brackets",
			in:   schema.Event{Source: schema.Endpoint{IP: "fd00::1"}, Trailwatch: schema.Trailwatch{Extra: map[string]string{"x_forwarded_for": "[2001:4860::1]:443, 10.0.0.1:8080"}}},
			want: want{src: "2001:4860::1", cli: "2001:4860::1", proxy: "fd00::1", related: []string{"fd00::1", "2001:4860::1"}},
		},
		{
			name: "garbage hop ends the walk",
			in:   schema.Event{Source: schema.Endpoint{IP: "10.0.0.7"}, Client: schema.Endpoint{IP: "1.1.1.1"}, Trailwatch: schema.Trailwatch{Extra: map[string]string{"xff": "1.1.1.1, unknown, 10.0.0.2"}}},
			want: want{src: "10.0.0.7", cli: "1.1.1.1"},
		},
		{
			name: "trusted peer without any chain",
			in:   schema.Event{Source: schema.Endpoint{IP: "10.0.0.7"}},
			want: want{src: "10.0.0.7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []schema.Event{tt.in}
			for range 2 { // idempotent on a retried batch
				if err := e.Enrich(t.Context(), evs); err != nil {
					t.Fatal(err)
				}
			}
			ev := evs[0]
			got := want{src: ev.Source.IP, cli: ev.Client.IP, proxy: ev.Trailwatch.Extra["source.proxy.ip"], actor: ev.Trailwatch.Actor, related: ev.Related.IP}
			if tt.want.actor == "" {
				tt.want.actor = tt.in.Trailwatch.Actor
			}
			if got.src != tt.want.src || got.cli != tt.want.cli || got.proxy != tt.want.proxy || got.actor != tt.want.actor || !slices.Equal(got.related, tt.want.related) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.proxy != "" && (ev.Source.Port != 0 || ev.Source.Address != got.src) {
				t.Fatalf("source not rewritten whole: %+v", ev.Source)
			}
		})
	}
	if st := e.Stats(); st.Rewritten != 4 || st.NoChain != 2 || st.BadChain != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"empty", DefaultConfig(), "trusted_proxies: at least one network is required"},
		{"bad network", Config{TrustedProxies: []string{"10.0.0.0/8", "10.0.0.0/40", "proxy.local"}},
			"trusted_proxies[1]: \"10.0.0.0/40\": not an address or CIDR\ntrusted_proxies[2]: \"proxy.local\": not an address or CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err == nil || err.Error() != tt.want {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
