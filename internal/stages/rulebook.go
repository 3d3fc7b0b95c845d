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

// recentIDs remembers the last n event ids of one partition, so an event
// that reached a topic twice (a producer retried after a crash) is counted
// once. It is a function of the input sequence, so a warm-up rebuilds it
// exactly.
type recentIDs struct {
	ring []string // oldest at head once full
	head int
	n    int
	set  map[string]struct{}
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{n: n, set: make(map[string]struct{}, min(n, 4096))}
}

// seen records id and reports whether it was already there. Empty ids are
// never duplicates; a nil or zero-size set remembers nothing.
func (r *recentIDs) seen(id string) bool {
	if id == "" || r == nil || r.n <= 0 {
		return false
	}
	if _, ok := r.set[id]; ok {
		return true
	}
	if len(r.ring) < r.n {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.head])
		r.ring[r.head] = id
		r.head = (r.head + 1) % r.n
	}
	r.set[id] = struct{}{}
	return false
}
