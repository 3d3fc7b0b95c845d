// Package useragent parses user_agent.original into user_agent.name,
// version, os.{name,version,full} and device.name with
// github.com/mileusna/useragent, a maintained pure-Go parser that scans
// tokens instead of running a regex list, so a miss costs about a
// microsecond. Results are kept in a bounded LRU cache, since a
// fleet's user agents repeat.
//
// device.name is the device the parser names (iPhone, iPad, ...), else
// "Spider" for bots and "Other" otherwise, as Elastic's user_agent
// processor reports them. Fields a normalizer already filled are left
// alone. It deliberately does not guess from client hints (Sec-CH-UA) and
// truncates nothing: a user agent longer than max_length is not parsed.
package useragent

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/mileusna/useragent"

	"github.com/trailwatch/trailwatch/enrich/internal/lru"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Config bounds the parser's work and memory.
type Config struct {
	// Enabled turns parsing on; default true.
	Enabled bool `koanf:"enabled"`
	// CacheSize bounds the parsed-result cache, in distinct user agents;
	// default 10000.
	CacheSize int `koanf:"cache_size"`
	// MaxLength is the longest user agent parsed, in bytes; longer ones
	// are left unparsed (they are junk or attacks); default 1024.
	MaxLength int `koanf:"max_length"`
}

// DefaultConfig returns the defaults: enabled, 10k cached, 1 KiB limit.
func DefaultConfig() Config { return Config{Enabled: true, CacheSize: 10_000, MaxLength: 1024} }

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.CacheSize < 1 {
		errs = append(errs, errors.New("cache_size: must be at least 1"))
	}
	if c.MaxLength < 1 {
		errs = append(errs, errors.New("max_length: must be at least 1"))
	}
	return errors.Join(errs...)
}

// Stats are the enricher's counters since New.
type Stats struct {
	Hits, Misses, Evictions uint64 // result cache
	CacheLen                int
	TooLong                 uint64 // user agents over max_length, not parsed
}

// Enricher is the user-agent enricher. It is safe for concurrent use.
type Enricher struct {
	max   int
	cache *lru.Cache[string, schema.UserAgent]
	log   *slog.Logger

	hits, misses, evictions, tooLong atomic.Uint64
}

// New validates cfg and returns the enricher.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Enricher{max: cfg.MaxLength, cache: lru.New[string, schema.UserAgent](cfg.CacheSize), log: logger}, nil
}

// Enrich implements enrich.Enricher. It never fails on an event; it
// returns only ctx's error, before touching the batch.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range evs {
		ua := &evs[i].UserAgent
		if ua.Original == "" || ua.Name != "" {
			continue
		}
		if len(ua.Original) > e.max {
			e.tooLong.Add(1)
			continue
		}
		p := e.parse(ua.Original)
		p.Original = ua.Original
		*ua = p
	}
	return nil
}

func (e *Enricher) parse(s string) schema.UserAgent {
	if p, ok := e.cache.Get(s); ok {
		e.hits.Add(1)
		return p
	}
	e.misses.Add(1)
	u := useragent.Parse(s)
	p := schema.UserAgent{
		Name:    u.Name,
		Version: u.Version,
		OS:      schema.UserAgentOS{Name: u.OS, Version: u.OSVersion},
	}
	switch {
	case u.OS != "" && u.OSVersion != "":
		p.OS.Full = u.OS + " " + u.OSVersion
	default:
		p.OS.Full = u.OS
	}
	switch {
	case u.Device != "":
		p.Device.Name = u.Device
	case u.Bot:
		p.Device.Name = "Spider"
	default:
		p.Device.Name = "Other"
	}
	if e.cache.Add(s, p) {
		e.evictions.Add(1)
	}
	return p
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	return Stats{Hits: e.hits.Load(), Misses: e.misses.Load(), Evictions: e.evictions.Load(), CacheLen: e.cache.Len(), TooLong: e.tooLong.Load()}
}

// Close implements enrich.Enricher; there is nothing to release.
func (e *Enricher) Close(context.Context) error { return nil }
