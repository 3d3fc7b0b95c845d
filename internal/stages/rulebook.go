package stages

import (
	"sync"
	"time"

	"github.com/trailwatch/trailwatch/detect"
)

// RuleBook is the rule set the detect stage runs, shared by its two
// handlers (events and repartition) and replaced whole on reload. Each
// handler notices a new generation at its next batch and reloads its
// detectors, which keep the state of unchanged rules.
type RuleBook struct {
	cfg detect.Config

	mu     sync.Mutex
	set    *detect.RuleSet
	router *detect.Router
	gen    uint64
}

// NewRuleBook returns a book holding set, run with cfg.
func NewRuleBook(set *detect.RuleSet, cfg detect.Config) *RuleBook {
	return &RuleBook{cfg: cfg, set: set, router: detect.NewRouter(set), gen: 1}
}

// Swap replaces the rule set; handlers pick it up at their next batch.
func (b *RuleBook) Swap(set *detect.RuleSet) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set, b.router = set, detect.NewRouter(set)
	b.gen++
}

// Set returns the rule set in use.
func (b *RuleBook) Set() *detect.RuleSet {
	set, _, _ := b.current()
	return set
}

// current returns the rule set, its split and its generation.
func (b *RuleBook) current() (*detect.RuleSet, *detect.Router, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.set, b.router, b.gen
}

// Window is how far back the current rules' state reaches, lateness
// included: what a restart replays.
func (b *RuleBook) Window() time.Duration {
	set, _, _ := b.current()
	return set.MaxWindow() + b.cfg.AllowedLateness
}

// Config returns the detector configuration.
func (b *RuleBook) Config() detect.Config { return b.cfg }
