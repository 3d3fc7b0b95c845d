package httpin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "defaults with a source", modify: func(c *Config) { c.Source = "nginx" }},
		{name: "routes", modify: func(c *Config) { c.Routes = []Route{{Path: "/kong", Source: "kong"}} }},
		{name: "nothing to route", modify: func(*Config) {}, want: []string{"source: required (or routes)"}},
		{
			name: "source and routes",
			modify: func(c *Config) {
				c.Source = "nginx"
				c.Routes = []Route{{Path: "/kong", Source: "kong"}}
			},
			want: []string{"source: set either source"},
		},
		{
			name: "bad routes",
			modify: func(c *Config) {
				c.Routes = []Route{{Path: "kong"}, {Path: "/a", Source: "x"}, {Path: "/a", Source: "x"}, {Path: "/healthz", Source: "x"}, {Source: "x"}}
			},
			want: []string{
				`routes[0].path: must start with "/"`, "routes[0].source: required", `routes[2].path: "/a" is listed twice`,
				"routes[3].path: /healthz is reserved", "routes[4].path: required",
			},
		},
		{
			name: "tls halves",
			modify: func(c *Config) {
				c.Source = "x"
				c.KeyFile = "k.pem"
				c.ClientCAFile = "ca.pem"
			},
			want: []string{"cert_file: set both", "client_ca_file: needs cert_file"},
		},
		{
			name: "limits and timeouts",
			modify: func(c *Config) {
				c.Source = "x"
				c.Name, c.Listen = "", ""
				c.Tokens = []config.Secret{""}
				c.MaxBodyBytes, c.MaxRecordBytes, c.MaxDepth, c.MaxInFlight, c.MaxRecords = 0, -1, 0, 0, 0
				c.AckTimeout, c.RetryAfter = 0, 0
				c.WriteTimeout = time.Second
				c.AckTimeout = 2 * time.Second
			},
			want: []string{
				"name: required", "listen: required", "tokens[0]: empty token", "max_body_bytes: must be positive",
				"max_record_bytes: must be positive", "max_records: must be positive", "max_depth: must be positive", "max_in_flight: must be positive",
				"retry_after: must be positive", "write_timeout: must exceed ack_timeout",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nothing\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"missing tokens file", func(c *Config) { c.TokensFile = filepath.Join(dir, "nope") }, "tokens_file:"},
		{"tokens file without tokens", func(c *Config) { c.TokensFile = empty }, "holds no token"},
		{"missing cert", func(c *Config) { c.CertFile, c.KeyFile = filepath.Join(dir, "c"), filepath.Join(dir, "k") }, "cert_file:"},
		{"invalid config", func(c *Config) { c.Source = "" }, "source: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Source = "nginx"
			tt.modify(&cfg)
			if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("secrets stay out of errors", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Tokens = []config.Secret{"hunter2-token"}
		cfg.MaxDepth = 0
		_, err := New(cfg, nil)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New: %v", err)
		}
	})
}
