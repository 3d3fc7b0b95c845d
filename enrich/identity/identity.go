// Package identity fills trailwatch.identity (owner, team, service) from an
// inventory file that maps credential fingerprints, credential ids (AWS
// access key ids) and user names to who owns them.
//
// An event is looked up by trailwatch.credential.fingerprint, then
// trailwatch.credential.id, then user.name; the first hit sets
// trailwatch.identity with known=true. An event that has a credential
// fingerprint but no hit is tagged "identity:unknown" (its identity stays
// empty, so known reads false); an event with no credential and an unlisted
// user is left alone. An identity the normalizer already set is never
// overwritten, and enriching a batch twice gives the same result.
//
// The file is YAML (.yaml, .yml) or CSV (.csv), see docs/enrichment.md. It
// is re-read when its modification time or size changes; a version that
// fails to read or parse keeps the previous inventory, and the error is
// logged with file:line and counted. It deliberately does not query a
// directory or IAM over the network: export the inventory to a file.
package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/enrich/internal/mark"
	"github.com/trailwatch/trailwatch/enrich/internal/reload"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// UnknownTag tags events whose credential fingerprint the inventory lacks.
const UnknownTag = "identity:unknown"

// Config names the inventory file and how often it is checked.
type Config struct {
	// File is the inventory, YAML (.yaml, .yml) or CSV (.csv).
	File string `koanf:"file"`
	// ReloadInterval is how often the file is checked for change; default
	// 30s, 0 never reloads.
	ReloadInterval time.Duration `koanf:"reload_interval"`
}

// DefaultConfig returns no file (disabled) and a 30-second reload check.
func DefaultConfig() Config { return Config{ReloadInterval: 30 * time.Second} }

// Enabled reports whether an inventory file is configured.
func (c Config) Enabled() bool { return c.File != "" }

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.File == "" {
		errs = append(errs, errors.New("file: required"))
	} else if _, err := formatOf(c.File); err != nil {
		errs = append(errs, fmt.Errorf("file: %w", err))
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, errors.New("reload_interval: must not be negative"))
	}
	return errors.Join(errs...)
}

// Stats are the enricher's counters since New.
type Stats struct {
	Entries               int    // entries in the current inventory
	Known, Unknown        uint64 // events identified; events tagged identity:unknown
	Reloads, ReloadErrors uint64 // versions swapped in; reloads that failed
}

// Enricher is the identity enricher. It is safe for concurrent use.
type Enricher struct {
	cfg  Config
	log  *slog.Logger
	inv  atomic.Pointer[inventory]
	mu   sync.Mutex // serializes reloads
	loop *reload.Loop

	known, unknown, reloads, reloadErrors atomic.Uint64
}

// New validates cfg, loads the inventory and starts the reload ticker.
// Close stops it.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	inv, err := load(cfg.File)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	e := &Enricher{cfg: cfg, log: logger}
	e.inv.Store(inv)
	e.loop = reload.Start(cfg.ReloadInterval, func() {
		if _, err := e.Reload(); err != nil {
			e.log.Error("identity reload failed, keeping the previous inventory", "err", err)
		}
	})
	return e, nil
}

// Reload re-reads the inventory if the file changed and swaps it in; it
// reports whether it did. On error the previous inventory stays in use and
// the error names file:line where it can.
func (e *Enricher) Reload() (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.inv.Load()
	if st, err := reload.Stat(e.cfg.File); err == nil && st == old.stamp {
		return false, nil
	}
	inv, err := load(e.cfg.File)
	if err != nil {
		e.reloadErrors.Add(1)
		return false, err
	}
	e.inv.Store(inv)
	e.reloads.Add(1)
	return true, nil
}

// Enrich implements enrich.Enricher. It returns only ctx's error, before
// touching the batch.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	inv := e.inv.Load()
	var known, unknown uint64
	for i := range evs {
		ev := &evs[i]
		if ev.Trailwatch.Identity != (schema.Identity{}) {
			continue
		}
		c := &ev.Trailwatch.Credential
		if id, ok := inv.lookup(c.Fingerprint, c.ID, ev.User.Name); ok {
			ev.Trailwatch.Identity = id
			// A retry after the inventory learnt the credential.
			ev.Tags = slices.DeleteFunc(ev.Tags, func(t string) bool { return t == UnknownTag })
			known++
			continue
		}
		if c.Fingerprint != "" {
			mark.Tag(ev, UnknownTag)
			unknown++
		}
	}
	e.known.Add(known)
	e.unknown.Add(unknown)
	return nil
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	return Stats{
		Entries: e.inv.Load().entries,
		Known:   e.known.Load(), Unknown: e.unknown.Load(),
		Reloads: e.reloads.Load(), ReloadErrors: e.reloadErrors.Load(),
	}
}

// Close stops the reload ticker, waiting for a reload in progress or ctx.
// It is idempotent; Enrich keeps using the last inventory after it.
func (e *Enricher) Close(ctx context.Context) error { return e.loop.Stop(ctx) }

type format int

const (
	formatYAML format = iota + 1
	formatCSV
)

func formatOf(path string) (format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		return formatYAML, nil
	case ".csv":
		return formatCSV, nil
	}
	return 0, fmt.Errorf("%q: must end in .yaml, .yml or .csv", path)
}
