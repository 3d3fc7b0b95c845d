package normalize_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.Apache)(nil)

func buildApache(format string) (normalize.Normalizer, error) {
	return normalize.NewApacheSpec(normalize.Spec{Type: "apache", Format: format})
}

// TestApacheGolden normalizes testdata/apache/*.log, each in the format
// its .format sidecar names (combined without one).
func TestApacheGolden(t *testing.T) {
	lfGolden(t, "testdata/apache", "combined", buildApache)
}

func TestApache(t *testing.T) {
	tests := []struct {
		name   string
		format string
		line   string
		check  func(t *testing.T, ev *schema.Event)
	}{
		{
			name: "combined",
			line: `203.0.113.7 - alice [10/Oct/2025:13:55:36 -0700] "GET /api/v1/orders?id=7 HTTP/1.1" 200 2326 "https://ex.com/" "curl/8.5.0"`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 10, 10, 20, 55, 36, 0, time.UTC))
				eq(t, "source.ip", ev.Source.IP, "203.0.113.7")
				eq(t, "user.name", ev.User.Name, "alice")
				eq(t, "url.path", ev.URL.Path, "/api/v1/orders")
				eq(t, "url.query", ev.URL.Query, "id=7")
				eq(t, "http.response.body.bytes", ev.HTTP.Response.Body.Bytes, int64(2326))
				eq(t, "event.dataset", ev.Event.Dataset, "apache.access")
				eq(t, "event.module", ev.Event.Module, "apache")
				eq(t, "event.category", ev.Event.Category, []string{"web"})
				eq(t, "trailwatch.source", ev.Trailwatch.Source, "apache")
			},
		},
		{
			name:   "apache escapes",
			format: "common",
			line:   `10.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET /a\"b\\c\x41\td HTTP/1.1" 200 -`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "url.original", ev.URL.Original, "/a\"b\\cA\td")
				eq(t, "http.response.body.bytes", ev.HTTP.Response.Body.Bytes, int64(0))
			},
		},
		{
			name:   "epoch and durations",
			format: `%{msec}t %h "%r" %s %{ms}T %{Host}i %{Content-Type}o %{X-Trace}i %{FOO}e %{c}a`,
			line:   `1760104536123 10.0.0.1 "GET / HTTP/1.1" 200 250 api.example.com application/json abc bar 10.9.9.9`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "@timestamp", ev.Timestamp, time.UnixMilli(1760104536123).UTC())
				eq(t, "event.duration", ev.Event.Duration, int64(250*time.Millisecond))
				eq(t, "url.domain", ev.URL.Domain, "api.example.com")
				eq(t, "http.response.mime_type", ev.HTTP.Response.MimeType, "application/json")
				eq(t, "trailwatch.extra", ev.Trailwatch.Extra, map[string]string{"http_x_trace": "abc", "env_foo": "bar", "connection_ip": "10.9.9.9"})
			},
		},
		{
			name:   "percent literal and cookie credential",
			format: `%h [%{%Y-%m-%dT%H:%M:%S%z}t] 100%% "%r" %s %{sid}C`,
			line:   `10.0.0.1 [2025-10-10T13:55:36+0200] 100% "GET / HTTP/1.1" 200 twfp_session_0123456789abcdef01234567`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 10, 10, 11, 55, 36, 0, time.UTC))
				eq(t, "trailwatch.credential.type", ev.Trailwatch.Credential.Type, "session")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := buildApache(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := n.Normalize(nil, nginxRecord(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &evs[0])
		})
	}
}

func TestApacheSpecErrors(t *testing.T) {
	tests := []struct {
		name    string
		spec    normalize.Spec
		wantErr string
	}{
		{name: "unknown preset", spec: normalize.Spec{Format: "fancy"}, wantErr: `format "fancy" is neither a preset (combined, combinedio, common, vhost_combined) nor a LogFormat string`},
		{name: "pattern", spec: normalize.Spec{Pattern: "x"}, wantErr: "not options of apache"},
		{name: "unknown directive", spec: normalize.Spec{Format: "%t %Z"}, wantErr: "LogFormat: byte 3: unknown directive %Z"},
		{name: "header without name", spec: normalize.Spec{Format: "%t %i"}, wantErr: "%i needs a {name}"},
		{name: "unterminated brace", spec: normalize.Spec{Format: "%t %{Referer"}, wantErr: "unterminated %{"},
		{name: "adjacent", spec: normalize.Spec{Format: "%t %h%u"}, wantErr: "%h and %u have no text between them"},
		{name: "no time", spec: normalize.Spec{Format: "%h %u"}, wantErr: "no time field"},
		{name: "bad strftime", spec: normalize.Spec{Format: "%{%Q}t %h"}, wantErr: "unsupported conversion %Q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Type = "apache"
			_, err := normalize.Build(tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestApacheBadInput(t *testing.T) {
	n, err := normalize.NewApache("")
	if err != nil {
		t.Fatal(err)
	}
	lfBadInput(t, "apache", n)
}

// FuzzApache fuzzes the combined preset and the custom format of the
// goldens, seeded from testdata/apache.
func FuzzApache(f *testing.F) {
	n, err := normalize.NewApache(lfApacheCustom + ` "%{Referer}i" %{Authorization}i`)
	if err != nil {
		f.Fatal(err)
	}
	comb, _ := normalize.NewApache("")
	seeds := lfSeeds(f, "testdata/apache/*.log")
	both := lfMulti{n, comb}
	lfFuzz(f, "apache", "apache.access", seeds, both)
}

// BenchmarkApache measures the combined preset and the custom format
// over the golden lines that parse.
func BenchmarkApache(b *testing.B) {
	for _, c := range []struct{ name, format, path string }{
		{"combined", "combined", "testdata/apache/combined.log"},
		{"custom", lfApacheCustom, "testdata/apache/custom.log"},
	} {
		b.Run(c.name, func(b *testing.B) {
			n, err := normalize.NewApache(c.format)
			if err != nil {
				b.Fatal(err)
			}
			lfBench(b, n, lfGoodRecords(b, n, c.path), "lines/s")
		})
	}
}
