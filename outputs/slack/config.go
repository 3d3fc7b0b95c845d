package slack

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/outputs/route"
)

// Config configures the Slack notifier. Exactly one mode is set: an
// incoming webhook (webhook_url) or a bot token with a channel.
type Config struct {
	// WebhookURL is an incoming-webhook URL; it is a secret (whoever has it
	// can post). WebhookURLFile reads it from a file instead.
	WebhookURL     config.Secret `koanf:"webhook_url"`
	WebhookURLFile string        `koanf:"webhook_url_file"`
	// Token is a bot token (xoxb-…) used with chat.postMessage; TokenFile
	// reads it from a file instead. Requires Channel.
	Token     config.Secret `koanf:"token"`
	TokenFile string        `koanf:"token_file"`
	// Channel is the channel ID or name the bot posts to.
	Channel string `koanf:"channel"`
	// APIURL is the Web API base URL, default "https://slack.com/api/".
	// Set it for a proxy or a test server.
	APIURL string `koanf:"api_url"`
	// EventsURLTemplate, when set, adds a link to the alert's events: a Go
	// text/template executed over the schema.Alert, e.g. a Kibana Discover
	// URL with {{.Rule.ID | urlquery}}. Use urlquery on every value taken
	// from the alert.
	EventsURLTemplate string `koanf:"events_url_template"`
	// Timeout bounds one request to Slack. Default 10s.
	Timeout time.Duration `koanf:"timeout"`

	// Routes pick the channel per alert: the first route whose match the
	// alert satisfies wins; an alert no route matches goes to Channel.
	// Channels other than the default need bot-token mode.
	Routes []Route `koanf:"routes"`

	// Grouping pages per alert group (rule id + group key) instead of per
	// alert; default true. See docs/outputs.md for the exact semantics.
	Grouping bool `koanf:"grouping"`
	// GroupWait is how long a new group gathers alerts before its first
	// message. Default 0: the first alert pages as soon as it is read.
	GroupWait time.Duration `koanf:"group_wait"`
	// GroupInterval is how often a paged group's message is updated (and a
	// thread reply added) with the alerts that arrived since. Default 5m.
	GroupInterval time.Duration `koanf:"group_interval"`
	// RepeatInterval is after how long a group still receiving alerts gets
	// a new top-level message instead of another update. Default 4h.
	RepeatInterval time.Duration `koanf:"repeat_interval"`

	// Interactivity serves the Acknowledge / Silence buttons.
	Interactivity InteractivityConfig `koanf:"interactivity"`
}

// Route sends the alerts it matches to a channel, or drops them.
type Route struct {
	// Match selects alerts by severity, tags, rule ids and rule routes.
	Match route.Match `koanf:"match"`
	// Channel is where matched alerts are posted (bot mode).
	Channel string `koanf:"channel"`
	// Drop, when true, pages nobody for matched alerts.
	Drop bool `koanf:"drop"`
}

// InteractivityConfig is Slack's interactivity endpoint: button clicks are
// POSTed to it, signed with the app's signing secret. Buttons appear on
// messages only when a signing secret is configured.
type InteractivityConfig struct {
	// Listen is the address of the endpoint's own HTTP listener, e.g.
	// ":8443". Empty: no listener (buttons are not shown either).
	Listen string `koanf:"listen"`
	// Path is the request path. Default "/slack/interactivity".
	Path string `koanf:"path"`
	// SigningSecret verifies X-Slack-Signature; SigningSecretFile reads it
	// from a file instead.
	SigningSecret     config.Secret `koanf:"signing_secret"`
	SigningSecretFile string        `koanf:"signing_secret_file"`
	// TLSCertFile and TLSKeyFile serve HTTPS; both or neither.
	TLSCertFile string `koanf:"tls_cert_file"`
	TLSKeyFile  string `koanf:"tls_key_file"`
}

// enabled reports whether the endpoint is configured.
func (c InteractivityConfig) enabled() bool { return c.Listen != "" }

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		APIURL: "https://slack.com/api/", Timeout: 10 * time.Second,
		Grouping: true, GroupInterval: 5 * time.Minute, RepeatInterval: 4 * time.Hour,
		Interactivity: InteractivityConfig{Path: "/slack/interactivity"},
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.APIURL == "" {
		c.APIURL = d.APIURL
	}
	if !strings.HasSuffix(c.APIURL, "/") {
		c.APIURL += "/"
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.GroupInterval == 0 {
		c.GroupInterval = d.GroupInterval
	}
	if c.RepeatInterval == 0 {
		c.RepeatInterval = d.RepeatInterval
	}
	if c.Interactivity.Path == "" {
		c.Interactivity.Path = d.Interactivity.Path
	}
	return c
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	webhook := c.WebhookURL.IsSet() || c.WebhookURLFile != ""
	bot := c.Token.IsSet() || c.TokenFile != ""
	switch {
	case webhook && bot:
		errs = append(errs, errors.New("webhook_url: set either webhook_url or token, not both"))
	case !webhook && !bot:
		errs = append(errs, errors.New("webhook_url: required (or token and channel)"))
	}
	if c.WebhookURL.IsSet() && c.WebhookURLFile != "" {
		errs = append(errs, errors.New("webhook_url: set either webhook_url or webhook_url_file, not both"))
	}
	if c.Token.IsSet() && c.TokenFile != "" {
		errs = append(errs, errors.New("token: set either token or token_file, not both"))
	}
	if c.WebhookURL.IsSet() && !strings.HasPrefix(c.WebhookURL.Value(), "https://") && !strings.HasPrefix(c.WebhookURL.Value(), "http://") {
		errs = append(errs, errors.New("webhook_url: must be an http(s) URL")) // the value is never echoed
	}
	if bot && c.Channel == "" {
		errs = append(errs, errors.New("channel: required with token"))
	}
	if c.EventsURLTemplate != "" {
		if _, err := template.New("events_url_template").Parse(c.EventsURLTemplate); err != nil {
			errs = append(errs, fmt.Errorf("events_url_template: %w", err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	for i, r := range c.Routes {
		if err := r.Match.Validate(); err != nil {
			errs = append(errs, config.Prefix(fmt.Sprintf("routes[%d].match", i), err))
		}
		switch {
		case r.Drop && r.Channel != "":
			errs = append(errs, fmt.Errorf("routes[%d]: set either channel or drop, not both", i))
		case !r.Drop && r.Channel == "":
			errs = append(errs, fmt.Errorf("routes[%d].channel: required (or drop: true)", i))
		case r.Channel != "" && webhook:
			errs = append(errs, fmt.Errorf("routes[%d].channel: an incoming webhook posts to one channel; routing to channels needs token mode", i))
		}
	}
	if c.GroupWait < 0 || c.GroupInterval < 0 || c.RepeatInterval < 0 {
		errs = append(errs, errors.New("group_wait, group_interval, repeat_interval: must not be negative"))
	}
	if c.RepeatInterval > 0 && c.GroupInterval > c.RepeatInterval {
		errs = append(errs, errors.New("group_interval: must not exceed repeat_interval"))
	}
	ic := c.Interactivity
	if ic.SigningSecret.IsSet() && ic.SigningSecretFile != "" {
		errs = append(errs, errors.New("interactivity.signing_secret: set either signing_secret or signing_secret_file, not both"))
	}
	if ic.enabled() && !ic.SigningSecret.IsSet() && ic.SigningSecretFile == "" {
		errs = append(errs, errors.New("interactivity.signing_secret: required with interactivity.listen (requests must be verified)"))
	}
	if (ic.TLSCertFile == "") != (ic.TLSKeyFile == "") {
		errs = append(errs, errors.New("interactivity.tls_cert_file: set both tls_cert_file and tls_key_file, or neither"))
	}
	if ic.Path != "" && !strings.HasPrefix(ic.Path, "/") {
		errs = append(errs, errors.New("interactivity.path: must start with /"))
	}
	return errors.Join(errs...)
}
