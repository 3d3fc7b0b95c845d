package s3

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
)

// Values accepted by Config.Mode.
const (
	// ModeLines makes each line of an object one record (ALB, ELB, S3
	// access logs, Firehose-delivered JSON lines).
	ModeLines = "lines"
	// ModeObject makes each object one record (CloudTrail's
	// {"Records":[…]} files; the normalizer splits them).
	ModeObject = "object"
)

// Default size bounds of one object's decompressed content, by mode.
const (
	// DefaultMaxObjectBytesObject bounds an object held whole in memory.
	DefaultMaxObjectBytesObject = 256 << 20
	// DefaultMaxObjectBytesLines bounds a streamed object: a gzip-bomb
	// guard, since memory stays at max_line_bytes.
	DefaultMaxObjectBytesLines = 4 << 30
)

// Config configures one S3 collector instance.
type Config struct {
	// Name is the collector instance name, put in Record.Collector and used
	// by the caller to name the checkpoint file. Default "s3".
	Name string `koanf:"name"`
	// Endpoint is the S3 API URL, for S3-compatible servers
	// ("http://127.0.0.1:7070"). Empty means AWS S3 in Region.
	Endpoint string `koanf:"endpoint"`
	// Region is the bucket's region. Default "us-east-1".
	Region string `koanf:"region"`
	// Bucket is the bucket the logs are delivered to. Required.
	Bucket string `koanf:"bucket"`
	// Prefix restricts listing to keys starting with it
	// ("AWSLogs/123456789012/elasticloadbalancing/eu-west-1/"). Optional.
	Prefix string `koanf:"prefix"`
	// StartAfter is where a collector without a checkpoint starts: only
	// keys sorting after it are read. Empty reads everything under Prefix.
	StartAfter string `koanf:"start_after"`
	// AccessKeyID and SecretAccessKey (or SecretAccessKeyFile) are static
	// credentials. When both are empty the standard AWS chain is used:
	// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials
	// (AWS_PROFILE), then IAM roles (web identity/IRSA, ECS, EC2 metadata).
	AccessKeyID         string        `koanf:"access_key_id"`
	SecretAccessKey     config.Secret `koanf:"secret_access_key"`
	SecretAccessKeyFile string        `koanf:"secret_access_key_file"`
	// SessionToken goes with temporary static credentials. Optional.
	SessionToken     config.Secret `koanf:"session_token"`
	SessionTokenFile string        `koanf:"session_token_file"`
	// UsePathStyle addresses the bucket as endpoint/bucket/key instead of
	// bucket.endpoint/key; most S3-compatible servers need it.
	UsePathStyle bool `koanf:"use_path_style"`
	// Source names the normalizer for the records ("alb"). Required.
	Source string `koanf:"source"`
	// Mode is "lines" (default) or "object", see ModeLines and ModeObject.
	Mode string `koanf:"mode"`
	// PollInterval is how long to wait between listings once everything
	// listed is read. Default 1m.
	PollInterval time.Duration `koanf:"poll_interval"`
	// Settle is how old (by LastModified) an object must be before the
	// cursor may pass its key. The collector assumes no new key will ever
	// appear sorting before a key older than Settle; keys between the cursor
	// and the end are listed again every poll. Default 24h, which suits
	// date-partitioned layouts (ALB, CloudTrail): see the package doc.
	Settle time.Duration `koanf:"settle"`
	// CheckpointFile is the JSON file holding the cursor. The caller sets
	// it, normally to <data_dir>/checkpoints/s3-<name>.json. Required.
	CheckpointFile string `koanf:"checkpoint_file"`
	// BatchLines caps the records handed to one Emit call. Default 1000.
	BatchLines int `koanf:"batch_lines"`
	// BatchBytes caps the record bytes of one Emit call; a batch closes as
	// soon as it reaches this size. Default 1 MiB.
	BatchBytes int `koanf:"batch_bytes"`
	// MaxLineBytes is the longest line emitted whole (lines mode); a longer
	// one is cut and marked Record.Truncated. Default 64 KiB.
	MaxLineBytes int `koanf:"max_line_bytes"`
	// MaxObjectBytes bounds an object's content after decompression. An
	// object past it is recorded as failed in the checkpoint and skipped
	// (in lines mode, after the lines before the bound were emitted).
	// 0 means 256 MiB in object mode and 4 GiB in lines mode.
	MaxObjectBytes int64 `koanf:"max_object_bytes"`
	// RequestTimeout bounds each S3 request (one list page, or opening an
	// object) and each stall while reading an object's body: a read that
	// makes no progress for this long aborts the object, to be retried at
	// the next poll. Default 30s.
	RequestTimeout time.Duration `koanf:"request_timeout"`
	// Host is put in Record.Host, and so in Record.ID. Default
	// os.Hostname(); set a fixed value to keep record ids stable when the
	// collector moves to another machine with its checkpoint.
	Host string `koanf:"host"`
	// SQSQueueURL would read S3 event notifications instead of listing.
	// Not supported yet: setting it is a configuration error.
	SQSQueueURL string `koanf:"sqs_queue_url"`
}

// DefaultConfig returns a Config with every optional field at its default.
func DefaultConfig() Config {
	return Config{
		Name:           "s3",
		Region:         "us-east-1",
		Mode:           ModeLines,
		PollInterval:   time.Minute,
		Settle:         24 * time.Hour,
		BatchLines:     1000,
		BatchBytes:     1 << 20,
		MaxLineBytes:   64 << 10,
		RequestTimeout: 30 * time.Second,
	}
}

// Validate reports every problem in cfg, each naming its key.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Name == "" {
		bad("name: required")
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("endpoint: want an http:// or https:// URL, got %q", cfg.Endpoint)
		} else if u.Path != "" && u.Path != "/" {
			bad("endpoint: must not have a path, got %q", u.Path)
		}
	}
	if cfg.Region == "" {
		bad("region: required")
	}
	if cfg.Bucket == "" {
		bad("bucket: required")
	}
	secret, err := config.ResolveSecret("secret_access_key", cfg.SecretAccessKey, cfg.SecretAccessKeyFile)
	if err != nil {
		errs = append(errs, err)
	}
	if _, err := config.ResolveSecret("session_token", cfg.SessionToken, cfg.SessionTokenFile); err != nil {
		errs = append(errs, err)
	}
	if (cfg.AccessKeyID == "") != (secret == "") && err == nil {
		bad("access_key_id, secret_access_key: set both or neither")
	}
	if cfg.Source == "" {
		bad("source: required")
	}
	if cfg.Mode != ModeLines && cfg.Mode != ModeObject {
		bad("mode: must be %q or %q, got %q", ModeLines, ModeObject, cfg.Mode)
	}
	if cfg.PollInterval <= 0 {
		bad("poll_interval: must be positive, got %s", cfg.PollInterval)
	}
	if cfg.Settle < 0 {
		bad("settle: must not be negative, got %s", cfg.Settle)
	}
	if cfg.CheckpointFile == "" {
		bad("checkpoint_file: required")
	}
	if cfg.BatchLines <= 0 {
		bad("batch_lines: must be positive, got %d", cfg.BatchLines)
	}
	if cfg.BatchBytes <= 0 {
		bad("batch_bytes: must be positive, got %d", cfg.BatchBytes)
	}
	if cfg.MaxLineBytes <= 0 {
		bad("max_line_bytes: must be positive, got %d", cfg.MaxLineBytes)
	}
	if cfg.MaxObjectBytes < 0 {
		bad("max_object_bytes: must not be negative, got %d", cfg.MaxObjectBytes)
	}
	if cfg.RequestTimeout <= 0 {
		bad("request_timeout: must be positive, got %s", cfg.RequestTimeout)
	}
	if cfg.SQSQueueURL != "" {
		bad("sqs_queue_url: SQS notifications are not supported yet; remove it to list the bucket")
	}
	return errors.Join(errs...)
}

// maxObjectBytes returns the effective bound for the configured mode.
func (cfg Config) maxObjectBytes() int64 {
	switch {
	case cfg.MaxObjectBytes > 0:
		return cfg.MaxObjectBytes
	case cfg.Mode == ModeObject:
		return DefaultMaxObjectBytesObject
	default:
		return DefaultMaxObjectBytesLines
	}
}
