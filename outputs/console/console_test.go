package console

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

func alert() schema.Alert {
	first := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	return schema.Alert{
		Event:  schema.EventMeta{ID: "a1b2c3"},
		Rule:   schema.Rule{ID: "auth-bruteforce", Name: "Brute force against login"},
		Source: schema.Endpoint{IP: "203.0.113.9"},
		Trailwatch: schema.AlertTrailwatch{
			Severity: "high", Count: 12, Window: "1m0s",
			FirstSeen: first, LastSeen: first.Add(50 * time.Second),
		},
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		name   string
		color  bool
		mutate func(*schema.Alert)
		want   string
	}{
		{
			name:   "plain",
			mutate: func(*schema.Alert) {},
			want:   `ALERT high auth-bruteforce "Brute force against login" source.ip=203.0.113.9 count=12 window=1m0s first=2024-05-01T10:00:00Z last=2024-05-01T10:00:50Z id=a1b2c3` + "\n",
		},
		{
			name:   "coloured severity",
			color:  true,
			mutate: func(*schema.Alert) {},
			want:   "ALERT \x1b[1;31mhigh\x1b[0m auth-bruteforce",
		},
		{
			name: "credential and user",
			mutate: func(a *schema.Alert) {
				a.Trailwatch.Credential.Fingerprint = "fp:9f2c"
				a.User.Name = "alice"
			},
			want: `"Brute force against login" trailwatch.credential.fingerprint=fp:9f2c user.name=alice source.ip=203.0.113.9`,
		},
		{
			name:   "hostile user name cannot forge a line or escape codes",
			mutate: func(a *schema.Alert) { a.User.Name = "bob\nALERT critical fake \x1b[2J" },
			want:   `user.name="bob\nALERT critical fake \x1b[2J"`,
		},
		{
			name:   "missing severity",
			mutate: func(a *schema.Alert) { a.Trailwatch.Severity = "" },
			want:   "ALERT unknown auth-bruteforce",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			n, err := New(Config{Color: tt.color}, nil, &out)
			if err != nil {
				t.Fatal(err)
			}
			a := alert()
			tt.mutate(&a)
			if retry, err := n.Notify(t.Context(), a); err != nil || retry {
				t.Fatalf("Notify = %v, %v", retry, err)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("got  %q\nwant %q", out.String(), tt.want)
			}
			if c := strings.Count(out.String(), "\n"); c != 1 {
				t.Errorf("%d lines, want 1", c)
			}
		})
	}
}

func TestNotifyManyOneWrite(t *testing.T) {
	var out bytes.Buffer
	n, _ := New(Config{}, nil, &out)
	if _, err := n.Notify(t.Context(), alert(), alert(), alert()); err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(out.String(), "\n"); c != 3 {
		t.Errorf("%d lines, want 3", c)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestNotifyWriteError(t *testing.T) {
	n, _ := New(Config{}, nil, failWriter{})
	retry, err := n.Notify(t.Context(), alert())
	if err == nil || retry {
		t.Fatalf("Notify = %v, %v; want a non-retryable error", retry, err)
	}
}

func BenchmarkNotify(b *testing.B) {
	var out bytes.Buffer
	n, _ := New(Config{}, nil, &out)
	a := alert()
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		_, _ = n.Notify(b.Context(), a)
	}
}
