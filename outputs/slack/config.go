package slack

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
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
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{APIURL: "https://slack.com/api/", Timeout: 10 * time.Second}
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
	return errors.Join(errs...)
}
