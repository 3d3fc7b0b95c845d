package normalize_test

import (
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.Kong)(nil)

func TestKongGolden(t *testing.T) { gwGolden(t, "kong", normalize.NewKong()) }

func TestKong(t *testing.T) {
	recs := gwRecords(t, "kong", "testdata/kong/file-log.log")
	n := normalize.NewKong()
	tests := []struct {
		name  string
		line  int
		check func(t *testing.T, ev *schema.Event)
	}{
		{name: "full record", line: 0, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "@timestamp", ev.Timestamp, time.UnixMilli(1732093200100).UTC())
			eq(t, "source.ip", ev.Source.IP, "10.0.0.2")
			eq(t, "client.ip", ev.Client.IP, "198.51.100.7")
			eq(t, "method", ev.HTTP.Request.Method, "GET")
			eq(t, "url.path", ev.URL.Path, "/orders")
			eq(t, "url.query", ev.URL.Query, "id=7")
			eq(t, "url.full", ev.URL.Full, "https://api.example.com:8443/orders?id=7")
			eq(t, "url.domain", ev.URL.Domain, "api.example.com")
			eq(t, "url.port", ev.URL.Port, 8443)
			eq(t, "url.scheme", ev.URL.Scheme, "https")
			eq(t, "status", ev.HTTP.Response.StatusCode, 200)
			eq(t, "request bytes", ev.HTTP.Request.Bytes, int64(86))
			eq(t, "response bytes", ev.HTTP.Response.Bytes, int64(934))
			eq(t, "http.request.id", ev.HTTP.Request.ID, "2f5c8a0e6b1d4e7f")
			eq(t, "duration", ev.Event.Duration, int64(1921*time.Millisecond))
			eq(t, "service", ev.Service, schema.Service{ID: "0855b320-0dd2-547d-891d-601e9b38647f", Name: "orders"})
			eq(t, "destination.ip", ev.Destination.IP, "10.0.5.5")
			eq(t, "user", ev.User, schema.User{ID: "35b03bfc-7a5b-4a23-a594-aa350c585fa8", Name: "alice"})
			eq(t, "credential", ev.Trailwatch.Credential, schema.Credential{Fingerprint: "0123456789abcdef01234567", Type: "apikey", ID: "4d7b2c1a-5e6f-4a8b-9c0d-1e2f3a4b5c6d"})
			eq(t, "tls.version", ev.TLS.Version, "1.3")
			eq(t, "route", ev.Trailwatch.Extra["kong.route.name"], "orders-route")
			eq(t, "paths", ev.Trailwatch.Extra["kong.route.paths"], "/orders, /v1/orders")
			eq(t, "custom id", ev.Trailwatch.Extra["kong.consumer.custom_id"], "cust-42")
			eq(t, "dataset", ev.Event.Dataset, "kong.access")
			eq(t, "related.user", ev.Related.User, []string{"alice"})
		}},
		{name: "last try, consumer id only", line: 2, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "destination.ip", ev.Destination.IP, "10.0.5.6")
			eq(t, "destination.port", ev.Destination.Port, 8080)
			eq(t, "tries", ev.Trailwatch.Extra["kong.tries"], "2")
			eq(t, "source.ip (unmapped)", ev.Source.IP, "192.0.2.1")
			eq(t, "related.user", ev.Related.User, []string{"35b03bfc-7a5b-4a23-a594-aa350c585fa8"})
			eq(t, "credential id", ev.Trailwatch.Credential.ID, "entity-1")
			eq(t, "duration", ev.Event.Duration, int64(30000500*time.Microsecond))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := n.Normalize(nil, &recs[tt.line])
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &evs[0])
		})
	}
}

func TestKongErrors(t *testing.T) {
	gwBadInput(t, "kong", normalize.NewKong(), map[string]string{
		"no started_at":  `{"request":{"method":"GET"},"response":{"status":200}}`,
		"status text":    `{"request":{"method":"GET"},"response":{"status":"OK"},"started_at":1732093202000}`,
		"batch array":    `[{"request":{"method":"GET"},"started_at":1732093202000}]`,
		"unknown object": `{"foo":"bar"}`,
		"seconds":        `{"request":{"method":"GET"},"started_at":1e15}`,
	})
}

func FuzzKong(f *testing.F) { gwFuzz(f, "kong", normalize.NewKong()) }

func BenchmarkKong(b *testing.B) {
	gwBench(b, "kong", "testdata/kong/file-log.log", normalize.NewKong(), "events/s")
}
