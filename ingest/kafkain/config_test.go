package kafkain

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	valid := func() Config { return testConfig([]string{"127.0.0.1:9092"}, "kong-log", "g") }
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string
	}{
		{name: "valid", modify: func(*Config) {}},
		{name: "missing", modify: func(c *Config) { c.Brokers, c.Topics, c.Group, c.Source, c.Name = nil, nil, "", "", "" },
			want: []string{"brokers: required", "topics: required", "group: required", "source: required", "name: required"}},
		{name: "empty entries", modify: func(c *Config) { c.Brokers, c.Topics = []string{""}, []string{""} }, want: []string{"brokers[0]: empty", "topics[0]: empty"}},
		{name: "bad start", modify: func(c *Config) { c.StartOffset = "middle" }, want: []string{`start_offset: must be "earliest" or "latest"`}},
		{name: "bad numbers", modify: func(c *Config) { c.MaxPollRecords, c.DialTimeout, c.SessionTimeout = 0, 0, 0 },
			want: []string{"max_poll_records:", "dial_timeout:", "session_timeout:"}},
		{name: "sasl", modify: func(c *Config) { c.SASL.Mechanism = "GSSAPI" }, want: []string{"sasl.mechanism:", "sasl.username: required"}},
		{name: "tls half pair", modify: func(c *Config) { c.TLS.CertFile = "c.pem" }, want: []string{"tls.cert_file, tls.key_file: set both or neither"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestClusterDefault(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = []string{"b:9092", "a:9092"}
	if got := cfg.cluster(); got != "a:9092,b:9092" {
		t.Errorf("cluster() = %q", got)
	}
	cfg.Cluster = "kong-prod"
	if got := cfg.cluster(); got != "kong-prod" {
		t.Errorf("cluster() = %q", got)
	}
}
