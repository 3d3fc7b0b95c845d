package stages

import (
	"hash/maphash"
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
//
// An id is kept as two 64-bit hashes under independent random seeds
// rather than as its string: a fixed 16 bytes without pointers, which the
// map hashes and compares quickly and the GC never scans. Two different
// ids of one window would have to collide on both (odds around 2^-128 per
// pair) to be taken for each other.
type recentIDs struct {
	ring []idKey // oldest at head once full
	head int
	n    int
	set  map[idKey]struct{}
}

// idKey is an event id's two hashes.
type idKey [2]uint64

// idSeeds are this process's hash seeds; the sets are rebuilt from input
// after a restart, so they need not persist.
var idSeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{n: n, set: make(map[idKey]struct{}, min(n, 4096))}
}

// seen records id and reports whether it was already there. Empty ids are
// never duplicates; a nil or zero-size set remembers nothing.
func (r *recentIDs) seen(id string) bool {
	if id == "" || r == nil || r.n <= 0 {
		return false
	}
	return r.seenKey(idKey{maphash.String(idSeeds[0], id), maphash.String(idSeeds[1], id)})
}

// seenBytes is seen for an id held in bytes.
func (r *recentIDs) seenBytes(id []byte) bool {
	if len(id) == 0 || r == nil || r.n <= 0 {
		return false
	}
	return r.seenKey(idKey{maphash.Bytes(idSeeds[0], id), maphash.Bytes(idSeeds[1], id)})
}

func (r *recentIDs) seenKey(k idKey) bool {
	if _, ok := r.set[k]; ok {
		return true
	}
	if len(r.ring) < r.n {
		r.ring = append(r.ring, k)
	} else {
		delete(r.set, r.ring[r.head])
		r.ring[r.head] = k
		r.head = (r.head + 1) % r.n
	}
	r.set[k] = struct{}{}
	return false
}
