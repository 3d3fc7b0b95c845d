// Package kafka is trailwatch's Kafka plumbing: client options from config
// (brokers, TLS, SASL), topic creation, and the embedded in-process broker
// used when no brokers are configured.
//
// It deliberately stays narrow: it builds *kgo.Client options and topics and
// does not wrap the client. The consume-process-produce loop lives in
// internal/pipeline.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/trailwatch/trailwatch/internal/config"
)

// Config is the `kafka` section of the configuration.
type Config struct {
	// Brokers are the seed brokers. Empty means the embedded broker.
	Brokers []string `koanf:"brokers"`
	// ClientID is sent to the brokers to identify this process.
	ClientID string `koanf:"client_id"`
	// TLS secures the connection to the brokers.
	TLS TLSConfig `koanf:"tls"`
	// SASL authenticates to the brokers.
	SASL SASLConfig `koanf:"sasl"`
	// Topics names the pipeline's topics.
	Topics Topics `koanf:"topics"`
	// Partitions is the partition count for topics trailwatch creates.
	Partitions int32 `koanf:"partitions"`
	// ReplicationFactor is used for topics trailwatch creates (-1: broker default).
	ReplicationFactor int16 `koanf:"replication_factor"`
	// GroupPrefix prefixes every consumer group name ("trailwatch" gives
	// "trailwatch-normalize").
	GroupPrefix string `koanf:"group_prefix"`
	// DialTimeout bounds connecting to a broker.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// StartupWait is how long a starting process keeps retrying brokers
	// that do not answer (a broker restarting) before it gives up.
	StartupWait time.Duration `koanf:"startup_wait"`
	// SessionTimeout is how long the group waits for a silent member (a
	// killed process) before moving its partitions to others.
	SessionTimeout time.Duration `koanf:"session_timeout"`
}

// TLSConfig holds client TLS settings.
type TLSConfig struct {
	Enabled            bool   `koanf:"enabled"`
	CAFile             string `koanf:"ca_file"`
	CertFile           string `koanf:"cert_file"`
	KeyFile            string `koanf:"key_file"`
	ServerName         string `koanf:"server_name"`
	InsecureSkipVerify bool   `koanf:"insecure_skip_verify"`
}

// SASLConfig holds SASL settings.
type SASLConfig struct {
	// Mechanism is "", "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism    string        `koanf:"mechanism"`
	Username     string        `koanf:"username"`
	Password     config.Secret `koanf:"password"`
	PasswordFile string        `koanf:"password_file"`
}

// Topics holds the topic names of the pipeline.
type Topics struct {
	Raw      string `koanf:"raw"`
	Events   string `koanf:"events"`
	Enriched string `koanf:"enriched"`
	Alerts   string `koanf:"alerts"`
	DLQ      string `koanf:"dlq"`
	Notified string `koanf:"notified"`
	// Repartition carries events to the rules grouped by a key other
	// than the actor, keyed by that group key.
	Repartition string `koanf:"repartition"`
	// State is the compacted changelog of the state kept per partition of
	// the events topic (first-seen history, sessions).
	State string `koanf:"state"`
	// KeyedState is the compacted changelog of the state kept per
	// partition of the repartition topic.
	KeyedState string `koanf:"keyed_state"`
	// Integrity holds the signed checkpoints of the raw topic's hash
	// chains (internal/integrity), created with unlimited retention.
	Integrity string `koanf:"integrity"`
}

// DefaultConfig returns the configuration of the embedded mode.
func DefaultConfig() Config {
	return Config{
		ClientID:          "trailwatch",
		Partitions:        3,
		ReplicationFactor: -1,
		GroupPrefix:       "trailwatch",
		DialTimeout:       10 * time.Second,
		StartupWait:       2 * time.Minute,
		SessionTimeout:    45 * time.Second,
		Topics: Topics{
			Raw:      "trailwatch.raw",
			Events:   "trailwatch.events",
			Enriched: "trailwatch.enriched",
			Alerts:   "trailwatch.alerts",
			DLQ:      "trailwatch.dlq",
			Notified: "trailwatch.notified",

			Repartition: "trailwatch.repartition",
			State:       "trailwatch.state",
			KeyedState:  "trailwatch.state.keyed",
			Integrity:   "trailwatch.integrity",
		},
	}
}

// Validate reports every problem in the section, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	if c.SessionTimeout < time.Second {
		errs = append(errs, errors.New("session_timeout: must be at least 1s"))
	}
	if c.StartupWait < 0 {
		errs = append(errs, errors.New("startup_wait: must not be negative"))
	}
	if c.Partitions < 1 {
		errs = append(errs, errors.New("partitions: must be at least 1"))
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		errs = append(errs, fmt.Errorf("sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASL.Mechanism))
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		errs = append(errs, errors.New("sasl.username: required with sasl.mechanism"))
	}
	if _, err := config.ResolveSecret("sasl.password", c.SASL.Password, c.SASL.PasswordFile); err != nil {
		errs = append(errs, err)
	}
	for name, v := range map[string]string{"raw": c.Topics.Raw, "events": c.Topics.Events, "enriched": c.Topics.Enriched, "alerts": c.Topics.Alerts, "dlq": c.Topics.DLQ, "notified": c.Topics.Notified} {
		if v == "" {
			errs = append(errs, fmt.Errorf("topics.%s: required", name))
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls.cert_file, tls.key_file: set both or neither"))
	}
	return errors.Join(errs...)
}

// AllTopics lists the pipeline's topics that keep records for a time.
func (t Topics) AllTopics() []string {
	return []string{t.Raw, t.Events, t.Enriched, t.Alerts, t.DLQ, t.Repartition}
}

// CompactedTopics lists the pipeline's compacted topics: the latest value
// per key is kept.
func (t Topics) CompactedTopics() []string {
	return []string{t.Notified, t.State, t.KeyedState}
}

// GroupOpts returns the consumer-group options from the config.
func (c *Config) GroupOpts() []kgo.Opt {
	return []kgo.Opt{kgo.SessionTimeout(c.SessionTimeout)}
}

// Opts returns the kgo options connecting to the configured brokers.
func (c *Config) Opts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DialTimeout(c.DialTimeout),
		// lz4 costs client and broker the least CPU per MB of log lines and
		// events (BenchmarkCollectToKafka, docs/benchmarks.md); this codec
		// skips the frame checksums Kafka's batch CRC makes redundant
		// ("Kafka lz4 codec"). Every producer of the pipeline uses it.
		kgo.WithCompressor(LZ4Compressor()),
		kgo.WithDecompressor(LZ4Decompressor(0)),
	}
	if c.TLS.Enabled {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: %w", err)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL.Mechanism != "" {
		m, err := c.SASL.build()
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in by config
	if t.CAFile != "" {
		pool, err := config.LoadCAPool(t.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (s SASLConfig) build() (sasl.Mechanism, error) {
	pass, err := config.ResolveSecret("password", s.Password, s.PasswordFile)
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(s.Mechanism) {
	case "PLAIN":
		return plain.Auth{User: s.Username, Pass: pass.Value()}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.Username, Pass: pass.Value()}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.Username, Pass: pass.Value()}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("mechanism %q unsupported", s.Mechanism)
}

// EnsureTopics creates the missing topics among names with the configured
// partition count. A topic that already exists is left as it is.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int32, rf int16, names ...string) error {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, partitions, rf, nil, names...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// EnsureCompactedTopic creates a log-compacted topic if it is missing.
func EnsureCompactedTopic(ctx context.Context, cl *kgo.Client, partitions int32, rf int16, name string) error {
	adm := kadm.NewClient(cl)
	cleanup := "compact"
	resp, err := adm.CreateTopics(ctx, partitions, rf, map[string]*string{"cleanup.policy": &cleanup}, name)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// Ping checks that the brokers answer a metadata request within ctx.
func Ping(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka brokers unreachable: %w", err)
	}
	return nil
}
