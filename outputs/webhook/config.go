package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/outputs/route"
)

// Defaults shared by webhooks and actions.
const (
	defaultTimeout   = 10 * time.Second
	defaultMaxBody   = 1 << 20
	defaultSigHeader = "X-Trailwatch-Signature"
)

// Config is one webhook output: every alert its match selects is POSTed as
// JSON to URL.
type Config struct {
	// Name identifies the webhook in logs, metrics and sent markers.
	Name string `koanf:"name"`
	// URL receives the POST. It is a secret (it may carry a token);
	// URLFile reads it from a file instead.
	URL     config.Secret `koanf:"url"`
	URLFile string        `koanf:"url_file"`
	// Secret keys the HMAC-SHA256 signature of the body, sent as
	// "sha256=<hex>" in SignatureHeader; SecretFile reads it from a file.
	// Unset: the body is not signed.
	Secret     config.Secret `koanf:"secret"`
	SecretFile string        `koanf:"secret_file"`
	// SignatureHeader names the signature header. Default
	// "X-Trailwatch-Signature".
	SignatureHeader string `koanf:"signature_header"`
	// Template renders the body: a Go text/template over the schema.Alert
	// whose output must be JSON; use the json function for every value
	// ({{ json .Rule.ID }}). Empty: the alert document itself.
	Template string `koanf:"template"`
	// Headers are extra request headers (static values).
	Headers map[string]string `koanf:"headers"`
	// Match selects the alerts sent; empty sends every alert.
	Match route.Match `koanf:"match"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `koanf:"timeout"`
	// MaxBodyBytes bounds the rendered body; a larger one is refused (not
	// retried). Default 1 MiB.
	MaxBodyBytes int `koanf:"max_body_bytes"`
}

func (c Config) withDefaults() Config {
	if c.SignatureHeader == "" {
		c.SignatureHeader = defaultSigHeader
	}
	if c.Timeout == 0 {
		c.Timeout = defaultTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = defaultMaxBody
	}
	return c
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: required"))
	}
	switch {
	case c.URL.IsSet() && c.URLFile != "":
		errs = append(errs, errors.New("url: set either url or url_file, not both"))
	case !c.URL.IsSet() && c.URLFile == "":
		errs = append(errs, errors.New("url: required"))
	case c.URL.IsSet() && !isHTTP(c.URL.Value()):
		errs = append(errs, errors.New("url: must be an http(s) URL")) // the value is never echoed
	}
	if c.Secret.IsSet() && c.SecretFile != "" {
		errs = append(errs, errors.New("secret: set either secret or secret_file, not both"))
	}
	if c.Template != "" {
		if _, err := parseTemplate("template", c.Template); err != nil {
			errs = append(errs, fmt.Errorf("template: %w", err))
		}
	}
	if err := c.Match.Validate(); err != nil {
		errs = append(errs, config.Prefix("match", err))
	}
	if c.Timeout < 0 || c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("timeout, max_body_bytes: must not be negative"))
	}
	return errors.Join(errs...)
}

// ActionsConfig configures response actions: templated HTTP calls a rule's
// alerts trigger (revoke a credential, block an address).
type ActionsConfig struct {
	// DryRun renders and audits each action without calling it. Default
	// true: actions run only once an operator turned this off.
	DryRun bool `koanf:"dry_run"`
	// AllowedHosts lists the hosts (host or host:port, exact) an action
	// may call; a rendered URL whose host is not listed is refused and
	// audited. Required when any action is configured.
	AllowedHosts []string `koanf:"allowed_hosts"`
	// AuditFile receives one JSON line per attempt and outcome. Default
	// <data_dir>/actions-audit.ndjson.
	AuditFile string `koanf:"audit_file"`
	// Timeout bounds one call. Default 10s.
	Timeout time.Duration `koanf:"timeout"`
	// Actions are the calls.
	Actions []Action `koanf:"actions"`
}

// DefaultActionsConfig returns the defaults documented on ActionsConfig.
func DefaultActionsConfig() ActionsConfig {
	return ActionsConfig{DryRun: true, Timeout: defaultTimeout}
}

// Action is one templated HTTP call.
type Action struct {
	// Name identifies the action; a rule whose routing lists this name
	// triggers it.
	Name string `koanf:"name"`
	// Match also triggers it (rule ids, severities, tags, routes). An
	// action with an empty match runs only for rules routing to its name.
	Match route.Match `koanf:"match"`
	// Method is the HTTP method. Default POST.
	Method string `koanf:"method"`
	// URL is a text/template over the schema.Alert; use pathescape or
	// urlquery on values ({{ .Trailwatch.Credential.ID | pathescape }}).
	URL string `koanf:"url"`
	// Body is an optional text/template of the request body (JSON; use the
	// json function for values).
	Body string `koanf:"body"`
	// Headers are extra request headers (static).
	Headers map[string]string `koanf:"headers"`
	// Token, when set, is sent as "Authorization: Bearer <token>";
	// TokenFile reads it from a file.
	Token     config.Secret `koanf:"token"`
	TokenFile string        `koanf:"token_file"`
}

// Validate reports every problem, each naming its key.
func (c ActionsConfig) Validate() error {
	var errs []error
	if len(c.Actions) > 0 && len(c.AllowedHosts) == 0 {
		errs = append(errs, errors.New("allowed_hosts: required with actions (no host is allowed by default)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must not be negative"))
	}
	names := map[string]bool{}
	for i, a := range c.Actions {
		p := fmt.Sprintf("actions[%d]", i)
		if a.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required", p))
		} else if names[a.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q used twice", p, a.Name))
		}
		names[a.Name] = true
		if a.URL == "" {
			errs = append(errs, fmt.Errorf("%s.url: required", p))
		} else if _, err := parseTemplate("url", a.URL); err != nil {
			errs = append(errs, fmt.Errorf("%s.url: %w", p, err))
		}
		if a.Body != "" {
			if _, err := parseTemplate("body", a.Body); err != nil {
				errs = append(errs, fmt.Errorf("%s.body: %w", p, err))
			}
		}
		switch strings.ToUpper(a.Method) {
		case "", http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodGet:
		default:
			errs = append(errs, fmt.Errorf("%s.method: %q is not GET, POST, PUT, PATCH or DELETE", p, a.Method))
		}
		if a.Token.IsSet() && a.TokenFile != "" {
			errs = append(errs, fmt.Errorf("%s.token: set either token or token_file, not both", p))
		}
		if err := a.Match.Validate(); err != nil {
			errs = append(errs, config.Prefix(p+".match", err))
		}
	}
	return errors.Join(errs...)
}

func isHTTP(u string) bool {
	return strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
}
