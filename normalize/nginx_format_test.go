package normalize_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var (
	_ normalize.Normalizer = (*normalize.NginxFormat)(nil)
	_ normalize.Normalizer = (*normalize.NginxJSON)(nil)
)

func buildNginx(format string) (normalize.Normalizer, error) {
	return normalize.Build(normalize.Spec{Type: "nginx", Format: format})
}

// TestNginxCustomGolden normalizes testdata/nginx_custom/*.log, each in
// the log_format of its .format sidecar.
func TestNginxCustomGolden(t *testing.T) {
	lfGolden(t, "testdata/nginx_custom", "", buildNginx)
}

// TestNginxJSONGolden normalizes testdata/nginx_json/*.log.
func TestNginxJSONGolden(t *testing.T) {
	lfGolden(t, "testdata/nginx_json", "json", buildNginx)
}

func TestNginxSpec(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		want    string // type name of the normalizer
		wantErr string
	}{
		{name: "default", format: "", want: "*normalize.Nginx"},
		{name: "combined", format: "combined", want: "*normalize.Nginx"},
		{name: "json", format: "json", want: "*normalize.NginxJSON"},
		{name: "json log_format", format: `escape=json {"t":"$msec"}`, want: "*normalize.NginxJSON"},
		{name: "custom", format: lfNginxCustom, want: "*normalize.NginxFormat"},
		{name: "custom with escape and config quoting", format: `escape=default $remote_addr [$time_local] \"$request\"`, want: "*normalize.NginxFormat"},
		{name: "no time", format: `$remote_addr "$request"`, wantErr: "log_format: format has no time field"},
		{name: "adjacent", format: `$time_local$status`, wantErr: "$time_local and $status have no text between them"},
		{name: "lone dollar", format: `$time_local $ x`, wantErr: "byte 12: '$' not followed by a variable name"},
		{name: "no variables", format: `plain`, wantErr: "format has no fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := buildNginx(tt.format)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := typeName(n); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := normalize.Build(normalize.Spec{Type: "nginx", Pattern: "x"}); err == nil {
		t.Error("nginx accepted a pattern")
	}
}

func typeName(n normalize.Normalizer) string {
	switch n.(type) {
	case *normalize.Nginx:
		return "*normalize.Nginx"
	case *normalize.NginxJSON:
		return "*normalize.NginxJSON"
	case *normalize.NginxFormat:
		return "*normalize.NginxFormat"
	}
	return "?"
}

func TestNginxFormat(t *testing.T) {
	tests := []struct {
		name   string
		format string
		line   string
		check  func(t *testing.T, ev *schema.Event)
	}{
		{
			name:   "user with spaces before a bracket",
			format: `$remote_addr - $remote_user [$time_local] "$request" $status`,
			line:   `10.0.0.1 - john doe [10/Oct/2025:13:55:36 +0000] "GET /x HTTP/1.1" 200`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "user.name", ev.User.Name, "john doe")
				eq(t, "related.user", ev.Related.User, []string{"john doe"})
			},
		},
		{
			name:   "uri and args without request",
			format: `$msec $remote_addr $request_method $uri $args $status $request_time`,
			line:   `1760104536.250 10.0.0.1 GET /api/x a=1&key=twfp_apikey_0123456789abcdef01234567 200 0.125`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "@timestamp", ev.Timestamp, time.UnixMilli(1760104536250).UTC())
				eq(t, "url.original", ev.URL.Original, "/api/x?a=1&key=twfp_apikey_0123456789abcdef01234567")
				eq(t, "url.path", ev.URL.Path, "/api/x")
				eq(t, "url.query", ev.URL.Query, "a=1&key=twfp_apikey_0123456789abcdef01234567")
				eq(t, "event.duration", ev.Event.Duration, int64(125*time.Millisecond))
				eq(t, "trailwatch.actor", ev.Trailwatch.Actor, "cred:0123456789abcdef01234567")
			},
		},
		{
			name:   "escape=json value in quotes",
			format: `[$time_local] "$http_user_agent" $status`,
			line:   `[10/Oct/2025:13:55:36 +0000] "a \"quoted\" \\ \u00e9" 200`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "user_agent.original", ev.UserAgent.Original, `a "quoted" \ é`)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := normalize.NewNginxFormat(tt.format)
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

func TestNginxFormatBadInput(t *testing.T) {
	n, err := normalize.NewNginxFormat(lfNginxCustom)
	if err != nil {
		t.Fatal(err)
	}
	lfBadInput(t, "nginx", n)
}

func TestNginxJSONBadInput(t *testing.T) {
	lfBadInput(t, "nginx", normalize.NewNginxJSON())
}

// FuzzNginxFormat fuzzes the custom formats of testdata/nginx_custom.
func FuzzNginxFormat(f *testing.F) {
	custom, err := normalize.NewNginxFormat(lfNginxCustom)
	if err != nil {
		f.Fatal(err)
	}
	ext, err := buildNginx(lfFormatOf(f, "testdata/nginx_custom/extended.log", ""))
	if err != nil {
		f.Fatal(err)
	}
	lfFuzz(f, "nginx", "nginx.access", lfSeeds(f, "testdata/nginx_custom/*.log"), lfMulti{custom, ext})
}

// FuzzNginxJSON fuzzes the JSON scanner, seeded from testdata/nginx_json.
func FuzzNginxJSON(f *testing.F) {
	lfFuzz(f, "nginx", "nginx.access", lfSeeds(f, "testdata/nginx_json/*.log"), normalize.NewNginxJSON())
}

// BenchmarkNginxCustom measures the custom log_format of the goldens.
func BenchmarkNginxCustom(b *testing.B) {
	n, err := normalize.NewNginxFormat(lfNginxCustom)
	if err != nil {
		b.Fatal(err)
	}
	lfBench(b, n, lfGoodRecords(b, n, "testdata/nginx_custom/custom.log"), "lines/s")
}

// BenchmarkNginxJSON measures the JSON log_format lines of the goldens.
func BenchmarkNginxJSON(b *testing.B) {
	n := normalize.NewNginxJSON()
	lfBench(b, n, lfGoodRecords(b, n, "testdata/nginx_json/access.log"), "events/s")
}
