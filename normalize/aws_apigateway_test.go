package normalize_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.AWSAPIGateway)(nil)

func TestAWSAPIGatewayGolden(t *testing.T) {
	cloudGolden(t, "aws_apigateway", normalize.NewAWSAPIGateway(), "*.ndjson", false)
}

func apigwRecord(s string) *ingest.Record {
	return &ingest.Record{Data: []byte(s), Collector: "cloudwatch", Host: "h", Origin: "API-Gateway-Execution-Logs/prod", Offset: 3}
}

// TestAWSAPIGateway checks that the three key shapes give the same event.
func TestAWSAPIGateway(t *testing.T) {
	shapes := map[string]string{
		"nested":      `{"requestId":"r1","requestTimeEpoch":1742332560000,"httpMethod":"GET","path":"/p","status":"429","identity":{"sourceIp":"192.0.2.1","apiKeyId":"k1","userAgent":"ua"},"authorizer":{"claims":{"sub":"s1"}},"apiId":"api1","responseLatency":"7"}`,
		"flattened":   `{"requestId":"r1","requestTimeEpoch":"1742332560000","httpMethod":"GET","path":"/p","status":429,"identity.sourceIp":"192.0.2.1","identity.apiKeyId":"k1","identity.userAgent":"ua","authorizer.claims.sub":"s1","apiId":"api1","responseLatency":7}`,
		"$context":    `{"$context.requestId":"r1","$context.requestTimeEpoch":"1742332560000","$context.httpMethod":"GET","$context.path":"/p","$context.status":"429","$context.identity.sourceIp":"192.0.2.1","$context.identity.apiKeyId":"k1","$context.identity.userAgent":"ua","$context.authorizer.claims.sub":"s1","$context.apiId":"api1","$context.responseLatency":"7"}`,
		"context obj": `{"context":{"requestId":"r1","requestTimeEpoch":"1742332560000","httpMethod":"GET","path":"/p","status":"429","identity":{"sourceIp":"192.0.2.1","apiKeyId":"k1","userAgent":"ua"},"authorizer":{"claims":{"sub":"s1"}},"apiId":"api1","responseLatency":"7"}}`,
	}
	n := normalize.NewAWSAPIGateway()
	for name, line := range shapes {
		t.Run(name, func(t *testing.T) {
			evs, err := n.Normalize(nil, apigwRecord(line))
			if err != nil || len(evs) != 1 {
				t.Fatalf("Normalize: %d events, %v", len(evs), err)
			}
			ev := &evs[0]
			eq(t, "@timestamp", ev.Timestamp, time.UnixMilli(1742332560000).UTC())
			eq(t, "http.request.id", ev.HTTP.Request.ID, "r1")
			eq(t, "http.request.method", ev.HTTP.Request.Method, "GET")
			eq(t, "url.path", ev.URL.Path, "/p")
			eq(t, "http.response.status_code", ev.HTTP.Response.StatusCode, 429)
			eq(t, "event.outcome", ev.Event.Outcome, "failure")
			eq(t, "event.duration", ev.Event.Duration, int64(7*time.Millisecond))
			eq(t, "source.ip", ev.Source.IP, "192.0.2.1")
			eq(t, "user_agent.original", ev.UserAgent.Original, "ua")
			eq(t, "user.id", ev.User.ID, "s1")
			eq(t, "service.id", ev.Service.ID, "api1")
			eq(t, "credential", ev.Trailwatch.Credential, schema.Credential{ID: "k1", Type: "apikey"})
			eq(t, "extra", ev.Trailwatch.Extra, map[string]string(nil))
		})
	}
}

func TestAWSAPIGatewayErrors(t *testing.T) {
	tests := []struct {
		name, line, wantErr string
	}{
		{"no time", `{"requestId":"x"}`, "aws_apigateway: requestTime: missing"},
		{"bad status", `{"requestTimeEpoch":"1742332560","status":"OK"}`, `aws_apigateway: status: invalid status "OK"`},
		{"array", `[1]`, "aws_apigateway: record is not a JSON object"},
		{"trailing", `{"a":1} {"b":2}`, "aws_apigateway: invalid JSON at byte 8: data after the JSON value"},
		{"truncated", `{"a":`, "aws_apigateway: invalid JSON at byte 5: truncated, want a value"},
		{"too big", `{"a":"` + strings.Repeat("x", normalize.MaxJSONRecordBytes) + `"}`, "over the 1048576-byte limit"},
	}
	n := normalize.NewAWSAPIGateway()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := n.Normalize(nil, apigwRecord(tt.line))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestAWSAPIGatewayHostile(t *testing.T) {
	cloudHostileTest(t, "aws_apigateway", normalize.NewAWSAPIGateway())
}

func FuzzAWSAPIGateway(f *testing.F) {
	cloudFuzz(f, "aws_apigateway", normalize.NewAWSAPIGateway(), cloudSeeds(f, "aws_apigateway", "*.ndjson", false))
}

func BenchmarkAWSAPIGateway(b *testing.B) {
	n := normalize.NewAWSAPIGateway()
	cloudBench(b, n, cloudGoodRecords(b, n, cloudRecords(b, "aws_apigateway", "testdata/aws_apigateway/access.ndjson", false)), "events")
}
