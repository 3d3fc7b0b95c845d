package elasticsearch

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
)

// Flavors of server the indexer talks to.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"
)

// Index modes: how documents are laid out in indices (Config.Mode).
const (
	// ModeSingle writes each kind into one concrete index named
	// events_index / alerts_index. Retention cannot apply to it.
	ModeSingle = "single"
	// ModeDaily writes into "<name>-YYYY.MM.DD" from the document's own
	// @timestamp (UTC), so a replay lands where the live run did; the
	// lifecycle policy deletes whole days.
	ModeDaily = "daily"
	// ModeDataStream writes into a data stream named events_index /
	// alerts_index; the lifecycle policy rolls its backing indices over and
	// deletes them.
	ModeDataStream = "data_stream"
)

// byteSize is an Elasticsearch byte-size value ("50gb", "512mb").
var byteSize = regexp.MustCompile(`^[0-9]+(b|kb|mb|gb|tb|pb)$`)

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
	// EventsIndex is the index, daily-index prefix or data stream for
	// events. Default "trailwatch-events".
	EventsIndex string `koanf:"events_index"`
	// AlertsIndex is the same for alerts. Default "trailwatch-alerts".
	AlertsIndex string `koanf:"alerts_index"`
	// Mode is "single" (default: one concrete index per kind), "daily"
	// ("-YYYY.MM.DD" appended from the document's @timestamp in UTC, so a
	// replay lands in the same index as the live run did) or "data_stream".
	Mode string `koanf:"mode"`
	// EventsRetentionDays deletes event indices this many days after they
	// were created (daily) or rolled over (data_stream). 0, the default,
	// keeps them forever: an audit trail is never deleted unless asked.
	// Needs mode daily or data_stream.
	EventsRetentionDays int `koanf:"events_retention_days"`
	// AlertsRetentionDays is the same for alerts.
	AlertsRetentionDays int `koanf:"alerts_retention_days"`
	// RolloverMaxAge rolls a data stream's write index over after this
	// long. Default 24h; data_stream mode only.
	RolloverMaxAge time.Duration `koanf:"rollover_max_age"`
	// RolloverMaxPrimaryShardSize rolls it over once a primary shard
	// reaches this size (an Elasticsearch byte size). Default "50gb".
	RolloverMaxPrimaryShardSize string `koanf:"rollover_max_primary_shard_size"`
	// FlushBytes is the bulk request size that triggers a flush. Default
	// 5 MB. Write always flushes before returning, so this only splits large
	// batches into several requests.
	FlushBytes int `koanf:"flush_bytes"`
	// FlushInterval is not used any more: Write sends its documents at once
	// and waits for the answer, so nothing waits in a buffer. It is still
	// accepted (and validated) so existing configurations load.
	FlushInterval time.Duration `koanf:"flush_interval"`
	// Workers is the number of concurrent bulk requests, across concurrent
	// Writes; Write cuts a batch into this many parts. Default 2.
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
		Mode:           ModeSingle,
		FlushBytes:     5_000_000,
		FlushInterval:  5 * time.Second,
		Workers:        2,
		RequestTimeout: 30 * time.Second,
		MaxRetries:     3,

		RolloverMaxAge:              24 * time.Hour,
		RolloverMaxPrimaryShardSize: "50gb",
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
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.RolloverMaxAge == 0 {
		c.RolloverMaxAge = d.RolloverMaxAge
	}
	if c.RolloverMaxPrimaryShardSize == "" {
		c.RolloverMaxPrimaryShardSize = d.RolloverMaxPrimaryShardSize
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
	switch c.Mode {
	case ModeSingle, ModeDaily, ModeDataStream:
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not single, daily or data_stream", c.Mode))
	}
	for _, kv := range []struct {
		key  string
		days int
	}{{"events_retention_days", c.EventsRetentionDays}, {"alerts_retention_days", c.AlertsRetentionDays}} {
		switch {
		case kv.days < 0:
			errs = append(errs, fmt.Errorf("%s: must not be negative", kv.key))
		case kv.days > 0 && c.Mode == ModeSingle:
			errs = append(errs, fmt.Errorf("%s: needs mode daily or data_stream (a single index cannot age out)", kv.key))
		}
	}
	if c.RolloverMaxAge < time.Second {
		errs = append(errs, errors.New("rollover_max_age: must be at least 1s"))
	}
	if !byteSize.MatchString(c.RolloverMaxPrimaryShardSize) {
		errs = append(errs, fmt.Errorf("rollover_max_primary_shard_size: %q is not a byte size like 50gb", c.RolloverMaxPrimaryShardSize))
	}
	for _, kv := range [][2]string{{"events_index", c.EventsIndex}, {"alerts_index", c.AlertsIndex}} {
		key, name := kv[0], kv[1]
		if name != strings.ToLower(name) || strings.ContainsAny(name, `\/*?"<>| ,#:`) || strings.HasPrefix(name, "_") {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid index name (lowercase, no \\/*?\"<>| ,#:)", key, name))
		}
	}
	switch {
	case c.EventsIndex == c.AlertsIndex:
		errs = append(errs, errors.New("alerts_index: must differ from events_index"))
	case strings.HasPrefix(c.AlertsIndex, c.EventsIndex+"-"), strings.HasPrefix(c.EventsIndex, c.AlertsIndex+"-"):
		// The daily pattern "<name>-*" of one would match the other.
		errs = append(errs, errors.New("alerts_index: must not start with events_index plus \"-\" (or the reverse): their index patterns would overlap"))
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
