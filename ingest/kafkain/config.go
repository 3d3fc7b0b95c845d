package kafkain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/internal/kafka"
)

// Values accepted by Config.StartOffset.
const (
	// StartEarliest makes a group without committed offsets read each
	// partition from its oldest retained record.
	StartEarliest = "earliest"
	// StartLatest makes it read only records produced after it joined.
	StartLatest = "latest"
)

// Config configures one Kafka-topic collector instance.
type Config struct {
	// Name is the collector instance name, put in Record.Collector.
	// Default "kafka".
	Name string `koanf:"name"`
	// Brokers are the seed brokers of the upstream cluster, which may be
	// another cluster than trailwatch's own. Required.
	Brokers []string `koanf:"brokers"`
	// ClientID is sent to the brokers. Default "trailwatch".
	ClientID string `koanf:"client_id"`
	// TLS and SASL secure the connection, as in the kafka section.
	TLS  kafka.TLSConfig  `koanf:"tls"`
	SASL kafka.SASLConfig `koanf:"sasl"`
	// Topics are the upstream topics to consume. Required.
	Topics []string `koanf:"topics"`
	// Group is the consumer group whose committed offsets are the
	// collector's position. Required; keep it stable across restarts.
	Group string `koanf:"group"`
	// Cluster names the upstream cluster in Record.Stream. Default: the
	// sorted broker list joined by ","; set it so that changing the seed
	// brokers does not change record ids.
	Cluster string `koanf:"cluster"`
	// Source names the normalizer for the values ("kong"). Required.
	Source string `koanf:"source"`
	// StartOffset is where a group without committed offsets starts:
	// "earliest" (default) or "latest".
	StartOffset string `koanf:"start_offset"`
	// MaxPollRecords caps the records handed to one Emit call (and so
	// committed at once). Default 1000.
	MaxPollRecords int `koanf:"max_poll_records"`
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// SessionTimeout is how long the group waits for a silent member
	// before moving its partitions. Default 45s.
	SessionTimeout time.Duration `koanf:"session_timeout"`
	// Host is put in Record.Host, and so in Record.ID. Default
	// os.Hostname(); set a fixed value so that a partition read again by
	// another machine yields the same record ids.
	Host string `koanf:"host"`
}

// DefaultConfig returns a Config with every optional field at its default.
func DefaultConfig() Config {
	return Config{
		Name:           "kafka",
		ClientID:       "trailwatch",
		StartOffset:    StartEarliest,
		MaxPollRecords: 1000,
		DialTimeout:    10 * time.Second,
		SessionTimeout: 45 * time.Second,
	}
}

// Validate reports every problem in cfg, each naming its key.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Name == "" {
		bad("name: required")
	}
	if len(cfg.Brokers) == 0 {
		bad("brokers: required")
	}
	for i, b := range cfg.Brokers {
		if b == "" {
			bad("brokers[%d]: empty", i)
		}
	}
	if len(cfg.Topics) == 0 {
		bad("topics: required")
	}
	for i, tp := range cfg.Topics {
		if tp == "" {
			bad("topics[%d]: empty", i)
		}
	}
	if cfg.Group == "" {
		bad("group: required")
	}
	if cfg.Source == "" {
		bad("source: required")
	}
	if cfg.StartOffset != StartEarliest && cfg.StartOffset != StartLatest {
		bad("start_offset: must be %q or %q, got %q", StartEarliest, StartLatest, cfg.StartOffset)
	}
	if cfg.MaxPollRecords <= 0 {
		bad("max_poll_records: must be positive, got %d", cfg.MaxPollRecords)
	}
	if cfg.DialTimeout <= 0 {
		bad("dial_timeout: must be positive, got %s", cfg.DialTimeout)
	}
	if cfg.SessionTimeout < time.Second {
		bad("session_timeout: must be at least 1s, got %s", cfg.SessionTimeout)
	}
	switch strings.ToUpper(cfg.SASL.Mechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		bad("sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", cfg.SASL.Mechanism)
	}
	if cfg.SASL.Mechanism != "" && cfg.SASL.Username == "" {
		bad("sasl.username: required with sasl.mechanism")
	}
	if _, err := config.ResolveSecret("sasl.password", cfg.SASL.Password, cfg.SASL.PasswordFile); err != nil {
		errs = append(errs, err)
	}
	if (cfg.TLS.CertFile == "") != (cfg.TLS.KeyFile == "") {
		bad("tls.cert_file, tls.key_file: set both or neither")
	}
	return errors.Join(errs...)
}

// cluster returns Cluster or its default.
func (cfg Config) cluster() string {
	if cfg.Cluster != "" {
		return cfg.Cluster
	}
	b := slices.Clone(cfg.Brokers)
	slices.Sort(b)
	return strings.Join(b, ",")
}
