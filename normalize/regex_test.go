package normalize_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
)

var _ normalize.Normalizer = (*normalize.Regex)(nil)

// regexGatewaySpec reads testdata/regex/gateway.log, an invented
// key=value gateway format of the kind the regex source exists for.
var regexGatewaySpec = normalize.Spec{
	Type: "regex",
	Pattern: `^(?P<ts>\S+) gw=(?P<gateway>\S+) client=(?P<ip>\[[^\]]+\]|[^:\s]+):(?P<port>\d+) user=(?P<user>\S+) req_id=(?P<rid>\S+) ` +
		`"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/(?P<ver>[\d.]+)" status=(?P<status>\d+) bytes=(?P<bytes>\S+) rt=(?P<rt>\S+) ua="(?P<ua>[^"]*)"$`,
	Fields: map[string]string{
		"ts": "@timestamp", "ip": "source.ip", "port": "source.port", "user": "user.name",
		"rid": "http.request.id", "method": "http.request.method", "target": "url.original",
		"ver": "http.version", "status": "http.response.status_code", "bytes": "http.response.body.bytes",
		"rt": "event.duration", "ua": "user_agent.original", "gateway": "trailwatch.extra.gateway",
	},
}

func mustRegex(t testing.TB, s normalize.Spec) normalize.Normalizer {
	t.Helper()
	n, err := normalize.NewRegexSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRegexGolden(t *testing.T) {
	cloudGolden(t, "regex", mustRegex(t, regexGatewaySpec), "*.log", false)
}

func TestRegex(t *testing.T) {
	n := mustRegex(t, normalize.Spec{
		Pattern:    `^(?P<when>\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}) (?P<who>\w+) (?P<what>\w+)(?: (?P<opt>\w+))?$`,
		Fields:     map[string]string{"when": "@timestamp", "who": "user.id", "what": "event.action"},
		TimeLayout: "02/01/2006 15:04:05",
	})
	evs, err := n.Normalize(nil, &ingest.Record{Data: []byte("18/03/2025 21:14:33 u1 login"), Source: "legacy_auth"})
	if err != nil || len(evs) != 1 {
		t.Fatalf("Normalize: %d, %v", len(evs), err)
	}
	ev := &evs[0]
	eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 3, 18, 21, 14, 33, 0, time.UTC))
	eq(t, "user.id", ev.User.ID, "u1")
	eq(t, "event.action", ev.Event.Action, "login")
	eq(t, "extra", ev.Trailwatch.Extra, map[string]string(nil)) // opt did not take part
	eq(t, "trailwatch.source", ev.Trailwatch.Source, "legacy_auth")

	// Without an @timestamp mapping the observed time stands in.
	n = mustRegex(t, normalize.Spec{Pattern: `^(?P<msg>.*)$`})
	obs := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	evs, err = n.Normalize(nil, &ingest.Record{Data: []byte("hello"), Observed: obs})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "@timestamp", evs[0].Timestamp, obs)
	eq(t, "extra.msg", evs[0].Trailwatch.Extra["msg"], "hello")
	if _, err := n.Normalize(nil, &ingest.Record{Data: []byte("hello")}); err == nil || !strings.Contains(err.Error(), "no observed time") {
		t.Errorf("no time at all: %v", err)
	}
}

func TestRegexSpec(t *testing.T) {
	tests := []struct {
		name    string
		spec    normalize.Spec
		wantErr []string
	}{
		{name: "ok", spec: regexGatewaySpec},
		{name: "no pattern", spec: normalize.Spec{}, wantErr: []string{"pattern: required"}},
		{name: "bad pattern", spec: normalize.Spec{Pattern: `(?P<a>`}, wantErr: []string{"pattern: error parsing regexp"}},
		{name: "no named groups", spec: normalize.Spec{Pattern: `^(\d+)$`}, wantErr: []string{"pattern: has no named groups"}},
		{name: "unknown field", spec: normalize.Spec{Pattern: `(?P<a>x)`, Fields: map[string]string{"a": "source.ipp"}},
			wantErr: []string{`fields.a: unsupported field "source.ipp" (supported: @timestamp, client.ip,`}},
		{name: "missing group", spec: normalize.Spec{Pattern: `(?P<a>x)`, Fields: map[string]string{"b": "user.name"}},
			wantErr: []string{"fields.b: no such named group in pattern"}},
		{name: "bad layout and format", spec: normalize.Spec{Pattern: `(?P<a>x)`, TimeLayout: "yyyy-MM-dd", Format: "x"},
			wantErr: []string{`time_layout: "yyyy-MM-dd" is not a Go time layout`, "format: not used by the regex type"}},
		{name: "all at once", spec: normalize.Spec{Pattern: `(?P<a>x)(?P<b>y)`, Fields: map[string]string{"a": "nope", "b": "nope2", "c": "user.id"}},
			wantErr: []string{"fields.a: unsupported", "fields.b: unsupported", "fields.c: no such named group"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := normalize.NewRegexSpec(tt.spec)
			if len(tt.wantErr) == 0 {
				if err != nil || n == nil {
					t.Fatalf("NewRegexSpec: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewRegexSpec accepted a bad spec")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRegexHostile(t *testing.T) {
	cloudHostileTest(t, "regex", mustRegex(t, regexGatewaySpec))
}

func FuzzRegex(f *testing.F) {
	cloudFuzz(f, "regex", mustRegex(f, regexGatewaySpec), cloudSeeds(f, "regex", "*.log", false))
}

func BenchmarkRegex(b *testing.B) {
	n := mustRegex(b, regexGatewaySpec)
	cloudBench(b, n, cloudGoodRecords(b, n, cloudRecords(b, "regex", "testdata/regex/gateway.log", false)), "lines")
}
