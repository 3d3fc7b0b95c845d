package normalize_test

import (
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.GCPAudit)(nil)

func TestGCPAuditGolden(t *testing.T) {
	cloudGolden(t, "gcp_audit", normalize.NewGCPAudit(), "*.ndjson", false)
}

func TestGCPAudit(t *testing.T) {
	const line = `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{"code":7,"message":"PERMISSION_DENIED"},"authenticationInfo":{"principalEmail":"sa@p.iam.gserviceaccount.com","serviceAccountKeyName":"//iam.googleapis.com/projects/p/serviceAccounts/sa/keys/k1"},"requestMetadata":{"callerIp":"198.51.100.201","callerSuppliedUserAgent":"ua"},"serviceName":"storage.googleapis.com","methodName":"storage.buckets.delete","resourceName":"projects/_/buckets/b"},"insertId":"i1","resource":{"type":"gcs_bucket","labels":{"project_id":"p","location":"us"}},"timestamp":"2025-03-18T21:15:02.5Z","severity":"ERROR","logName":"projects/p/logs/cloudaudit.googleapis.com%2Fdata_access"}`
	rec := func() *ingest.Record {
		return &ingest.Record{Data: []byte(line), Collector: "pubsub", Host: "h", Origin: "sub", Offset: 1}
	}
	n := normalize.NewGCPAudit()
	evs, err := n.Normalize(nil, rec())
	if err != nil || len(evs) != 1 {
		t.Fatalf("Normalize: %d events, %v", len(evs), err)
	}
	ev := &evs[0]
	eq(t, "event.action", ev.Event.Action, "storage.buckets.delete")
	eq(t, "event.provider", ev.Event.Provider, "storage.googleapis.com")
	eq(t, "service.name", ev.Service.Name, "storage.googleapis.com")
	eq(t, "event.outcome", ev.Event.Outcome, "failure")
	eq(t, "event.severity", ev.Event.Severity, 500)
	eq(t, "error", ev.Error, schema.Error{Code: "7", Message: "PERMISSION_DENIED"})
	eq(t, "user.email", ev.User.Email, "sa@p.iam.gserviceaccount.com")
	eq(t, "source.ip", ev.Source.IP, "198.51.100.201")
	eq(t, "cloud", ev.Cloud, schema.Cloud{Provider: "gcp", Region: "us", Account: schema.CloudAccount{ID: "p"}})
	eq(t, "credential", ev.Trailwatch.Credential, schema.Credential{ID: "//iam.googleapis.com/projects/p/serviceAccounts/sa/keys/k1", Type: "gcpkey"})
	eq(t, "resource_name", ev.Trailwatch.Extra["gcp.audit.resource_name"], "projects/_/buckets/b")

	// The same entry read from another place has the same id.
	other := rec()
	other.Origin, other.Offset = "file", 999
	evs2, err := n.Normalize(nil, other)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "event.id of a redelivery", evs2[0].Event.ID, ev.Event.ID)
}

func TestGCPAuditErrors(t *testing.T) {
	tests := []struct{ name, line, wantErr string }{
		{"not audit", `{"textPayload":"x","timestamp":"2025-03-18T21:17:00Z"}`, "gcp_audit: protoPayload: missing"},
		{"other type", `{"protoPayload":{"@type":"x"},"timestamp":"2025-03-18T21:17:00Z"}`, `gcp_audit: protoPayload.@type: "x" is not type.googleapis.com/google.cloud.audit.AuditLog`},
		{"no time", `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog"}}`, "gcp_audit: timestamp: missing"},
		{"payload not an object", `{"protoPayload":["x"],"timestamp":"2025-03-18T21:17:00Z"}`, "gcp_audit: protoPayload: want an object"},
		{"bad JSON in skipped body", `{"protoPayload":{"request":{"a":tru}}}`, "gcp_audit: invalid JSON at byte 32: unexpected 't'"},
	}
	n := normalize.NewGCPAudit()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := n.Normalize(nil, &ingest.Record{Data: []byte(tt.line)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestGCPAuditHostile(t *testing.T) {
	cloudHostileTest(t, "gcp_audit", normalize.NewGCPAudit())
}

func FuzzGCPAudit(f *testing.F) {
	cloudFuzz(f, "gcp_audit", normalize.NewGCPAudit(), cloudSeeds(f, "gcp_audit", "*.ndjson", false))
}

func BenchmarkGCPAudit(b *testing.B) {
	n := normalize.NewGCPAudit()
	cloudBench(b, n, cloudGoodRecords(b, n, cloudRecords(b, "gcp_audit", "testdata/gcp_audit/audit.ndjson", false)), "events")
}
