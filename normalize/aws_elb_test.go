package normalize_test

import (
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var (
	_ normalize.Normalizer = (*normalize.AWSALB)(nil)
	_ normalize.Normalizer = (*normalize.AWSELB)(nil)
)

func TestAWSALBGolden(t *testing.T) {
	cloudGolden(t, "aws_alb", normalize.NewAWSALB(), "*.log", false)
}

func TestAWSELBGolden(t *testing.T) {
	cloudGolden(t, "aws_elb", normalize.NewAWSELB(), "*.log", false)
}

func elbRecord(line string) *ingest.Record {
	return &ingest.Record{Data: []byte(line), Collector: "s3", Host: "h", Origin: "s3://logs/AWSLogs/x.log", Offset: 10}
}

// TestAWSALB pins the mapping decisions field by field.
func TestAWSALB(t *testing.T) {
	const full = `https 2025-07-02T22:23:00.186641Z app/my-lb/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.086 0.048 0.037 403 403 12 57 "GET https://api.example.com:443/v1/x?k=twfp_apikey_0123456789abcdef01234567 HTTP/1.1" "curl/8.5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/tg/73e2d6bc24d8a067 "Root=1-58337281-1d84f3d73c47ec4e58577259" "api.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/1" 1 2025-07-02T22:23:00.000641Z "forward" "-" "-" "10.0.0.1:80" "403" "Acceptable" "-" TID_1 "-" "-" "-" "later" later2`
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, ev *schema.Event)
	}{
		{
			name: "every field",
			line: full,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 7, 2, 22, 23, 0, 186641000, time.UTC))
				eq(t, "source.ip", ev.Source.IP, "192.168.131.39")
				eq(t, "source.port", ev.Source.Port, 2817)
				eq(t, "http.request.method", ev.HTTP.Request.Method, "GET")
				eq(t, "url.domain", ev.URL.Domain, "api.example.com")
				eq(t, "url.port", ev.URL.Port, 443)
				eq(t, "url.path", ev.URL.Path, "/v1/x")
				eq(t, "http.version", ev.HTTP.Version, "1.1")
				eq(t, "http.response.status_code", ev.HTTP.Response.StatusCode, 403)
				eq(t, "http.request.body.bytes", ev.HTTP.Request.Body.Bytes, int64(12))
				eq(t, "http.response.body.bytes", ev.HTTP.Response.Body.Bytes, int64(57))
				eq(t, "event.outcome", ev.Event.Outcome, "failure")
				eq(t, "event.duration", ev.Event.Duration, int64(186*time.Millisecond))
				eq(t, "trace.id", ev.Trace.ID, "Root=1-58337281-1d84f3d73c47ec4e58577259")
				eq(t, "tls", ev.TLS, schema.TLS{Version: "1.2", VersionProtocol: "tls", Cipher: "ECDHE-RSA-AES128-GCM-SHA256", Client: schema.TLSClient{ServerName: "api.example.com"}})
				eq(t, "cloud", ev.Cloud, schema.Cloud{Provider: "aws", Region: "us-east-2", Account: schema.CloudAccount{ID: "123456789012"}})
				eq(t, "credential", ev.Trailwatch.Credential, schema.Credential{Type: "apikey", Fingerprint: "0123456789abcdef01234567"})
				eq(t, "trailwatch.actor", ev.Trailwatch.Actor, "cred:0123456789abcdef01234567")
				eq(t, "event.dataset", ev.Event.Dataset, "aws.elb_logs")
				x := ev.Trailwatch.Extra
				eq(t, "aws.elb.type", x["aws.elb.type"], "https")
				eq(t, "aws.elb.name", x["aws.elb.name"], "app/my-lb/50dc6c495c0c9188")
				eq(t, "aws.elb.backend.ip", x["aws.elb.backend.ip"], "10.0.0.1")
				eq(t, "aws.elb.backend.port", x["aws.elb.backend.port"], "80")
				eq(t, "aws.elb.backend status", x["aws.elb.backend.http.response.status_code"], "403")
				eq(t, "aws.elb.target_group.arn", x["aws.elb.target_group.arn"], "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/tg/73e2d6bc24d8a067")
				eq(t, "aws.elb.classification", x["aws.elb.classification"], "Acceptable")
				eq(t, "aws.elb.conn_trace_id", x["aws.elb.conn_trace_id"], "TID_1")
				eq(t, "aws.elb.field_34", x["aws.elb.field_34"], "later")
				eq(t, "aws.elb.field_35", x["aws.elb.field_35"], "later2")
				if _, ok := x["aws.elb.redirect_url"]; ok {
					t.Error(`"-" stored in extra`)
				}
			},
		},
		{
			name: "not dispatched",
			line: `https 2025-07-02T22:23:00.186641Z app/my-lb/1 [2001:db8::7]:40914 - -1 -1 -1 460 - 108 0 "POST https://x.example.com:443/u HTTP/1.1" "-" - -`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "source.ip", ev.Source.IP, "2001:db8::7")
				eq(t, "source.port", ev.Source.Port, 40914)
				eq(t, "event.duration", ev.Event.Duration, int64(0))
				eq(t, "user_agent.original", ev.UserAgent.Original, "")
				eq(t, "tls", ev.TLS, schema.TLS{})
				eq(t, "request_processing_time", ev.Trailwatch.Extra["aws.elb.request_processing_time.sec"], "-1")
			},
		},
		{
			name: "escaped quote in user agent",
			line: `http 2025-07-02T22:23:00Z app/my-lb/1 1.2.3.4:5 - 0 0 0 200 - 0 0 "GET / HTTP/1.1" "a \"b\" c"`,
			check: func(t *testing.T, ev *schema.Event) {
				eq(t, "user_agent.original", ev.UserAgent.Original, `a "b" c`)
			},
		},
	}
	n := normalize.NewAWSALB()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := n.Normalize(nil, elbRecord(tt.line))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events", len(evs))
			}
			tt.check(t, &evs[0])
		})
	}
}

func TestAWSELB(t *testing.T) {
	n := normalize.NewAWSELB()
	evs, err := n.Normalize(nil, elbRecord(`2025-05-13T23:39:43.945958Z my-lb 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 "- - - " "-" - -`))
	if err != nil || len(evs) != 1 {
		t.Fatalf("Normalize: %d events, %v", len(evs), err)
	}
	ev := &evs[0]
	eq(t, "http.request.method", ev.HTTP.Request.Method, "")
	eq(t, "url.original", ev.URL.Original, "")
	eq(t, "aws.elb.protocol", ev.Trailwatch.Extra["aws.elb.protocol"], "tcp")
	eq(t, "event.outcome", ev.Event.Outcome, "")
	eq(t, "event.duration", ev.Event.Duration, int64(1138*time.Microsecond))
	eq(t, "observer.product", ev.Observer.Product, "Classic Load Balancer")
}

func TestAWSELBErrors(t *testing.T) {
	tests := []struct {
		name    string
		n       normalize.Normalizer
		line    string
		wantErr string
	}{
		{"alb bad time", normalize.NewAWSALB(), `http 2025-07-02 app/x 1.2.3.4:5 - 0 0 0 200 - 0 0 "GET / HTTP/1.1"`, `aws_alb: field 2 (time): invalid time "2025-07-02"`},
		{"alb short", normalize.NewAWSALB(), `http 2025-07-02T22:23:00Z app/x 1.2.3.4:5`, `aws_alb: line has 4 fields, want at least 13 (through "request")`},
		{"alb bad status", normalize.NewAWSALB(), `http 2025-07-02T22:23:00Z app/x 1.2.3.4:5 - 0 0 0 2000 - 0 0 "GET / HTTP/1.1"`, `aws_alb: field 9 (elb_status_code): invalid status "2000"`},
		{"alb unterminated", normalize.NewAWSALB(), `http 2025-07-02T22:23:00Z app/x 1.2.3.4:5 - 0 0 0 200 - 0 0 "GET / HTTP/1.1`, `aws_alb: field 13: unterminated quoted field at byte`},
		{"alb junk after quote", normalize.NewAWSALB(), `http 2025-07-02T22:23:00Z app/x 1.2.3.4:5 - 0 0 0 200 - 0 0 "GET / HTTP/1.1"x`, `aws_alb: field 13: expected ' ' at byte`},
		{"alb too long", normalize.NewAWSALB(), strings.Repeat("a", normalize.MaxLineBytes+1), "aws_alb: line is 65537 bytes, over the 65536-byte limit"},
		{"classic given alb", normalize.NewAWSELB(), `http 2025-05-13T23:39:43Z my-lb 1.2.3.4:5 - 0 0 0 200 200 0 0 "GET / HTTP/1.1"`, `aws_elb: field 1 (timestamp): invalid time "http"`},
		{"classic negative bytes", normalize.NewAWSELB(), `2025-05-13T23:39:43Z my-lb 1.2.3.4:5 - 0 0 0 200 200 0 -29 "GET / HTTP/1.1"`, `aws_elb: field 11 (sent_bytes): invalid byte count "-29"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]schema.Event, 1, 4)
			dst[0].Event.ID = "kept"
			got, err := tt.n.Normalize(dst, elbRecord(tt.line))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(got) != 1 || got[0].Event.ID != "kept" {
				t.Errorf("Normalize changed dst on error")
			}
		})
	}
}

func TestAWSELBHostile(t *testing.T) {
	t.Run("alb", func(t *testing.T) { cloudHostileTest(t, "aws_alb", normalize.NewAWSALB()) })
	t.Run("elb", func(t *testing.T) { cloudHostileTest(t, "aws_elb", normalize.NewAWSELB()) })
}

// TestCloudSpecs checks that the option-less sources build from an empty
// spec and refuse options they would silently ignore.
func TestCloudSpecs(t *testing.T) {
	specs := map[string]func(normalize.Spec) (normalize.Normalizer, error){
		"aws_alb": normalize.NewAWSALBSpec, "aws_elb": normalize.NewAWSELBSpec,
		"aws_apigateway": normalize.NewAWSAPIGatewaySpec, "cloudtrail": normalize.NewCloudTrailSpec,
		"gcp_audit": normalize.NewGCPAuditSpec, "ecs": normalize.NewECSSpec,
	}
	for name, build := range specs {
		t.Run(name, func(t *testing.T) {
			if n, err := build(normalize.Spec{Type: name}); err != nil || n == nil {
				t.Errorf("empty spec: %v", err)
			}
			for _, bad := range []normalize.Spec{{Format: "x"}, {Pattern: "x"}, {TimeLayout: "2006"}, {Fields: map[string]string{"a": "b"}}} {
				if _, err := build(bad); err == nil {
					t.Errorf("spec %+v accepted", bad)
				}
			}
		})
	}
}

func FuzzAWSALB(f *testing.F) {
	cloudFuzz(f, "aws_alb", normalize.NewAWSALB(), cloudSeeds(f, "aws_alb", "*.log", false))
}

func FuzzAWSELB(f *testing.F) {
	cloudFuzz(f, "aws_elb", normalize.NewAWSELB(), cloudSeeds(f, "aws_elb", "*.log", false))
}

func BenchmarkAWSALB(b *testing.B) {
	n := normalize.NewAWSALB()
	cloudBench(b, n, cloudGoodRecords(b, n, cloudRecords(b, "aws_alb", "testdata/aws_alb/access.log", false)), "lines")
}

func BenchmarkAWSELB(b *testing.B) {
	n := normalize.NewAWSELB()
	cloudBench(b, n, cloudGoodRecords(b, n, cloudRecords(b, "aws_elb", "testdata/aws_elb/access.log", false)), "lines")
}
