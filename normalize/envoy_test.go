package normalize_test

import (
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.Envoy)(nil)

func TestEnvoyGolden(t *testing.T) { gwGolden(t, "envoy", normalize.NewEnvoy()) }

func TestEnvoy(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, ev *schema.Event)
	}{
		{name: "default text format", line: `[2025-11-20T09:00:00.310Z] "GET /api/v1/orders?id=7 HTTP/1.1" 200 - 0 1523 12 10 "198.51.100.7" "curl/8.5.0" "rid-1" "api.example.com:8443" "10.0.3.4:8080"`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 11, 20, 9, 0, 0, 310e6, time.UTC))
			eq(t, "method", ev.HTTP.Request.Method, "GET")
			eq(t, "url.path", ev.URL.Path, "/api/v1/orders")
			eq(t, "url.query", ev.URL.Query, "id=7")
			eq(t, "url.domain", ev.URL.Domain, "api.example.com")
			eq(t, "http.version", ev.HTTP.Version, "1.1")
			eq(t, "status", ev.HTTP.Response.StatusCode, 200)
			eq(t, "response body bytes", ev.HTTP.Response.Body.Bytes, int64(1523))
			eq(t, "duration", ev.Event.Duration, int64(12*time.Millisecond))
			eq(t, "source.ip (from XFF)", ev.Source.IP, "198.51.100.7")
			eq(t, "client.ip", ev.Client.IP, "198.51.100.7")
			eq(t, "destination.ip", ev.Destination.IP, "10.0.3.4")
			eq(t, "destination.port", ev.Destination.Port, 8080)
			eq(t, "http.request.id", ev.HTTP.Request.ID, "rid-1")
			eq(t, "user_agent", ev.UserAgent.Original, "curl/8.5.0")
			eq(t, "upstream service time", ev.Trailwatch.Extra["envoyproxy.upstream_service_time"], "10")
			eq(t, "dataset", ev.Event.Dataset, "envoyproxy.log")
			eq(t, "outcome", ev.Event.Outcome, "success")
		}},
		{name: "no response, flags say why", line: `[2025-11-20T09:00:02.123Z] "GET /slow HTTP/1.1" 0 DC 0 0 30001 - "-" "-" "-" "-" "-"`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "outcome", ev.Event.Outcome, "failure")
			eq(t, "flags", ev.Trailwatch.Extra["envoyproxy.response_flags"], "DC")
			eq(t, "source", ev.Source, schema.Endpoint{})
		}},
		{name: "istio text format", line: `[2025-11-20T09:00:03.000Z] "GET /p HTTP/1.1" 503 UF,URX upstream_reset - "delayed_connect_error:_111" 0 91 1 - "-" "curl/7.88" "r" "productpage:9080" "10.244.0.7:9080" outbound|9080||pp - 10.96.12.1:9080 10.244.0.9:50432 pp.example.com default`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "source.ip", ev.Source.IP, "10.244.0.9")
			eq(t, "source.port", ev.Source.Port, 50432)
			eq(t, "sni", ev.TLS.Client.ServerName, "pp.example.com")
			eq(t, "cluster", ev.Trailwatch.Extra["envoyproxy.upstream_cluster"], "outbound|9080||pp")
			eq(t, "details", ev.Trailwatch.Extra["envoyproxy.response_code_details"], "upstream_reset")
			eq(t, "transport failure", ev.Trailwatch.Extra["envoyproxy.upstream_transport_failure_reason"], "delayed_connect_error:_111")
			eq(t, "route", ev.Trailwatch.Extra["envoyproxy.route_name"], "default")
		}},
		{name: "json with credential in query", line: `{"start_time":"2025-11-20T09:00:05.500Z","method":"GET","path":"/u?api_key=` + "twfp_apikey_aaaaaaaaaaaaaaaaaaaaaaaa" + `","protocol":"HTTP/2","response_code":200,"duration":7.5,"bytes_sent":12,"downstream_remote_address":"10.0.0.1:5000","x_forwarded_for":"198.51.100.8"}`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "credential", ev.Trailwatch.Credential.Type, "apikey")
			eq(t, "duration", ev.Event.Duration, int64(7500*time.Microsecond))
			eq(t, "bytes", ev.HTTP.Response.Body.Bytes, int64(12))
			eq(t, "source.ip", ev.Source.IP, "10.0.0.1")
			eq(t, "client.ip", ev.Client.IP, "198.51.100.8")
			eq(t, "http.version", ev.HTTP.Version, "2")
		}},
	}
	n := normalize.NewEnvoy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, gwOne(t, n, tt.line)) })
	}
}

func TestEnvoyErrors(t *testing.T) {
	gwBadInput(t, "envoy", normalize.NewEnvoy(), map[string]string{
		"short text":      `[2025-11-20T09:00:07.000Z] "GET / HTTP/1.1" 200 - 0 1 2`,
		"bad time":        `[yesterday] "GET / HTTP/1.1" 200 - 0 1 2 - "-" "-" "-" "-" "-"`,
		"bad status":      `[2025-11-20T09:00:07.000Z] "GET / HTTP/1.1" 2x0 - 0 1 2 - "-" "-" "-" "-" "-"`,
		"json wrong type": `{"method":"GET","response_code":"two hundred"}`,
		"json nothing":    `{"foo":1}`,
		"json array":      `[1,2]`,
	})
	if _, err := normalize.NewEnvoySpec(normalize.Spec{Format: "yaml"}); err == nil {
		t.Fatal("format yaml accepted")
	}
	text, err := normalize.NewEnvoySpec(normalize.Spec{Format: "text"})
	if err != nil {
		t.Fatal(err)
	}
	gwBadInput(t, "envoy", text, map[string]string{"json to text": `{"method":"GET","response_code":200}`})
}

func FuzzEnvoy(f *testing.F) { gwFuzz(f, "envoy", normalize.NewEnvoy()) }

func BenchmarkEnvoy(b *testing.B) {
	b.Run("text", func(b *testing.B) {
		n, _ := normalize.NewEnvoySpec(normalize.Spec{Format: "text"})
		gwBench(b, "envoy", "testdata/envoy/access.log", n, "lines/s")
	})
	b.Run("json", func(b *testing.B) {
		n, _ := normalize.NewEnvoySpec(normalize.Spec{Format: "json"})
		gwBench(b, "envoy", "testdata/envoy/access.log", n, "events/s")
	})
}
