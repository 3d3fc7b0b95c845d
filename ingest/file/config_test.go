package file

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		cfg := DefaultConfig()
		cfg.Paths = []string{"/var/log/nginx/access.log"}
		cfg.Source = "nginx"
		cfg.CheckpointFile = "/data/checkpoints/file-file.json"
		return cfg
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "valid", modify: func(*Config) {}},
		{name: "missing required", modify: func(c *Config) { c.Paths, c.Source, c.CheckpointFile, c.Name = nil, "", "", "" },
			want: []string{"paths: required", "source: required", "checkpoint_file: required", "name: required"}},
		{name: "bad patterns", modify: func(c *Config) { c.Paths = []string{"/a/[", ""}; c.Exclude = []string{"["} },
			want: []string{"paths[0]:", "paths[1]: empty pattern", "exclude[0]: invalid pattern"}},
		{name: "start_at", modify: func(c *Config) { c.StartAt = "middle" }, want: []string{`start_at: must be "beginning" or "end"`}},
		{name: "non-positive sizes", modify: func(c *Config) {
			c.PollInterval, c.BatchLines, c.BatchBytes, c.MaxLineBytes, c.MaxGzipBytes = 0, 0, -1, 0, 0
		},
			want: []string{"poll_interval: must be positive", "batch_lines: must be positive", "batch_bytes: must be positive", "max_line_bytes: must be positive", "max_gzip_bytes: must be positive"}},
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
				t.Fatal("Validate = nil, want errors")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, nerr := New(cfg, nil); nerr == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}

func TestNewDefaultsHost(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Paths, cfg.Source, cfg.CheckpointFile = []string{"x.log"}, "nginx", "cp.json"
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Host == "" {
		t.Error("host not defaulted")
	}
	if !strings.HasPrefix(c.patterns[0], "/") {
		t.Errorf("pattern %q not made absolute", c.patterns[0])
	}
}
