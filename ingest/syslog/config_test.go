package syslog

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{name: "defaults with a listener", modify: func(c *Config) {}},
		{name: "all listeners", modify: func(c *Config) {
			c.UDP, c.TLS, c.CertFile, c.KeyFile, c.ClientCAFile = ":5514", "[::1]:6514", "c.pem", "k.pem", "ca.pem"
			c.Allow = []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}
			c.Sources = map[string]string{"nginx": "nginx", "haproxy": "haproxy"}
		}},
		{name: "no listener", modify: func(c *Config) { c.TCP = "" },
			want: []string{"udp, tcp, tls: at least one listener"}},
		{name: "bad addresses", modify: func(c *Config) { c.UDP, c.TCP = "5514", "host" },
			want: []string{"udp: address 5514: missing port", "tcp: address host: missing port"}},
		{name: "tls without cert", modify: func(c *Config) { c.TLS = ":6514" },
			want: []string{"cert_file: required with tls", "key_file: required with tls"}},
		{name: "cert without tls", modify: func(c *Config) { c.CertFile, c.ClientCAFile = "c.pem", "ca.pem" },
			want: []string{"cert_file: set but tls", "client_ca_file: set but tls"}},
		{name: "bad allow", modify: func(c *Config) { c.Allow = []string{"10.0.0.0/8", "nope"} },
			want: []string{`allow[1]: "nope" is neither a CIDR nor an IP`}},
		{name: "missing source and name", modify: func(c *Config) { c.Source, c.Name = "", "" },
			want: []string{"source: required", "name: required"}},
		{name: "name with slash", modify: func(c *Config) { c.Name = "a/b" },
			want: []string{"name: must not contain '/'"}},
		{name: "empty sources entries", modify: func(c *Config) { c.Sources = map[string]string{"": "x", "nginx": ""} },
			want: []string{"sources: empty app name", "sources.nginx: empty normalizer name"}},
		{name: "bounds", modify: func(c *Config) {
			c.MaxMessageBytes, c.MaxConnections, c.QueueSize, c.BatchLines, c.BatchBytes, c.UDPReadBuffer = 0, 0, 0, 0, 0, -1
			c.IdleTimeout, c.ReadTimeout, c.FlushInterval, c.ShutdownTimeout = 0, -1, 0, 0
		}, want: []string{"max_message_bytes: must be in 1..", "max_connections: must be positive",
			"queue_size: must be positive", "batch_lines: must be positive", "batch_bytes: must be positive",
			"udp_read_buffer: must not be negative", "idle_timeout: must be positive",
			"read_timeout: must be positive", "flush_interval: must be positive", "shutdown_timeout: must be positive"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TCP, cfg.Source = "127.0.0.1:5514", "nginx"
			tc.modify(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, nerr := New(cfg, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}
