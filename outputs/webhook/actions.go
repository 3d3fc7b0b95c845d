package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// Audit outcomes.
const (
	OutcomeAttempted = "attempted" // written before the call
	OutcomeDryRun    = "dry-run"   // rendered, not called
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeRefused   = "refused" // host not allowlisted, or the URL did not render
)

// AuditRecord is one line of the audit file.
type AuditRecord struct {
	Time    time.Time `json:"@timestamp"`
	Action  string    `json:"action"`
	Outcome string    `json:"outcome"`
	AlertID string    `json:"alert_id"`
	RuleID  string    `json:"rule_id"`
	Method  string    `json:"method"`
	// URL is the rendered URL with any query string removed (a query may
	// carry a token).
	URL    string `json:"url,omitempty"`
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

type compiledAction struct {
	Action
	url, body *template.Template
	token     config.Secret
}

// Actions runs response actions for the alerts that trigger them. It
// implements outputs.AlertNotifier (register it with IgnoreSilences: a
// silence stops paging, not remediation) and is safe for concurrent use.
type Actions struct {
	cfg     ActionsConfig
	log     *slog.Logger
	http    *http.Client
	now     func() time.Time
	actions []compiledAction
	done    sentSet // alert id + "/" + action name, succeeded or dry-run

	mu    sync.Mutex
	audit *os.File
}

var _ outputs.AlertNotifier = (*Actions)(nil)

// NewActions validates cfg and resolves its secrets. It opens nothing: the
// audit file is opened on the first action.
func NewActions(cfg ActionsConfig, logger *slog.Logger, opts ...Option) (*Actions, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("actions: %w", err)
	}
	if cfg.AuditFile == "" && len(cfg.Actions) > 0 {
		return nil, fmt.Errorf("actions: audit_file: required")
	}
	o := options{http: &http.Client{
		// An action follows no redirect: the allowlist vets one host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for _, f := range opts {
		f(&o)
	}
	a := &Actions{cfg: cfg, log: logger, http: o.http, now: time.Now}
	for _, ac := range cfg.Actions {
		c := compiledAction{Action: ac}
		c.Method = strings.ToUpper(ac.Method)
		if c.Method == "" {
			c.Method = http.MethodPost
		}
		c.url, _ = parseTemplate("url", ac.URL) // parsed by Validate
		if ac.Body != "" {
			c.body, _ = parseTemplate("body", ac.Body)
		}
		var err error
		if c.token, err = config.ResolveSecret("token", ac.Token, ac.TokenFile); err != nil {
			return nil, fmt.Errorf("actions: %s: %w", ac.Name, err)
		}
		a.actions = append(a.actions, c)
	}
	return a, nil
}

// Notify runs, for each alert, every action it triggers (the rule routes
// to the action's name, or the action's match selects the alert). Every
// attempt and outcome is audited before Notify returns; an action whose
// audit line cannot be written is not called (retryable). A refused host,
// a URL that does not render and a 4xx answer are permanent; 429, 5xx and
// network failures are retryable, and actions that already succeeded (or
// were dry-run) for the alert are not run again on the retry.
func (x *Actions) Notify(ctx context.Context, alerts ...schema.Alert) (bool, error) {
	for i := range alerts {
		a := &alerts[i]
		ra := routeAlert(a)
		for _, ac := range x.actions {
			named := slices.Contains(a.Trailwatch.Routes, ac.Name)
			if !named && (ac.Match.IsEmpty() || !ac.Match.Matches(ra)) {
				continue
			}
			key := a.Event.ID + "/" + ac.Name
			if x.done.has(key) {
				continue
			}
			retry, err := x.run(ctx, &ac, a)
			if err != nil {
				return retry, fmt.Errorf("action %s: %w", ac.Name, err)
			}
			x.done.add(key)
		}
	}
	return false, nil
}

// run renders, checks, audits and (unless dry-run) calls one action.
func (x *Actions) run(ctx context.Context, ac *compiledAction, a *schema.Alert) (bool, error) {
	rec := AuditRecord{Action: ac.Name, AlertID: a.Event.ID, RuleID: a.Rule.ID, Method: ac.Method}
	var ub bytes.Buffer
	if err := ac.url.Execute(&ub, a); err != nil {
		rec.Outcome, rec.Error = OutcomeRefused, "url template: "+err.Error()
		return x.finish(rec, false)
	}
	u, err := url.Parse(strings.TrimSpace(ub.String()))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		rec.Outcome, rec.Error = OutcomeRefused, "rendered url is not an absolute http(s) URL"
		return x.finish(rec, false)
	}
	rec.URL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	if !slices.ContainsFunc(x.cfg.AllowedHosts, func(h string) bool {
		return strings.EqualFold(h, hostOf(u)) || strings.EqualFold(h, u.Hostname()) && u.Port() == ""
	}) {
		rec.Outcome, rec.Error = OutcomeRefused, fmt.Sprintf("host %q is not in allowed_hosts", u.Host)
		return x.finish(rec, false)
	}
	var body []byte
	if ac.body != nil {
		var bb bytes.Buffer
		if err := ac.body.Execute(&bb, a); err != nil {
			rec.Outcome, rec.Error = OutcomeRefused, "body template: "+err.Error()
			return x.finish(rec, false)
		}
		body = bb.Bytes()
	}
	if x.cfg.DryRun {
		rec.Outcome = OutcomeDryRun
		return x.finish(rec, false)
	}
	rec.Outcome = OutcomeAttempted
	if err := x.write(rec); err != nil {
		return true, err // never act unaudited
	}
	status, err := do(ctx, x.http, x.cfg.Timeout, ac.Method, u.String(), body, func(h http.Header) {
		if body != nil {
			h.Set("Content-Type", "application/json")
		}
		h.Set("X-Trailwatch-Alert-Id", a.Event.ID)
		for k, v := range ac.Headers {
			h.Set(k, v)
		}
		if ac.token.IsSet() {
			h.Set("Authorization", "Bearer "+ac.token.Value())
		}
	})
	rec.Status = status
	if err != nil || status >= 300 {
		retry, reason := classify(status, err)
		rec.Outcome, rec.Error = OutcomeFailed, reason
		if _, werr := x.finish(rec, retry); werr != nil {
			return true, werr
		}
		return retry, fmt.Errorf("%s", reason)
	}
	rec.Outcome = OutcomeSucceeded
	return x.finish(rec, false)
}

// finish audits rec; a refused action is a permanent error.
func (x *Actions) finish(rec AuditRecord, retry bool) (bool, error) {
	if err := x.write(rec); err != nil {
		return true, err
	}
	x.log.Info("response action", "action", rec.Action, "outcome", rec.Outcome, "alert_id", rec.AlertID, "url", rec.URL, "status", rec.Status, "error", rec.Error)
	if rec.Outcome == OutcomeRefused {
		return false, fmt.Errorf("refused: %s", rec.Error)
	}
	return retry, nil
}

// write appends rec to the audit file and syncs it.
func (x *Actions) write(rec AuditRecord) error {
	rec.Time = x.now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.audit == nil {
		if err := os.MkdirAll(filepath.Dir(x.cfg.AuditFile), 0o750); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		f, err := os.OpenFile(x.cfg.AuditFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		x.audit = f
	}
	if _, err := x.audit.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := x.audit.Sync(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Close closes the audit file. It is idempotent.
func (x *Actions) Close(context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.http.CloseIdleConnections()
	if x.audit == nil {
		return nil
	}
	err := x.audit.Close()
	x.audit = nil
	return err
}
