package httpin

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
)

// DefaultPath is the route used when Config.Routes is empty.
const DefaultPath = "/ingest"

// HealthPath answers GET with 200 "ok", without authentication.
const HealthPath = "/healthz"

// Route maps a URL path to the normalizer of the records posted there.
type Route struct {
	// Path is the exact URL path ("/kong"). Required, starts with "/".
	Path string `koanf:"path"`
	// Source names the normalizer for the records ("kong"). Required.
	Source string `koanf:"source"`
}

// Config configures one HTTP receiver instance.
type Config struct {
	// Name is the collector instance name, put in Record.Collector.
	// Default "http".
	Name string `koanf:"name"`
	// Listen is the TCP address to serve on. Default "127.0.0.1:9880".
	Listen string `koanf:"listen"`
	// Routes are the paths accepting POST (or PUT) bodies. Empty means one
	// route, DefaultPath, with Source.
	Routes []Route `koanf:"routes"`
	// Source is the normalizer of the default route. Required when Routes
	// is empty, refused otherwise.
	Source string `koanf:"source"`
	// Tokens are the accepted bearer tokens. With neither Tokens nor
	// TokensFile every request is accepted (rely on mTLS or the network).
	Tokens []config.Secret `koanf:"tokens"`
	// TokensFile holds more accepted tokens, one per line; blank lines and
	// lines starting with "#" are ignored. Read once by New.
	TokensFile string `koanf:"tokens_file"`
	// CertFile and KeyFile are the PEM server certificate and key; set both
	// to serve HTTPS. Read once by New.
	CertFile string `koanf:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `koanf:"key_file"`
	// ClientCAFile is a PEM bundle of CAs; set, every client must present a
	// certificate signed by one of them (mTLS). Needs CertFile.
	ClientCAFile string `koanf:"client_ca_file"`
	// MaxBodyBytes bounds a request body after gzip decompression (and so
	// the wire body too); a larger one gets 413. Default 10 MiB. Memory in
	// use is bounded by about MaxInFlight × (MaxBodyBytes + 170 B × MaxRecords).
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// MaxRecordBytes is the longest record kept whole. A longer line or
	// element is emitted cut to this length with Record.Truncated set (the
	// normalize stage dead-letters it) and the request is accepted, so one
	// oversized record never blocks a shipper. Default 1 MiB.
	MaxRecordBytes int `koanf:"max_record_bytes"`
	// MaxRecords bounds the records of one body; more gets 413. It bounds
	// the per-request bookkeeping (about 170 bytes per record, on top of
	// the body), which a body of tiny lines would otherwise blow up.
	// Default 100000.
	MaxRecords int `koanf:"max_records"`
	// MaxDepth is the deepest JSON nesting accepted; a deeper body gets 400.
	// Default 64.
	MaxDepth int `koanf:"max_depth"`
	// MaxInFlight bounds the requests being read or emitted at once; one
	// more gets 429 at once. Default 32.
	MaxInFlight int `koanf:"max_in_flight"`
	// AckTimeout is how long a request waits for Emit (Kafka acks) before
	// it gets 429: Emit's context is cancelled then, and the 429 is sent
	// when Emit returns (records already on the wire to a broker are
	// waited for). Default 5s.
	AckTimeout time.Duration `koanf:"ack_timeout"`
	// RetryAfter is sent, rounded up to whole seconds, in the Retry-After
	// header of 429 and 503 responses. Default 2s.
	RetryAfter time.Duration `koanf:"retry_after"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default 30s.
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// WriteTimeout bounds the time from the end of the request headers to
	// the end of the response; it must exceed AckTimeout. Default 60s.
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// ShutdownTimeout is how long Run, once its context is done, lets
	// in-flight requests finish before cancelling them. Default 10s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// Host is put in Record.Host and is part of Record.ID: replicas behind
	// one load balancer should share it so a retry that lands on another
	// replica gets the same ids. Default os.Hostname().
	Host string `koanf:"host"`
}

// DefaultConfig returns a Config with every optional field at its default.
func DefaultConfig() Config {
	return Config{
		Name:              "http",
		Listen:            "127.0.0.1:9880",
		MaxBodyBytes:      10 << 20,
		MaxRecordBytes:    1 << 20,
		MaxRecords:        100_000,
		MaxDepth:          64,
		MaxInFlight:       32,
		AckTimeout:        5 * time.Second,
		RetryAfter:        2 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ShutdownTimeout:   10 * time.Second,
	}
}

// routes returns the effective routes.
func (cfg Config) routes() []Route {
	if len(cfg.Routes) == 0 {
		return []Route{{Path: DefaultPath, Source: cfg.Source}}
	}
	return cfg.Routes
}

// Validate reports every problem in cfg, each naming its key.
func (cfg Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Name == "" {
		bad("name: required")
	}
	if cfg.Listen == "" {
		bad("listen: required")
	}
	if len(cfg.Routes) == 0 && cfg.Source == "" {
		bad("source: required (or routes)")
	}
	if len(cfg.Routes) > 0 && cfg.Source != "" {
		bad("source: set either source (for the default route %s) or routes, not both", DefaultPath)
	}
	seen := map[string]bool{}
	for i, r := range cfg.Routes {
		switch {
		case r.Path == "":
			bad("routes[%d].path: required", i)
		case !strings.HasPrefix(r.Path, "/"):
			bad("routes[%d].path: must start with \"/\", got %q", i, r.Path)
		case r.Path == HealthPath:
			bad("routes[%d].path: %s is reserved for health checks", i, HealthPath)
		case seen[r.Path]:
			bad("routes[%d].path: %q is listed twice", i, r.Path)
		}
		seen[r.Path] = true
		if r.Source == "" {
			bad("routes[%d].source: required", i)
		}
	}
	for i, t := range cfg.Tokens {
		if !t.IsSet() {
			bad("tokens[%d]: empty token", i)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		bad("cert_file: set both cert_file and key_file, or neither")
	}
	if cfg.ClientCAFile != "" && cfg.CertFile == "" {
		bad("client_ca_file: needs cert_file and key_file (mTLS runs over TLS)")
	}
	positive := func(key string, v int64) {
		if v <= 0 {
			bad("%s: must be positive, got %d", key, v)
		}
	}
	positive("max_body_bytes", cfg.MaxBodyBytes)
	positive("max_record_bytes", int64(cfg.MaxRecordBytes))
	positive("max_records", int64(cfg.MaxRecords))
	positive("max_depth", int64(cfg.MaxDepth))
	positive("max_in_flight", int64(cfg.MaxInFlight))
	durations := []struct {
		key string
		v   time.Duration
	}{
		{"ack_timeout", cfg.AckTimeout},
		{"retry_after", cfg.RetryAfter},
		{"read_header_timeout", cfg.ReadHeaderTimeout},
		{"read_timeout", cfg.ReadTimeout},
		{"write_timeout", cfg.WriteTimeout},
		{"idle_timeout", cfg.IdleTimeout},
		{"shutdown_timeout", cfg.ShutdownTimeout},
	}
	for _, d := range durations {
		if d.v <= 0 {
			bad("%s: must be positive, got %s", d.key, d.v)
		}
	}
	if cfg.WriteTimeout > 0 && cfg.AckTimeout >= cfg.WriteTimeout {
		bad("write_timeout: must exceed ack_timeout (%s), got %s", cfg.AckTimeout, cfg.WriteTimeout)
	}
	return errors.Join(errs...)
}
