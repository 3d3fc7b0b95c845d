package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Brokers  []string      `koanf:"brokers"`
	Timeout  time.Duration `koanf:"timeout"`
	Password Secret        `koanf:"password"`
}

type testCfg struct {
	DataDir string `koanf:"data_dir"`
	Kafka   inner  `koanf:"kafka"`
	Level   string `koanf:"level"`
}

func defaults() testCfg {
	return testCfg{DataDir: "./data", Level: "info", Kafka: inner{Timeout: 10 * time.Second}}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		environ   []string
		overrides map[string]any
		want      testCfg
	}{
		{
			name: "defaults only",
			want: defaults(),
		},
		{
			name: "file over defaults",
			file: "data_dir: /var/lib/tw\nkafka:\n  brokers: [a:9092, b:9092]\n  timeout: 3s\n",
			want: testCfg{DataDir: "/var/lib/tw", Level: "info", Kafka: inner{Brokers: []string{"a:9092", "b:9092"}, Timeout: 3 * time.Second}},
		},
		{
			name:    "env over file, __ nests, comma lists",
			file:    "data_dir: /var/lib/tw\n",
			environ: []string{"TRAILWATCH_DATA_DIR=/env", "TRAILWATCH_KAFKA__BROKERS=x:1,y:2", "TRAILWATCH_KAFKA__TIMEOUT=250ms", "OTHER=1"},
			want:    testCfg{DataDir: "/env", Level: "info", Kafka: inner{Brokers: []string{"x:1", "y:2"}, Timeout: 250 * time.Millisecond}},
		},
		{
			name:      "flags over env",
			environ:   []string{"TRAILWATCH_LEVEL=warn"},
			overrides: map[string]any{"level": "debug"},
			want:      testCfg{DataDir: "./data", Level: "debug", Kafka: inner{Timeout: 10 * time.Second}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Sources{Environ: tt.environ, Overrides: tt.overrides}
			if src.Environ == nil {
				src.Environ = []string{}
			}
			if tt.file != "" {
				src.File = writeFile(t, tt.file)
			}
			var got testCfg
			if err := Load(&got, defaults(), src); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"unknown key", "kafka:\n  brokerz: [a]\n", "kafka.brokerz"},
		{"bad duration", "kafka:\n  timeout: soon\n", "kafka.timeout"},
		{"bad yaml", "kafka: [\n", "c.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := defaults()
			before := got
			err := Load(&got, defaults(), Sources{File: writeFile(t, tt.file), Environ: []string{}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v does not name %q", err, tt.want)
			}
			if fmt.Sprint(got) != fmt.Sprint(before) {
				t.Errorf("destination changed on error: %+v", got)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	var got testCfg
	err := Load(&got, defaults(), Sources{File: "/nonexistent/trailwatch.yaml", Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/trailwatch.yaml") {
		t.Fatalf("error %v does not name the file", err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	const raw = "hunter2-canary"
	s := Secret(raw)
	var logBuf strings.Builder
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "password", s)
	js, _ := json.Marshal(struct{ P Secret }{s})
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%v %s %q %#v %+v", s, s, s, s, s),
		fmt.Sprintf("%v", inner{Password: s}), fmt.Sprintf("%+v", inner{Password: s}),
		string(js), logBuf.String(),
	}
	for _, o := range outs {
		if strings.Contains(o, raw) {
			t.Errorf("secret leaked in %q", o)
		}
	}
	if s.Value() != raw {
		t.Errorf("Value() = %q", s.Value())
	}
}

func TestResolveSecret(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := ResolveSecret("password", "", p); err != nil || s.Value() != "from-file" {
		t.Errorf("file: %q %v", s.Value(), err)
	}
	if s, err := ResolveSecret("password", "inline", ""); err != nil || s.Value() != "inline" {
		t.Errorf("inline: %q %v", s.Value(), err)
	}
	if _, err := ResolveSecret("password", "inline", p); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("both set: %v", err)
	}
	if _, err := ResolveSecret("password", "", "/nonexistent"); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestPrefix(t *testing.T) {
	err := Prefix("kafka", fmt.Errorf("a: required\nb: bad"))
	if got := err.Error(); got != "kafka.a: required\nkafka.b: bad" {
		t.Errorf("got %q", got)
	}
	if Prefix("x", nil) != nil {
		t.Error("nil error must stay nil")
	}
}

func TestFillDefaults(t *testing.T) {
	type sub struct {
		N int
		S string
	}
	type cfg struct {
		Name  string
		Count int
		List  []string
		Sub   sub
	}
	def := cfg{Name: "d", Count: 3, List: []string{"x"}, Sub: sub{N: 1, S: "s"}}
	got := cfg{Count: 7, Sub: sub{S: "mine"}}
	FillDefaults(&got, def)
	want := cfg{Name: "d", Count: 7, List: []string{"x"}, Sub: sub{N: 1, S: "mine"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
