// Package webhook holds two HTTP outputs for alerts. Notifier POSTs each
// alert, rendered by a JSON template and signed with HMAC-SHA256, to a
// configured URL (a generic webhook). Actions runs response actions: the
// templated HTTP calls a rule's alerts trigger, such as revoking a
// credential or blocking an address, only towards allowlisted hosts,
// dry-run by default, with an audit line for every attempt and outcome.
//
// Neither retries on its own: Notify reports whether a retry may succeed
// (429, 5xx, network failures and timeouts) or not (other 4xx, a body that
// is not JSON or too large, a refused host), and the notify stage retries
// or dead-letters. Within one process each remembers what succeeded, so a
// retried batch does not call twice; across restarts the stage's sent
// markers do that. URLs and secrets never appear in errors or logs.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
	"github.com/trailwatch/trailwatch/outputs/route"
)

// funcs are the template functions: json encodes any value as JSON (a
// quoted, escaped string for a string), pathescape and urlquery escape for
// URLs.
var funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"pathescape": url.PathEscape,
	"urlquery":   url.QueryEscape,
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
}

// Option adjusts a Notifier or Actions.
type Option func(*options)

type options struct{ http *http.Client }

// WithHTTPClient sets the HTTP client (proxies, custom TLS).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.http = c } }

// Notifier POSTs alerts to one webhook. It implements
// outputs.AlertNotifier and is safe for concurrent use.
type Notifier struct {
	cfg    Config
	log    *slog.Logger
	http   *http.Client
	url    config.Secret
	secret config.Secret
	tmpl   *template.Template
	sent   sentSet
}

var _ outputs.AlertNotifier = (*Notifier)(nil)

// New validates cfg and resolves its secrets. It does not dial.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Notifier, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook: %w", err)
	}
	o := options{http: &http.Client{}}
	for _, f := range opts {
		f(&o)
	}
	n := &Notifier{cfg: cfg, log: logger, http: o.http}
	var err error
	if n.url, err = config.ResolveSecret("url", cfg.URL, cfg.URLFile); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", cfg.Name, err)
	}
	if n.secret, err = config.ResolveSecret("secret", cfg.Secret, cfg.SecretFile); err != nil {
		return nil, fmt.Errorf("webhook %s: %w", cfg.Name, err)
	}
	if cfg.Template != "" {
		n.tmpl, _ = parseTemplate("template", cfg.Template) // parsed by Validate
	}
	return n, nil
}

// Notify POSTs each alert the match selects, in order, stopping at the
// first failure; alerts already delivered by this notifier are skipped, so
// the caller may retry the whole batch.
func (n *Notifier) Notify(ctx context.Context, alerts ...schema.Alert) (bool, error) {
	for i := range alerts {
		a := &alerts[i]
		if !n.cfg.Match.Matches(routeAlert(a)) || n.sent.has(a.Event.ID) {
			continue
		}
		body, err := n.body(a)
		if err != nil {
			return false, fmt.Errorf("webhook %s: %w", n.cfg.Name, err)
		}
		status, err := do(ctx, n.http, n.cfg.Timeout, http.MethodPost, n.url.Value(), body, func(h http.Header) {
			h.Set("Content-Type", "application/json")
			h.Set("X-Trailwatch-Alert-Id", a.Event.ID)
			for k, v := range n.cfg.Headers {
				h.Set(k, v)
			}
			if n.secret.IsSet() {
				h.Set(n.cfg.SignatureHeader, Sign(n.secret.Value(), body))
			}
		})
		if err != nil || status >= 300 {
			retry, reason := classify(status, err)
			n.log.Warn("webhook failed", "webhook", n.cfg.Name, "alert_id", a.Event.ID, "retry", retry, "reason", reason)
			return retry, fmt.Errorf("webhook %s: %s", n.cfg.Name, reason)
		}
		n.sent.add(a.Event.ID)
	}
	return false, nil
}

// Close releases idle connections. It is idempotent.
func (n *Notifier) Close(context.Context) error {
	n.http.CloseIdleConnections()
	return nil
}

// body renders the alert and checks it is JSON within the size bound.
func (n *Notifier) body(a *schema.Alert) ([]byte, error) {
	var b []byte
	if n.tmpl == nil {
		var err error
		if b, err = json.Marshal(a); err != nil {
			return nil, err
		}
	} else {
		var buf bytes.Buffer
		if err := n.tmpl.Execute(&buf, a); err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		b = buf.Bytes()
		if !json.Valid(b) {
			return nil, errors.New("template: output is not JSON (use the json function for values)")
		}
	}
	if len(b) > n.cfg.MaxBodyBytes {
		return nil, fmt.Errorf("body of %d bytes exceeds max_body_bytes %d", len(b), n.cfg.MaxBodyBytes)
	}
	return b, nil
}

// Sign returns the signature header value for body: "sha256=" and the
// hex HMAC-SHA256 of body keyed by secret. Receivers recompute it and
// compare with hmac.Equal.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// do sends one request within timeout and returns the status; the
// response body is drained (bounded) and closed. Errors never carry the
// URL, which may hold a token.
func do(ctx context.Context, c *http.Client, timeout time.Duration, method, u string, body []byte, headers func(http.Header)) (int, error) {
	// One request, one budget: a hung receiver cannot hold the stage.
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errors.New("request timed out"))
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, errBadURL
	}
	headers(req.Header)
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, errors.New("request timed out or was cancelled")
		}
		return 0, errors.New("request failed (connection)")
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// errBadURL is a URL that does not parse; permanent.
var errBadURL = errors.New("bad url")

// classify is the one retry classifier for HTTP outputs: network failures,
// timeouts, 408, 429 and 5xx may succeed later; other statuses will not.
func classify(status int, err error) (bool, string) {
	if errors.Is(err, errBadURL) {
		return false, err.Error()
	}
	if err != nil {
		return true, err.Error()
	}
	reason := fmt.Sprintf("HTTP %d", status)
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return true, reason
	}
	return false, reason
}

func routeAlert(a *schema.Alert) route.Alert {
	return route.Alert{Severity: a.Trailwatch.Severity, Tags: a.Tags, Rule: a.Rule.ID, Routes: a.Trailwatch.Routes}
}

// sentWindow bounds the ids remembered to skip resends within a process.
const sentWindow = 10_000

// sentSet remembers the last sentWindow keys.
type sentSet struct {
	mu    sync.Mutex
	m     map[string]struct{}
	order []string
}

func (s *sentSet) has(k string) bool {
	if k == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[k]
	return ok
}

func (s *sentSet) add(k string) {
	if k == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]struct{}{}
	}
	if len(s.order) >= sentWindow {
		delete(s.m, s.order[0])
		s.order = s.order[1:]
	}
	s.m[k] = struct{}{}
	s.order = append(s.order, k)
}

// hostOf returns the URL's host for the allowlist, lower-cased.
func hostOf(u *url.URL) string { return strings.ToLower(u.Host) }
