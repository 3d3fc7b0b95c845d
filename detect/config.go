package detect

import (
	"errors"
	"time"
)

// Config tunes the detector's state handling.
type Config struct {
	// AllowedLateness is how far behind the newest event time seen an event
	// may be and still enter windows. Older events are counted as late
	// (Stats.Late) and skipped by threshold rules. Default 1m; 0 means only
	// in-order events count.
	AllowedLateness time.Duration `koanf:"allowed_lateness"`
	// MaxGroups bounds the number of (rule, group key) states held across
	// all rules. When a new group would exceed it, the least recently
	// touched group is evicted (Stats.Evictions): it loses its partial
	// window and its suppression. Default 1,000,000.
	MaxGroups int `koanf:"max_groups"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{AllowedLateness: time.Minute, MaxGroups: 1_000_000}
}

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.AllowedLateness < 0 {
		errs = append(errs, errors.New("allowed_lateness: must not be negative"))
	}
	if c.MaxGroups <= 0 {
		errs = append(errs, errors.New("max_groups: must be positive"))
	}
	return errors.Join(errs...)
}
