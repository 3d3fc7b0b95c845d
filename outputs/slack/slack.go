// Package slack pages people about alerts through Slack, with slack-go:
// either an incoming webhook or a bot token posting with chat.postMessage.
// An alert is rendered as a Block Kit message: a header with severity and
// rule title, the actor, source (country, AS), counts and times as fields,
// the rule description, optionally a link to the alert's events, and, when
// the interactivity endpoint is configured, Acknowledge / Silence buttons.
//
// Routes pick the channel per alert (first match wins) or drop it. With
// grouping on (the default) the notifier implements outputs.Grouper: alerts
// of one rule and group key share one page that is updated in place, with a
// thread reply per batch, and a new page after repeat_interval (group.go
// documents the exact rules). Without grouping, Notify posts one message
// per alert. The interactivity endpoint (interact.go) verifies Slack's
// request signatures and turns clicks into acknowledgements and silences.
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
	"sync/atomic"
	"text/template"
	"time"

	"github.com/slack-go/slack"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/internal/silence"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
	"github.com/trailwatch/trailwatch/outputs/route"
)

var (
	_ outputs.AlertNotifier = (*Notifier)(nil)
	_ outputs.Grouper       = (*Notifier)(nil)
)

// sentWindow is how many posted alert ids are remembered to skip resends.
const sentWindow = 10_000

// Option adjusts a Notifier.
type Option func(*Notifier)

// WithHTTPClient sets the HTTP client used for every request (proxies,
// custom TLS). Its Timeout, if any, applies on top of Config.Timeout.
func WithHTTPClient(c *http.Client) Option { return func(n *Notifier) { n.http = c } }

// WithSilences sets the silence store: groups it silences are not paged,
// and the Silence buttons write to it.
func WithSilences(s *silence.Store) Option { return func(n *Notifier) { n.silences = s } }

// WithEventsLink sets how the link to an alert's events is built when
// events_url_template is not set (a Kibana Discover view, from kibana.url).
func WithEventsLink(fn func(schema.Alert) string) Option {
	return func(n *Notifier) { n.eventsLinkFn = fn }
}

// withClock replaces time.Now (tests).
func withClock(now func() time.Time) Option { return func(n *Notifier) { n.now = now } }

// Stats counts what the notifier did since it started.
type Stats struct {
	// Pages are top-level messages posted (one per alert without grouping).
	Pages int64
	// Updates are pages updated in place; Replies are thread replies (or,
	// in webhook mode, follow-up messages).
	Updates, Replies int64
	// Dropped are alerts a drop route discarded; Silenced are pending
	// alerts a silence set during the group wait discarded.
	Dropped, Silenced int64
	// Acks and Silences count button clicks acted on.
	Acks, Silences int64
}

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
	// eventsLinkFn builds the events link when no template is set.
	eventsLinkFn func(schema.Alert) string

	signing  config.Secret
	silences *silence.Store
	stats    counters
	srv      *http.Server
	srvAddr  string

	mu           sync.Mutex
	blockedUntil time.Time // Slack's Retry-After: no request before this
	sent         map[string]struct{}
	sentOrder    []string

	gmu    sync.Mutex
	groups map[string]*group // by groupID
}

type counters struct {
	pages, updates, replies, dropped, silenced, acks, silences atomic.Int64
}

// Stats returns the counts so far.
func (n *Notifier) Stats() Stats {
	c := &n.stats
	return Stats{
		Pages: c.pages.Load(), Updates: c.updates.Load(), Replies: c.replies.Load(),
		Dropped: c.dropped.Load(), Silenced: c.silenced.Load(), Acks: c.acks.Load(), Silences: c.silences.Load(),
	}
}

// New validates cfg and resolves its secrets. It does not contact Slack.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Notifier, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	n := &Notifier{cfg: cfg, log: logger, http: &http.Client{}, now: time.Now, sent: map[string]struct{}{}, groups: map[string]*group{}}
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
	if n.signing, err = config.ResolveSecret("interactivity.signing_secret", cfg.Interactivity.SigningSecret, cfg.Interactivity.SigningSecretFile); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if !cfg.Interactivity.enabled() {
		n.signing = "" // no endpoint, no buttons
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

// Notify posts one message per alert, in order, to the channel its route
// picks, stopping at the first failure; it does not group. Alerts already
// posted by this notifier (same id) are skipped, so the caller may retry the
// whole batch. On error, retry tells whether retrying may succeed; a rate
// limit's error wraps *slack.RateLimitedError with the wait Slack asked for.
func (n *Notifier) Notify(ctx context.Context, alerts ...schema.Alert) (bool, error) {
	for i := range alerts {
		a := &alerts[i]
		if a.Event.ID != "" && n.wasSent(a.Event.ID) {
			continue
		}
		ch, drop := n.route(a)
		if drop {
			n.stats.dropped.Add(1)
			continue
		}
		v := alertView(a)
		v.buttons, v.silence = n.buttonsFor(silence.AlertKey(a)), n.silences != nil
		_, _, err := n.post(ctx, ch, "", n.render(a, v))
		if err != nil {
			retry, serr := n.classify(err)
			n.log.Warn("slack notify failed", "alert_id", a.Event.ID, "rule_id", a.Rule.ID, "retry", retry, "err", serr)
			return retry, serr
		}
		n.stats.pages.Add(1)
		if a.Event.ID != "" {
			n.markSent(a.Event.ID)
		}
	}
	return false, nil
}

// Close stops the interactivity listener, if started, and releases idle
// connections. It is idempotent.
func (n *Notifier) Close(ctx context.Context) error {
	var err error
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		err = srv.Shutdown(ctx)
	}
	n.http.CloseIdleConnections()
	return err
}

// route returns the channel for a (the first matching route's, else the
// default), or drop.
func (n *Notifier) route(a *schema.Alert) (channel string, drop bool) {
	ra := route.Alert{Severity: a.Trailwatch.Severity, Tags: a.Tags, Rule: a.Rule.ID, Routes: a.Trailwatch.Routes}
	for _, r := range n.cfg.Routes {
		if r.Match.Matches(ra) {
			return r.Channel, r.Drop
		}
	}
	return n.cfg.Channel, false
}

// post sends msg as a new message (threadTS "") or a thread reply, and
// returns the channel ID and ts Slack gave it (empty in webhook mode, where
// threadTS is ignored: an incoming webhook can neither thread nor update).
func (n *Notifier) post(ctx context.Context, channel, threadTS string, msg message) (string, string, error) {
	if err := n.waitAllowed(); err != nil {
		return "", "", err
	}
	// One request, one budget: a hung Slack cannot hold the alerts stage.
	ctx, cancel := context.WithTimeoutCause(ctx, n.cfg.Timeout, errors.New("slack request timed out"))
	defer cancel()
	if n.webhook.IsSet() {
		return "", "", slack.PostWebhookCustomHTTPContext(ctx, n.webhook.Value(), n.http, &slack.WebhookMessage{
			Text:   msg.text,
			Blocks: &slack.Blocks{BlockSet: msg.blocks},
		})
	}
	opts := []slack.MsgOption{slack.MsgOptionText(msg.text, false), slack.MsgOptionBlocks(msg.blocks...)}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	return n.api.PostMessageContext(ctx, channel, opts...)
}

// update replaces the message (channel, ts) with msg (bot mode only).
func (n *Notifier) update(ctx context.Context, channel, ts string, msg message) error {
	if err := n.waitAllowed(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, n.cfg.Timeout, errors.New("slack request timed out"))
	defer cancel()
	_, _, _, err := n.api.UpdateMessageContext(ctx, channel, ts, slack.MsgOptionText(msg.text, false), slack.MsgOptionBlocks(msg.blocks...))
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
		if until := n.now().Add(rl.RetryAfter); until.After(n.blockedUntil) {
			n.blockedUntil = until
		}
		n.mu.Unlock()
		if strings.HasPrefix(err.Error(), "slack: ") {
			return true, err // already ours (waitAllowed's local refusal)
		}
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
