package health

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; none means valid
	}{
		{name: "defaults", edit: func(*Config) {}},
		{name: "origin key", edit: func(c *Config) { c.SourceKey = KeyOrigin }},
		{
			name: "every problem at once",
			edit: func(c *Config) {
				c.CheckInterval = 0
				c.MinSilence = -time.Second
				c.SourceKey = "host"
				c.MinArrivals = 1
				c.SilenceFactor = 0.5
				c.MaxStreams = 0
				c.MaxLag = -1
				c.LagFor = 0
				c.LagPollInterval = 0
				c.RuleSilence = 0
				c.ForgetAfter = 0
			},
			want: []string{
				"check_interval: must be positive", "min_silence: must be positive",
				`source_key: "host" is not "collector" or "origin"`, "min_arrivals: must be at least 2",
				"silence_factor: must be at least 1", "max_streams: must be positive",
				"max_lag: must not be negative", "lag_for: must be positive",
				"lag_poll_interval: must be positive", "rule_silence: must be positive",
				"forget_after: must be positive",
			},
		},
		{
			name: "map entries name their key",
			edit: func(c *Config) {
				c.SourceMinSilence = map[string]time.Duration{"s3-cloudtrail": 0}
				c.ExpectMatches = map[string]time.Duration{"canary-healthcheck": -time.Minute}
			},
			want: []string{"source_min_silence.s3-cloudtrail: must be positive", "expect_matches.canary-healthcheck: must be positive"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, nerr := New(cfg, nil); nerr == nil || !strings.HasPrefix(nerr.Error(), "health: ") {
				t.Errorf("New error = %v, want the validation error prefixed with health:", nerr)
			}
		})
	}
}
