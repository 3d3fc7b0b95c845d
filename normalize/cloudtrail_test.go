package normalize_test

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.CloudTrail)(nil)

func TestCloudTrailGolden(t *testing.T) {
	n := normalize.NewCloudTrail()
	t.Run("events", func(t *testing.T) { cloudGolden(t, "cloudtrail", n, "*.ndjson", false) })
	t.Run("files", func(t *testing.T) { cloudGolden(t, "cloudtrail", n, "s3-*", true) })
}

func ctRecord(data []byte) *ingest.Record {
	return &ingest.Record{Data: data, Collector: "s3", Host: "h", Origin: "s3://trail/AWSLogs/x.json.gz"}
}

func gz(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCloudTrail pins the mapping decisions field by field.
func TestCloudTrail(t *testing.T) {
	const assumed = `{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROA:bot","arn":"arn:aws:sts::111122223333:assumed-role/DeployRole/bot","accountId":"111122223333","accessKeyId":"ASIAIOSFODNN7EXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/DeployRole","userName":"DeployRole"},"attributes":{"mfaAuthenticated":"false"}}},"eventTime":"2025-03-18T21:20:11Z","eventSource":"ec2.amazonaws.com","eventName":"TerminateInstances","awsRegion":"eu-west-1","sourceIPAddress":"198.51.100.23","userAgent":"aws-cli/2.15.30","errorCode":"Client.UnauthorizedOperation","errorMessage":"You are not authorized","requestID":"req-1","eventID":"ev-1","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}`
	tests := []struct {
		name  string
		data  []byte
		check func(t *testing.T, evs []schema.Event)
	}{
		{
			name: "assumed role failure",
			data: []byte(assumed),
			check: func(t *testing.T, evs []schema.Event) {
				ev := &evs[0]
				eq(t, "event.id", ev.Event.ID, "ev-1")
				eq(t, "event.action", ev.Event.Action, "TerminateInstances")
				eq(t, "event.provider", ev.Event.Provider, "ec2.amazonaws.com")
				eq(t, "event.outcome", ev.Event.Outcome, "failure")
				eq(t, "event.type", ev.Event.Type, []string{"deletion"})
				eq(t, "error", ev.Error, schema.Error{Code: "Client.UnauthorizedOperation", Message: "You are not authorized"})
				eq(t, "source.ip", ev.Source.IP, "198.51.100.23")
				eq(t, "user.id", ev.User.ID, "arn:aws:sts::111122223333:assumed-role/DeployRole/bot")
				eq(t, "user.name", ev.User.Name, "DeployRole")
				eq(t, "credential", ev.Trailwatch.Credential, schema.Credential{ID: "ASIAIOSFODNN7EXAMPLE", Type: "awskey"})
				eq(t, "cloud", ev.Cloud, schema.Cloud{Provider: "aws", Region: "eu-west-1", Account: schema.CloudAccount{ID: "111122223333"}})
				eq(t, "http.request.id", ev.HTTP.Request.ID, "req-1")
				eq(t, "read_only", ev.Trailwatch.Extra["aws.cloudtrail.read_only"], "false")
				eq(t, "management_event", ev.Trailwatch.Extra["aws.cloudtrail.management_event"], "true")
				eq(t, "event_category", ev.Trailwatch.Extra["aws.cloudtrail.event_category"], "Management")
				eq(t, "actor", ev.Trailwatch.Actor, "user:DeployRole")
			},
		},
		{
			name: "service caller is an address, not an IP",
			data: []byte(`{"eventTime":"2025-03-18T21:20:11Z","eventName":"AssumeRole","eventSource":"sts.amazonaws.com","sourceIPAddress":"ec2.amazonaws.com","userIdentity":{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}}`),
			check: func(t *testing.T, evs []schema.Event) {
				ev := &evs[0]
				eq(t, "source.address", ev.Source.Address, "ec2.amazonaws.com")
				eq(t, "source.ip", ev.Source.IP, "")
				eq(t, "user.name", ev.User.Name, "ec2.amazonaws.com")
				eq(t, "event.category", ev.Event.Category, []string{"authentication"})
				eq(t, "event.id", ev.Event.ID, ctRecord(nil).ID())
			},
		},
		{
			name: "gzip file, ids from position without eventID",
			data: gz(t, []byte(`{"Records":[{"eventTime":"2025-03-18T21:20:11Z","eventName":"ListBuckets"},{"eventTime":"2025-03-18T21:20:12Z","eventName":"GetObject","eventID":"e2"}]}`)),
			check: func(t *testing.T, evs []schema.Event) {
				eq(t, "events", len(evs), 2)
				eq(t, "event.id[0]", evs[0].Event.ID, ctRecord(nil).ID()+"-0")
				eq(t, "event.id[1]", evs[1].Event.ID, "e2")
				eq(t, "event.type[0]", evs[0].Event.Type, []string{"access"})
			},
		},
		{
			name: "empty file",
			data: []byte(` { "Records" : [ ] }`),
			check: func(t *testing.T, evs []schema.Event) {
				eq(t, "events", len(evs), 0)
			},
		},
	}
	n := normalize.NewCloudTrail()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := n.Normalize(nil, ctRecord(tt.data))
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if len(evs) == 0 && tt.name != "empty file" {
				t.Fatal("no events")
			}
			tt.check(t, evs)
		})
	}
}

func TestCloudTrailErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"no eventTime", []byte(`{"eventName":"X"}`), "cloudtrail: eventTime: missing"},
		{"bad record in file", []byte(`{"Records":[{"eventTime":"2025-03-18T21:20:11Z","eventName":"A"},{"eventTime":"2025-03-18T21:20:11Z"}]}`), "cloudtrail: Records[1]: eventName: missing"},
		{"type mismatch in file", []byte(`{"Records":[{"eventTime":"2025-03-18T21:20:11Z","eventName":"A","userIdentity":"root"}]}`), "cloudtrail: Records[0]: userIdentity: want an object, got a string"},
		{"bad JSON in skipped body", []byte(`{"eventTime":"2025-03-18T21:20:11Z","eventName":"A","requestParameters":{"a":[1,2,}}`), "cloudtrail: invalid JSON at byte 82: unexpected '}'"},
		{"not an object", []byte(`"x"`), "cloudtrail: record is not a JSON object"},
		{"records not array", []byte(`{"Records":{}}`), `cloudtrail: file: Records: invalid JSON at byte 11: want '[', got '{'`},
		{"truncated file", []byte(`{"Records":[{"eventTime":"2025-03-18T21:20:11Z","eventName":"A"}`), "cloudtrail: file: truncated Records array"},
		{"trailing data", []byte(`{"Records":[]} {}`), "cloudtrail: file: data after the Records object"},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, "cloudtrail: gzip: "},
		{"truncated gzip", gz(t, []byte(`{"Records":[]}`))[:12], "cloudtrail: gzip: "},
		{"single too big", []byte(`{"x":"` + strings.Repeat("a", normalize.MaxJSONRecordBytes) + `"}`), "cloudtrail: event is 1048584 bytes, over the 1048576-byte limit"},
	}
	n := normalize.NewCloudTrail()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]schema.Event, 1, 8)
			dst[0].Event.ID = "kept"
			got, err := n.Normalize(dst, ctRecord(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if len(got) != 1 || got[0].Event.ID != "kept" {
				t.Errorf("Normalize changed dst on error")
			}
			for _, ev := range dst[1:cap(dst)] {
				if ev.Event.ID != "" {
					t.Errorf("partial event left in spare capacity: %+v", ev.Event)
				}
			}
		})
	}
}

func TestCloudTrailGunzipBound(t *testing.T) {
	bomb := gz(t, make([]byte, 1<<20))
	_, err := normalize.CTGunzip(bomb, 1<<16)
	if err == nil || !strings.Contains(err.Error(), "decompressed file exceeds the 65536-byte (0 MiB) limit") {
		t.Fatalf("error = %v", err)
	}
	out, err := normalize.CTGunzip(bomb, 1<<20)
	if err != nil || len(out) != 1<<20 {
		t.Fatalf("at the limit: %d bytes, %v", len(out), err)
	}
}

func TestCloudTrailHostile(t *testing.T) {
	cloudHostileTest(t, "cloudtrail", normalize.NewCloudTrail())
}

func FuzzCloudTrail(f *testing.F) {
	seeds := cloudSeeds(f, "cloudtrail", "*.ndjson", false)
	seeds = append(seeds, cloudSeeds(f, "cloudtrail", "s3-*", true)...)
	cloudFuzz(f, "cloudtrail", normalize.NewCloudTrail(), seeds)
}

func BenchmarkCloudTrail(b *testing.B) {
	n := normalize.NewCloudTrail()
	b.Run("single events", func(b *testing.B) {
		cloudBench(b, n, cloudGoodRecords(b, n, cloudRecords(b, "cloudtrail", "testdata/cloudtrail/events.ndjson", false)), "events")
	})
	b.Run("S3 file 6 records", func(b *testing.B) {
		cloudBench(b, n, cloudRecords(b, "cloudtrail", "testdata/cloudtrail/s3-file.json", true), "events")
	})
	b.Run("S3 file gzip", func(b *testing.B) {
		recs := cloudRecords(b, "cloudtrail", "testdata/cloudtrail/s3-file.json", true)
		recs[0].Data = gz(b, recs[0].Data)
		cloudBench(b, n, recs, "events")
	})
}
