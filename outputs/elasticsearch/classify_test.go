package elasticsearch

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esutil"
)

func TestClassify(t *testing.T) {
	item := func(status int, typ, reason string) esutil.BulkIndexerResponseItem {
		var r esutil.BulkIndexerResponseItem
		r.Status = status
		r.Error.Type = typ
		r.Error.Reason = reason
		return r
	}
	tests := []struct {
		name       string
		item       esutil.BulkIndexerResponseItem
		err        error
		ok, retry  bool
		wantReason string
	}{
		{name: "created", item: item(201, "", ""), ok: true},
		{name: "already there under create", item: item(409, "version_conflict_engine_exception", "exists"), ok: true},
		{name: "rejected execution", item: item(429, "es_rejected_execution_exception", "queue full"), retry: true, wantReason: "429 es_rejected_execution_exception: queue full"},
		{name: "shard unavailable", item: item(503, "unavailable_shards_exception", "primary not active"), retry: true, wantReason: "unavailable_shards_exception"},
		{name: "too large", item: item(413, "", ""), retry: true, wantReason: "split the batch"},
		{name: "mapping conflict", item: item(400, "mapper_parsing_exception", "failed to parse field [source.ip]"), wantReason: "400 mapper_parsing_exception: failed to parse field [source.ip]"},
		{name: "forbidden index", item: item(403, "cluster_block_exception", "read-only"), wantReason: "cluster_block_exception"},
		{name: "request failure", err: errors.New("flush: connection refused"), retry: true, wantReason: "connection refused"},
		{name: "no status", item: item(0, "", ""), retry: true, wantReason: "no status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, retry, reason := classify(tt.item, tt.err)
			if ok != tt.ok || retry != tt.retry || !strings.Contains(reason, tt.wantReason) {
				t.Errorf("classify = (%v, %v, %q), want (%v, %v, ~%q)", ok, retry, reason, tt.ok, tt.retry, tt.wantReason)
			}
		})
	}
}

func TestBodyTimestamp(t *testing.T) {
	want := time.Date(2024, 5, 1, 23, 59, 58, 123000000, time.UTC)
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{name: "compact", body: `{"@timestamp":"2024-05-01T23:59:58.123Z","event":{}}`},
		{name: "spaced", body: `{"event":{}, "@timestamp" : "2024-05-01T23:59:58.123Z"}`},
		{name: "offset zone", body: `{"@timestamp":"2024-05-02T01:59:58.123+02:00"}`},
		{name: "missing", body: `{"event":{}}`, wantErr: true},
		{name: "garbage", body: `{"@timestamp":"yesterday"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bodyTimestamp([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !got.Equal(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{name: "defaults with address", mutate: func(*Config) {}},
		{name: "no address", mutate: func(c *Config) { c.Addresses = nil }, want: []string{"addresses: required"}},
		{name: "both address and cloud", mutate: func(c *Config) { c.CloudID = "x" }, want: []string{"cloud_id: set either"}},
		{name: "bad scheme", mutate: func(c *Config) { c.Addresses = []string{"es:9200"} }, want: []string{"addresses[0]: must start"}},
		{name: "password twice", mutate: func(c *Config) { c.Password = "p"; c.PasswordFile = "/f" }, want: []string{"password: set either"}},
		{name: "api key twice", mutate: func(c *Config) { c.APIKey = "k"; c.APIKeyFile = "/f" }, want: []string{"api_key: set either"}},
		{
			name:   "several problems at once",
			mutate: func(c *Config) { c.Flavor = "solr"; c.Mode = "hourly"; c.EventsIndex = "Events"; c.Workers = -1 },
			want:   []string{"flavor:", "mode:", "events_index:", "workers:"},
		},
		{name: "same index twice", mutate: func(c *Config) { c.AlertsIndex = c.EventsIndex }, want: []string{"alerts_index: must differ"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Addresses = []string{"http://127.0.0.1:9200"}
			tt.mutate(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %v", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, missing %q", err, w)
				}
			}
		})
	}
}

func TestNewDoesNotLeakSecrets(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Addresses = []string{"http://127.0.0.1:9200"}
	cfg.Password = "hunter2-password"
	cfg.PasswordFile = "/nonexistent"
	_, err := New(cfg, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("New = %v, want an error without the password", err)
	}
}
