// Package console prints alerts as one human-readable line each, for the
// embedded default (`trailwatch run` with no Slack configured) and for
// operators tailing a terminal.
//
// Values taken from logs (user names, paths) are attacker-controlled, so
// every value that is not a plain token is quoted with Go escaping: a
// crafted user name cannot forge a second line or terminal escapes. The
// package deliberately does not dedupe or remember what it printed; a
// re-delivered alert prints again. Printing is best effort: a failed write
// is reported as not retryable.
package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// Config configures the console notifier.
type Config struct {
	// Color wraps the severity in ANSI colours. Default false; enable it
	// only when the output is a terminal.
	Color bool `koanf:"color"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{} }

// Validate reports problems; the console config has none possible.
func (c Config) Validate() error { return nil }

// Notifier prints alerts to an io.Writer. It implements
// outputs.AlertNotifier and is safe for concurrent use.
type Notifier struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
	w   io.Writer
}

var _ outputs.AlertNotifier = (*Notifier)(nil)

// New returns a notifier writing to w (os.Stdout when nil).
func New(cfg Config, logger *slog.Logger, w io.Writer) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if w == nil {
		w = os.Stdout
	}
	return &Notifier{cfg: cfg, log: logger, w: w}, nil
}

// Notify prints one line per alert with a single write, so lines from
// concurrent calls never interleave.
func (n *Notifier) Notify(_ context.Context, alerts ...schema.Alert) (bool, error) {
	var buf bytes.Buffer
	for i := range alerts {
		n.format(&buf, &alerts[i])
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := n.w.Write(buf.Bytes()); err != nil {
		return false, fmt.Errorf("console: write: %w", err)
	}
	return false, nil
}

// Close does nothing: the writer belongs to the caller.
func (n *Notifier) Close(context.Context) error { return nil }

var colors = map[string]string{
	"critical": "\x1b[1;35m",
	"high":     "\x1b[1;31m",
	"medium":   "\x1b[33m",
	"low":      "\x1b[36m",
}

// format writes: ALERT <severity> <rule id> "<title>" key=value... id=<id>.
func (n *Notifier) format(b *bytes.Buffer, a *schema.Alert) {
	sev := a.Trailwatch.Severity
	if sev == "" {
		sev = "unknown"
	}
	b.WriteString("ALERT ")
	if c, ok := colors[sev]; ok && n.cfg.Color {
		b.WriteString(c + token(sev) + "\x1b[0m")
	} else {
		b.WriteString(token(sev))
	}
	b.WriteByte(' ')
	b.WriteString(token(a.Rule.ID))
	b.WriteByte(' ')
	b.WriteString(strconv.Quote(a.Rule.Name))
	kv := func(k, v string) {
		if v != "" {
			b.WriteString(" " + k + "=" + token(v))
		}
	}
	kv("trailwatch.credential.fingerprint", a.Trailwatch.Credential.Fingerprint)
	kv("user.name", a.User.Name)
	kv("source.ip", a.Source.IP)
	kv("count", strconv.FormatInt(a.Trailwatch.Count, 10))
	kv("window", a.Trailwatch.Window)
	kv("first", timeString(a.Trailwatch.FirstSeen))
	kv("last", timeString(a.Trailwatch.LastSeen))
	kv("id", a.Event.ID)
	b.WriteByte('\n')
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// token returns s as is when it is a plain token (printable ASCII without
// spaces, quotes or '='), else Go-quoted.
func token(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '=' || c == '\\' {
			return strconv.Quote(s)
		}
	}
	return s
}
