package normalize_test

import (
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.Traefik)(nil)

func TestTraefikGolden(t *testing.T) { gwGolden(t, "traefik", normalize.NewTraefik()) }

func TestTraefik(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, ev *schema.Event)
	}{
		{name: "common log format", line: `192.0.2.1 - alice [10/Oct/2025:13:55:36 +0000] "GET /api/v1/orders?id=7 HTTP/1.1" 200 512 "-" "curl/8.5.0" 42 "api@docker" "http://10.0.0.5:8080" 7ms`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 10, 10, 13, 55, 36, 0, time.UTC))
			eq(t, "source.ip", ev.Source.IP, "192.0.2.1")
			eq(t, "user.name", ev.User.Name, "alice")
			eq(t, "url.path", ev.URL.Path, "/api/v1/orders")
			eq(t, "status", ev.HTTP.Response.StatusCode, 200)
			eq(t, "duration", ev.Event.Duration, int64(7*time.Millisecond))
			eq(t, "destination.ip", ev.Destination.IP, "10.0.0.5")
			eq(t, "router", ev.Trailwatch.Extra["traefik.access.router.name"], "api@docker")
			eq(t, "count", ev.Trailwatch.Extra["traefik.access.request_count"], "42")
			eq(t, "dataset", ev.Event.Dataset, "traefik.access")
			eq(t, "source", ev.Trailwatch.Source, "traefik")
			eq(t, "related.user", ev.Related.User, []string{"alice"})
			eq(t, "actor", ev.Trailwatch.Actor, "user:alice")
		}},
		{name: "json", line: `{"ClientHost":"192.0.2.10","ClientPort":"53542","DownstreamStatus":201,"Duration":12500000,"RequestMethod":"POST","RequestPath":"/v1/x?a=1","RequestProtocol":"HTTP/2.0","RequestHost":"api.example.com","ServiceName":"api@docker","ServiceURL":{"Host":"10.0.0.5:8080"},"StartUTC":"2025-11-20T09:00:00.5Z","TLSVersion":"1.3","request_Authorization":"Bearer ` + gwToken + `","request_X-Forwarded-For":"203.0.113.77, 10.0.0.1","request_X-Request-Id":"r1","request_User-Agent":"curl/8"}`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 11, 20, 9, 0, 0, 5e8, time.UTC))
			eq(t, "source.ip", ev.Source.IP, "192.0.2.10")
			eq(t, "source.port", ev.Source.Port, 53542)
			eq(t, "client.ip", ev.Client.IP, "203.0.113.77")
			eq(t, "duration", ev.Event.Duration, int64(12500*time.Microsecond))
			eq(t, "service.name", ev.Service.Name, "api@docker")
			eq(t, "destination.port", ev.Destination.Port, 8080)
			eq(t, "credential", ev.Trailwatch.Credential.Fingerprint, gwTokenHex)
			eq(t, "http.request.id", ev.HTTP.Request.ID, "r1")
			eq(t, "user_agent", ev.UserAgent.Original, "curl/8")
			eq(t, "http.version", ev.HTTP.Version, "2.0")
			eq(t, "tls.version", ev.TLS.Version, "1.3")
			eq(t, "url.query", ev.URL.Query, "a=1")
		}},
	}
	n := normalize.NewTraefik()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, gwOne(t, n, tt.line)) })
	}
}

func TestTraefikErrors(t *testing.T) {
	gwBadInput(t, "traefik", normalize.NewTraefik(), map[string]string{
		"not an access log":   `{"level":"info","msg":"Configuration loaded"}`,
		"status not a number": `{"DownstreamStatus":"teapot","RequestMethod":"GET"}`,
		"bad time":            `{"StartUTC":"2025-13-01T00:00:00Z","RequestMethod":"GET"}`,
		"short clf":           `192.0.2.3 - - [10/Oct/2025:13:55:38 +0000] "GET / HTTP/1.1" 200`,
		"bad json tail":       `{"RequestMethod":"GET"} x`,
	})
	if _, err := normalize.NewTraefikSpec(normalize.Spec{Format: "clf2"}); err == nil {
		t.Fatal("format clf2 accepted")
	}
}

func FuzzTraefik(f *testing.F) { gwFuzz(f, "traefik", normalize.NewTraefik()) }

func BenchmarkTraefik(b *testing.B) {
	b.Run("common", func(b *testing.B) {
		n, _ := normalize.NewTraefikSpec(normalize.Spec{Format: "common"})
		gwBench(b, "traefik", "testdata/traefik/access.log", n, "lines/s")
	})
	b.Run("json", func(b *testing.B) {
		n, _ := normalize.NewTraefikSpec(normalize.Spec{Format: "json"})
		gwBench(b, "traefik", "testdata/traefik/access.log", n, "events/s")
	})
}
