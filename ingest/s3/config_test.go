package s3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := func() Config {
		cfg := DefaultConfig()
		cfg.Bucket, cfg.Source, cfg.CheckpointFile = "logs", "alb", filepath.Join(dir, "cp.json")
		return cfg
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{name: "defaults", modify: func(*Config) {}},
		{name: "static keys from a file", modify: func(c *Config) { c.AccessKeyID, c.SecretAccessKeyFile = "AKIA", secretFile }},
		{name: "missing", modify: func(c *Config) { c.Bucket, c.Source, c.CheckpointFile, c.Region = "", "", "", "" },
			want: []string{"bucket: required", "source: required", "checkpoint_file: required", "region: required"}},
		{name: "bad endpoint", modify: func(c *Config) { c.Endpoint = "127.0.0.1:9000" }, want: []string{"endpoint: want an http"}},
		{name: "endpoint with path", modify: func(c *Config) { c.Endpoint = "http://h:1/bucket" }, want: []string{"endpoint: must not have a path"}},
		{name: "half static keys", modify: func(c *Config) { c.AccessKeyID = "AKIA" }, want: []string{"access_key_id, secret_access_key: set both or neither"}},
		{name: "secret twice", modify: func(c *Config) { c.AccessKeyID, c.SecretAccessKey, c.SecretAccessKeyFile = "AKIA", "x", secretFile },
			want: []string{"secret_access_key: set either"}},
		{name: "bad mode", modify: func(c *Config) { c.Mode = "json" }, want: []string{`mode: must be "lines" or "object"`}},
		{name: "bad numbers", modify: func(c *Config) {
			c.PollInterval, c.BatchLines, c.BatchBytes, c.MaxLineBytes, c.MaxObjectBytes, c.Settle, c.RequestTimeout = 0, 0, -1, 0, -1, -1, 0
		}, want: []string{"poll_interval:", "batch_lines:", "batch_bytes:", "max_line_bytes:", "max_object_bytes:", "settle:", "request_timeout:"}},
		{name: "sqs", modify: func(c *Config) { c.SQSQueueURL = "https://sqs" }, want: []string{"sqs_queue_url: SQS notifications are not supported yet"}},
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

func TestMaxObjectBytesDefaults(t *testing.T) {
	cfg := DefaultConfig()
	if got := cfg.maxObjectBytes(); got != DefaultMaxObjectBytesLines {
		t.Errorf("lines: %d", got)
	}
	cfg.Mode = ModeObject
	if got := cfg.maxObjectBytes(); got != DefaultMaxObjectBytesObject {
		t.Errorf("object: %d", got)
	}
	cfg.MaxObjectBytes = 5
	if got := cfg.maxObjectBytes(); got != 5 {
		t.Errorf("explicit: %d", got)
	}
}

func TestReadLine(t *testing.T) {
	type line struct {
		text string
		n    int64
		cut  bool
	}
	tests := []struct {
		name  string
		input string
		max   int
		want  []line
	}{
		{name: "lf", input: "ab\ncd\n", max: 10, want: []line{{"ab", 3, false}, {"cd", 3, false}}},
		{name: "crlf", input: "ab\r\ncd\r\n", max: 10, want: []line{{"ab", 4, false}, {"cd", 4, false}}},
		{name: "unterminated", input: "ab\ncd", max: 10, want: []line{{"ab", 3, false}, {"cd", 2, false}}},
		{name: "exactly max with crlf", input: "abcd\r\n", max: 4, want: []line{{"abcd", 6, false}}},
		{name: "over max", input: "abcdef\nxy\n", max: 4, want: []line{{"abcd", 7, true}, {"xy", 3, false}}},
		{name: "longer than the buffer", input: strings.Repeat("a", 40) + "\r\n" + "b\n", max: 100, want: []line{{strings.Repeat("a", 40), 42, false}, {"b", 2, false}}},
		{name: "cr at a buffer edge", input: strings.Repeat("a", 15) + "\r\n", max: 100, want: []line{{strings.Repeat("a", 15), 17, false}}},
		{name: "empty line", input: "\n\r\n", max: 4, want: []line{{"", 1, false}, {"", 2, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.input), 16)
			var got []line
			for {
				l, n, cut, err := readLine(br, tt.max)
				if n > 0 {
					got = append(got, line{string(l), n, cut})
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("line %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestSecretNotLogged runs against a wrong secret and checks that neither
// the logs nor the errors carry the secret.
func TestSecretNotLogged(t *testing.T) {
	env := testS3(t)
	cl := testClient(t, env)
	bucket := newBucket(t, cl)
	var logs bytes.Buffer
	cfg := testConfig(env, bucket, t.TempDir())
	const secret = "wrong-secret-must-not-leak"
	cfg.SecretAccessKey = secret
	c, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	ctxDone := make(chan error, 1)
	ctx, cancel := contextWithCancel(t)
	go func() { ctxDone <- c.Run(ctx, s.emit) }()
	waitFor(t, "a failed listing", func() bool { return c.Stats().ListErrors >= 1 })
	cancel()
	if err := <-ctxDone; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "listing failed") {
		t.Fatalf("no listing failure logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("secret in logs: %s", logs.String())
	}
}
