package elasticsearch

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
)

// Flavors of server the indexer talks to.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"
)

// Index name suffixes.
const (
	SuffixNone  = "none"
	SuffixDaily = "daily"
)

// Config configures the indexer. Zero values are filled by DefaultConfig.
type Config struct {
	// Addresses lists the node URLs ("https://es1:9200"). Required unless
	// cloud_id is set; the two are exclusive.
	Addresses []string `koanf:"addresses"`
	// Username and Password enable HTTP basic auth.
	Username     string        `koanf:"username"`
	Password     config.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
	// APIKey is a base64 Elasticsearch API key; it wins over basic auth.
	APIKey     config.Secret `koanf:"api_key"`
	APIKeyFile string        `koanf:"api_key_file"`
	// CloudID addresses an Elastic Cloud deployment instead of Addresses.
	CloudID string `koanf:"cloud_id"`
	// CAFile is a PEM bundle of certificate authorities to trust.
	CAFile string `koanf:"ca_file"`
	// InsecureSkipVerify disables TLS verification (tests only).
	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`
	// Flavor is "elasticsearch" (default) or "opensearch". go-elasticsearch
	// refuses a server that does not answer with X-Elastic-Product:
	// Elasticsearch; the opensearch flavor adds that header to responses so
	// the client accepts an OpenSearch node. Only the APIs both servers share
	// (bulk, index templates, index creation) are used.
	Flavor string `koanf:"flavor"`
	// EventsIndex is the index (or prefix, with daily suffix) for events.
	// Default "trailwatch-events".
	EventsIndex string `koanf:"events_index"`
	// AlertsIndex is the index (or prefix) for alerts. Default
	// "trailwatch-alerts".
	AlertsIndex string `koanf:"alerts_index"`
	// IndexSuffix is "none" (default) or "daily": daily appends
	// "-YYYY.MM.DD" from the document's @timestamp in UTC, so a replay lands
	// in the same index as the live run did.
	IndexSuffix string `koanf:"index_suffix"`
	// FlushBytes is the bulk request size that triggers a flush. Default
	// 5 MB. Write always flushes before returning, so this only splits large
	// batches into several requests.
	FlushBytes int `koanf:"flush_bytes"`
	// FlushInterval flushes partially filled buffers. Default 5s; since
	// Write flushes explicitly, it matters only for concurrent writers.
	FlushInterval time.Duration `koanf:"flush_interval"`
	// Workers is the number of concurrent bulk requests. Default 2.
	Workers int `koanf:"workers"`
	// RequestTimeout bounds one bulk or admin request including the
	// transport's own retries. Default 30s.
	RequestTimeout time.Duration `koanf:"request_timeout"`
	// MaxRetries is how often the transport retries a request on a
	// connection error or 502/503/504, moving to the next node. Default 3.
	// It is a fast failover only: backoff retries are the caller's.
	MaxRetries int `koanf:"max_retries"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Flavor:         FlavorElasticsearch,
		EventsIndex:    "trailwatch-events",
		AlertsIndex:    "trailwatch-alerts",
		IndexSuffix:    SuffixNone,
		FlushBytes:     5_000_000,
		FlushInterval:  5 * time.Second,
		Workers:        2,
		RequestTimeout: 30 * time.Second,
		MaxRetries:     3,
	}
}

// withDefaults fills zero values from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Flavor == "" {
		c.Flavor = d.Flavor
	}
	if c.EventsIndex == "" {
		c.EventsIndex = d.EventsIndex
	}
	if c.AlertsIndex == "" {
		c.AlertsIndex = d.AlertsIndex
	}
	if c.IndexSuffix == "" {
		c.IndexSuffix = d.IndexSuffix
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = d.FlushBytes
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = d.FlushInterval
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = d.MaxRetries
	}
	return c
}

// Validate reports every problem, each naming its key. Zero values are
// accepted where DefaultConfig supplies them.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	switch {
	case len(c.Addresses) == 0 && c.CloudID == "":
		errs = append(errs, errors.New("addresses: required (or cloud_id)"))
	case len(c.Addresses) > 0 && c.CloudID != "":
		errs = append(errs, errors.New("cloud_id: set either addresses or cloud_id, not both"))
	}
	for i, a := range c.Addresses {
		if !strings.HasPrefix(a, "http://") && !strings.HasPrefix(a, "https://") {
			errs = append(errs, fmt.Errorf("addresses[%d]: must start with http:// or https://", i))
		}
	}
	if c.Password.IsSet() && c.PasswordFile != "" {
		errs = append(errs, errors.New("password: set either password or password_file, not both"))
	}
	if c.APIKey.IsSet() && c.APIKeyFile != "" {
		errs = append(errs, errors.New("api_key: set either api_key or api_key_file, not both"))
	}
	if c.Flavor != FlavorElasticsearch && c.Flavor != FlavorOpenSearch {
		errs = append(errs, fmt.Errorf("flavor: %q is not elasticsearch or opensearch", c.Flavor))
	}
	if c.IndexSuffix != SuffixNone && c.IndexSuffix != SuffixDaily {
		errs = append(errs, fmt.Errorf("index_suffix: %q is not none or daily", c.IndexSuffix))
	}
	for _, kv := range [][2]string{{"events_index", c.EventsIndex}, {"alerts_index", c.AlertsIndex}} {
		key, name := kv[0], kv[1]
		if name != strings.ToLower(name) || strings.ContainsAny(name, `\/*?"<>| ,#:`) || strings.HasPrefix(name, "_") {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid index name (lowercase, no \\/*?\"<>| ,#:)", key, name))
		}
	}
	if c.EventsIndex == c.AlertsIndex {
		errs = append(errs, errors.New("alerts_index: must differ from events_index"))
	}
	if c.FlushBytes < 0 {
		errs = append(errs, errors.New("flush_bytes: must be positive"))
	}
	if c.FlushInterval < 0 {
		errs = append(errs, errors.New("flush_interval: must be positive"))
	}
	if c.Workers < 0 {
		errs = append(errs, errors.New("workers: must be positive"))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, errors.New("request_timeout: must be positive"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, errors.New("max_retries: must not be negative"))
	}
	return errors.Join(errs...)
}
