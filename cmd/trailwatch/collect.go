package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/ingest/file"
	"github.com/trailwatch/trailwatch/ingest/httpin"
	"github.com/trailwatch/trailwatch/ingest/kafkain"
	"github.com/trailwatch/trailwatch/ingest/redact"
	"github.com/trailwatch/trailwatch/ingest/s3"
	"github.com/trailwatch/trailwatch/ingest/syslog"
	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize"
)

// CollectConfig lists the collectors, by kind; each kind is a list so one
// process can run several.
type CollectConfig struct {
	// Files are file collectors (globs tailed with checkpoints).
	Files []file.Config `koanf:"files"`
	// Syslog are syslog listeners (UDP, TCP, TLS).
	Syslog []syslog.Config `koanf:"syslog"`
	// HTTP are HTTP receivers (NDJSON / JSON pushes).
	HTTP []httpin.Config `koanf:"http"`
	// S3 are bucket collectors (ALB/ELB/CloudTrail deliveries).
	S3 []s3.Config `koanf:"s3"`
	// Kafka are pass-through consumers of topics gateways already write.
	Kafka []kafkain.Config `koanf:"kafka"`
	// Redact replaces secrets with keyed fingerprints in every collector's
	// records before they reach Kafka. It cannot be turned off.
	Redact redact.Config `koanf:"redact"`
}

// fingerprintKeyName is the default fingerprint key file in the data dir.
const fingerprintKeyName = "fingerprint.key"

// newRedactor builds the redactor every collector's records pass through.
// The default key file (<data_dir>/fingerprint.key) is created 0600 on
// first run; a key_file the user named must exist. Keep the key: a new key
// gives every credential a new fingerprint.
func newRedactor(rc redact.Config, dataDir string) (*redact.Redactor, error) {
	if rc.Key == "" && rc.KeyFile == filepath.Join(dataDir, fingerprintKeyName) {
		if _, err := redact.LoadOrCreateKey(rc.KeyFile); err != nil {
			return nil, fmt.Errorf("collect.redact.key_file: %w", err)
		}
	}
	r, err := redact.New(rc)
	if err != nil {
		return nil, fmt.Errorf("collect.redact: %w", err)
	}
	return r, nil
}

// applyDefaults completes each listed collector with its kind's defaults
// and names what depends on the data dir.
func (c *CollectConfig) applyDefaults(dataDir string) {
	if c.Redact.Key == "" && c.Redact.KeyFile == "" {
		c.Redact.KeyFile = filepath.Join(dataDir, fingerprintKeyName)
	}
	for i := range c.Files {
		f := &c.Files[i]
		if f.Name == "" {
			f.Name = fmt.Sprintf("file%d", i)
		}
		if f.CheckpointFile == "" {
			f.CheckpointFile = filepath.Join(dataDir, "checkpoints", "file-"+f.Name+".json")
		}
		config.FillDefaults(f, file.DefaultConfig())
	}
	for i := range c.Syslog {
		if c.Syslog[i].Name == "" {
			c.Syslog[i].Name = fmt.Sprintf("syslog%d", i)
		}
		config.FillDefaults(&c.Syslog[i], syslog.DefaultConfig())
	}
	for i := range c.HTTP {
		if c.HTTP[i].Name == "" {
			c.HTTP[i].Name = fmt.Sprintf("http%d", i)
		}
		config.FillDefaults(&c.HTTP[i], httpin.DefaultConfig())
	}
	for i := range c.S3 {
		x := &c.S3[i]
		if x.Name == "" {
			x.Name = fmt.Sprintf("s3%d", i)
		}
		if x.CheckpointFile == "" {
			x.CheckpointFile = filepath.Join(dataDir, "checkpoints", "s3-"+x.Name+".json")
		}
		config.FillDefaults(x, s3.DefaultConfig())
	}
	for i := range c.Kafka {
		if c.Kafka[i].Name == "" {
			c.Kafka[i].Name = fmt.Sprintf("kafka%d", i)
		}
		config.FillDefaults(&c.Kafka[i], kafkain.DefaultConfig())
	}
}

// validate checks every collector and that every source it names resolves
// to a normalizer, so a typo fails at start, not as a DLQ full of records.
func (c *CollectConfig) validate(n NormalizeConfig) []error {
	var errs []error
	if err := c.Redact.Validate(); err != nil {
		errs = append(errs, config.Prefix("collect.redact", err))
	}
	names := map[string]string{}
	check := func(kind string, i int, name string, err error, sources ...string) {
		key := fmt.Sprintf("collect.%s[%d]", kind, i)
		if err != nil {
			errs = append(errs, config.Prefix(key, err))
		}
		if prev, dup := names[name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q already names %s", key, name, prev))
		}
		names[name] = key
		for _, s := range sources {
			if s == "" {
				continue
			}
			if _, err := normalize.Build(n.spec(s)); err != nil {
				errs = append(errs, fmt.Errorf("%s.source: %w", key, err))
			}
		}
	}
	for i, f := range c.Files {
		check("files", i, f.Name, f.Validate(), f.Source)
	}
	for i, s := range c.Syslog {
		srcs := []string{s.Source}
		for _, v := range s.Sources {
			srcs = append(srcs, v)
		}
		check("syslog", i, s.Name, s.Validate(), srcs...)
	}
	for i, h := range c.HTTP {
		srcs := []string{h.Source}
		for _, r := range h.Routes {
			srcs = append(srcs, r.Source)
		}
		check("http", i, h.Name, h.Validate(), srcs...)
	}
	for i, x := range c.S3 {
		check("s3", i, x.Name, x.Validate(), x.Source)
	}
	for i, x := range c.Kafka {
		check("kafka", i, x.Name, x.Validate(), x.Source)
	}
	if len(c.Files)+len(c.Syslog)+len(c.HTTP)+len(c.S3)+len(c.Kafka) == 0 {
		errs = append(errs, errors.New("collect: the collect stage needs at least one collector"))
	}
	return errs
}

// build constructs the collectors; none binds or reads before Run.
func (c *CollectConfig) build(log *slog.Logger) ([]collector, error) {
	var cols []collector
	add := func(name string, col ingest.Collector) {
		cols = append(cols, collector{name: name, c: col})
	}
	for i, fc := range c.Files {
		col, err := file.New(fc, log)
		if err != nil {
			return nil, fmt.Errorf("collect.files[%d]: %w", i, err)
		}
		add(fc.Name, col)
	}
	for i, sc := range c.Syslog {
		col, err := syslog.New(sc, log)
		if err != nil {
			return nil, fmt.Errorf("collect.syslog[%d]: %w", i, err)
		}
		add(sc.Name, col)
	}
	for i, hc := range c.HTTP {
		col, err := httpin.New(hc, log)
		if err != nil {
			return nil, fmt.Errorf("collect.http[%d]: %w", i, err)
		}
		add(hc.Name, col)
	}
	for i, xc := range c.S3 {
		col, err := s3.New(xc, log)
		if err != nil {
			return nil, fmt.Errorf("collect.s3[%d]: %w", i, err)
		}
		add(xc.Name, col)
	}
	for i, kc := range c.Kafka {
		col, err := kafkain.New(kc, log)
		if err != nil {
			return nil, fmt.Errorf("collect.kafka[%d]: %w", i, err)
		}
		add(kc.Name, col)
	}
	return cols, nil
}

// collector is a built collector with its configured name.
type collector struct {
	name string
	c    ingest.Collector
}

func (c collector) run(ctx context.Context, emit ingest.Emit) error { return c.c.Run(ctx, emit) }
