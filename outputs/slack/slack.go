// Package slack pages people about alerts through Slack, with slack-go:
// either an incoming webhook or a bot token posting with chat.postMessage.
// Each alert becomes one Block Kit message: a header with severity and rule
// title, the actor, counts and times as fields, the rule description, and
// optionally a link to the alert's events.
//
// Retries are the caller's: Notify reports whether one may succeed (429 —
// after the Retry-After Slack asked for, which the notifier also enforces by
// refusing to send before it passes —, 5xx, network failures and timeouts)
// or not (invalid token, unknown channel, a revoked webhook). Within one
// process the notifier remembers the ids of the last alerts it posted, so
// retrying a partly sent batch does not post an alert twice; it deliberately
// keeps nothing across restarts. Webhook URLs and tokens are secrets: they
// never appear in returned errors or logs.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/slack-go/slack"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// sentWindow is how many posted alert ids are remembered to skip resends.
const sentWindow = 10_000

// Option adjusts a Notifier.
type Option func(*Notifier)

// WithHTTPClient sets the HTTP client used for every request (proxies,
// custom TLS). Its Timeout, if any, applies on top of Config.Timeout.
func WithHTTPClient(c *http.Client) Option { return func(n *Notifier) { n.http = c } }

// withClock replaces time.Now (tests).
func withClock(now func() time.Time) Option { return func(n *Notifier) { n.now = now } }

// Notifier posts alerts to Slack. It implements outputs.AlertNotifier and is
// safe for concurrent use.
type Notifier struct {
	cfg       Config
	log       *slog.Logger
	http      *http.Client
	now       func() time.Time
	webhook   config.Secret
	token     config.Secret
	api       *slack.Client
	eventsURL *template.Template

	mu           sync.Mutex
	blockedUntil time.Time // Slack's Retry-After: no request before this
	sent         map[string]struct{}
	sentOrder    []string
}

var _ outputs.AlertNotifier = (*Notifier)(nil)

// New validates cfg and resolves its secrets. It does not contact Slack.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Notifier, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	n := &Notifier{cfg: cfg, log: logger, http: &http.Client{}, now: time.Now, sent: map[string]struct{}{}}
	for _, o := range opts {
		o(n)
	}
	var err error
	if n.webhook, err = config.ResolveSecret("webhook_url", cfg.WebhookURL, cfg.WebhookURLFile); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if n.token, err = config.ResolveSecret("token", cfg.Token, cfg.TokenFile); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if n.webhook.IsSet() == n.token.IsSet() {
		return nil, errors.New("slack: webhook_url: exactly one of webhook_url or token must resolve to a value")
	}
	if cfg.EventsURLTemplate != "" {
		n.eventsURL = template.Must(template.New("events_url_template").Option("missingkey=error").Parse(cfg.EventsURLTemplate))
	}
	if n.token.IsSet() {
		n.api = slack.New(n.token.Value(), slack.OptionHTTPClient(n.http), slack.OptionAPIURL(cfg.APIURL))
	}
	return n, nil
}

// Notify posts one message per alert, in order, stopping at the first
// failure. Alerts already posted by this notifier (same id) are skipped, so
// the caller may retry the whole batch. On error, retry tells whether
// retrying may succeed; a rate limit's error wraps *slack.RateLimitedError
// with the wait Slack asked for.
func (n *Notifier) Notify(ctx context.Context, alerts ...schema.Alert) (bool, error) {
	for i := range alerts {
		a := &alerts[i]
		if a.Event.ID != "" && n.wasSent(a.Event.ID) {
			continue
		}
		if err := n.waitAllowed(); err != nil {
			return true, err
		}
		msg := n.message(a)
		err := n.send(ctx, msg)
		if err != nil {
			retry, serr := n.classify(err)
			n.log.Warn("slack notify failed", "alert_id", a.Event.ID, "rule_id", a.Rule.ID, "retry", retry, "err", serr)
			return retry, serr
		}
		if a.Event.ID != "" {
			n.markSent(a.Event.ID)
		}
	}
	return false, nil
}

// Close does nothing: the notifier holds no connections of its own beyond
// the HTTP client's idle pool. It is idempotent.
func (n *Notifier) Close(context.Context) error {
	n.http.CloseIdleConnections()
	return nil
}

func (n *Notifier) send(ctx context.Context, msg message) error {
	// One request, one budget: a hung Slack cannot hold the alerts stage.
	ctx, cancel := context.WithTimeoutCause(ctx, n.cfg.Timeout, errors.New("slack request timed out"))
	defer cancel()
	if n.webhook.IsSet() {
		return slack.PostWebhookCustomHTTPContext(ctx, n.webhook.Value(), n.http, &slack.WebhookMessage{
			Text:   msg.text,
			Blocks: &slack.Blocks{BlockSet: msg.blocks},
		})
	}
	_, _, err := n.api.PostMessageContext(ctx, n.cfg.Channel,
		slack.MsgOptionText(msg.text, false),
		slack.MsgOptionBlocks(msg.blocks...),
	)
	return err
}

// waitAllowed refuses to send while Slack's Retry-After has not passed.
func (n *Notifier) waitAllowed() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if wait := n.blockedUntil.Sub(n.now()); wait > 0 {
		return fmt.Errorf("slack: not sending during Retry-After: %w", &slack.RateLimitedError{RetryAfter: wait})
	}
	return nil
}

func (n *Notifier) wasSent(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.sent[id]
	return ok
}

func (n *Notifier) markSent(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.sentOrder) >= sentWindow {
		delete(n.sent, n.sentOrder[0])
		n.sentOrder = n.sentOrder[1:]
	}
	n.sent[id] = struct{}{}
	n.sentOrder = append(n.sentOrder, id)
}

// classify is the one retry classifier for Slack, by HTTP status first
// (alertmanager's notify.Retrier): 429 and 5xx retry, other statuses and
// API errors (invalid_auth, channel_not_found) do not; network failures and
// timeouts retry. The returned error is redacted.
func (n *Notifier) classify(err error) (bool, error) {
	var (
		rl  *slack.RateLimitedError
		sce slack.StatusCodeError
		api slack.SlackErrorResponse
	)
	retry := false
	switch {
	case errors.As(err, &rl):
		n.mu.Lock()
		n.blockedUntil = n.now().Add(rl.RetryAfter)
		n.mu.Unlock()
		return true, fmt.Errorf("slack: %w", rl) // carries no URL
	case errors.As(err, &sce):
		retry = sce.Retryable()
	case errors.As(err, &api):
		switch api.Err {
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited":
			retry = true
		}
	default:
		// Transport failures, timeouts, cancellation: the message may not
		// have reached Slack, so a retry may succeed.
		retry = !isPermanentLocal(err)
	}
	return retry, &redactedError{msg: "slack: " + n.redact(err.Error()), retry: retry}
}

// isPermanentLocal reports errors raised before any request was made that
// no retry fixes (a message that does not marshal).
func isPermanentLocal(err error) bool {
	return strings.Contains(err.Error(), "marshal failed")
}

// redact removes the webhook URL (whole, or its secret path) and the token
// from s.
func (n *Notifier) redact(s string) string {
	for _, secret := range n.secretForms() {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<secret>")
		}
	}
	return s
}

func (n *Notifier) secretForms() []string {
	forms := []string{n.token.Value()}
	if u := n.webhook.Value(); u != "" {
		forms = append(forms, u)
		// The path alone (…/services/T…/B…/XXXX) is what carries the secret.
		if i := strings.Index(u, "://"); i >= 0 {
			if j := strings.Index(u[i+3:], "/"); j >= 0 && len(u[i+3+j:]) > 1 {
				forms = append(forms, u[i+3+j:])
			}
		}
	}
	return forms
}

// redactedError is a Slack failure whose text has had secrets removed. It
// deliberately does not unwrap to the original error, whose text (a
// *url.Error) holds the webhook URL.
type redactedError struct {
	msg   string
	retry bool
}

func (e *redactedError) Error() string { return e.msg }

// Retryable reports whether a retry may succeed.
func (e *redactedError) Retryable() bool { return e.retry }
