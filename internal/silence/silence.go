// Package silence keeps the silences that stop paging for an alert group:
// a matcher (rule id, and optionally one group key), an end time, who set it
// and why. Silenced alerts are still indexed; only the notifiers skip them.
//
// The store is one JSON file (by default <data_dir>/silences.json), chosen
// over a compacted Kafka topic because `trailwatch silences` must work
// against the embedded broker, which lives inside the running process.
// Writes take an exclusive advisory lock on a sibling .lock file, read,
// change, write a temporary file, fsync it and rename it over the old one,
// so a reader (the running pipeline, which re-reads the file when its size
// or modification time changes) never sees half a file, and the CLI and the
// Slack interactivity endpoint never lose each other's writes. The file is
// local: a deployment whose notify stage runs on several machines needs a
// shared path for it. Silences that ended more than a week ago are dropped
// on the next write.
package silence

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// FileName is the store's file name under the data directory.
const FileName = "silences.json"

// keepExpired is how long an ended silence stays listed.
const keepExpired = 7 * 24 * time.Hour

// ErrNotFound is returned by Expire for an unknown id.
var ErrNotFound = errors.New("silence: no such silence")

// Silence stops paging for the alerts of one rule, or of one group of it.
type Silence struct {
	// ID identifies the silence (random, 12 hex digits).
	ID string `json:"id"`
	// Rule is the rule id the silence matches; required.
	Rule string `json:"rule"`
	// Key is the canonical group key (GroupKey) matched; "" matches every
	// group of Rule.
	Key string `json:"key,omitempty"`
	// Start is when the silence was created.
	Start time.Time `json:"start"`
	// Until is when it ends.
	Until time.Time `json:"until"`
	// By is who set it ("@alice", "cli").
	By string `json:"by,omitempty"`
	// Reason says why.
	Reason string `json:"reason,omitempty"`
}

// Active reports whether the silence is in force at now.
func (s Silence) Active(now time.Time) bool { return !now.Before(s.Start) && now.Before(s.Until) }

// Matches reports whether the silence covers the group (rule, key) at now.
func (s Silence) Matches(rule, key string, now time.Time) bool {
	return s.Active(now) && s.Rule == rule && (s.Key == "" || s.Key == key)
}

// Validate reports what is missing.
func (s Silence) Validate() error {
	var errs []error
	if s.Rule == "" {
		errs = append(errs, errors.New("rule: required"))
	}
	if !s.Until.After(s.Start) {
		errs = append(errs, errors.New("until: must be after the start"))
	}
	return errors.Join(errs...)
}

// GroupKey is the canonical form of an alert's group key: its fields sorted
// by name, "name=value" joined by ",". An alert without one has key "".
func GroupKey(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

// AlertKey returns the group of an alert: its rule id and canonical key.
func AlertKey(a *schema.Alert) (rule, key string) {
	return a.Rule.ID, GroupKey(a.Trailwatch.GroupKey)
}

// Store is the silence file. It is safe for concurrent use by goroutines,
// and by processes on the same machine.
type Store struct {
	path string

	mu      sync.Mutex
	cache   []Silence
	modTime time.Time
	size    int64
	loaded  bool
}

// Open returns the store kept at path. It reads nothing yet.
func Open(path string) *Store { return &Store{path: path} }

// Path returns the file the store is kept in.
func (s *Store) Path() string { return s.path }

type fileBody struct {
	Silences []Silence `json:"silences"`
}

// List returns every silence in the file, newest first, ended ones too.
func (s *Store) List() ([]Silence, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.cache)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.After(out[j].Start) })
	return out, nil
}

// Silenced returns the active silence covering (rule, key) at now, if any.
// It re-reads the file when it changed; a file that cannot be read leaves
// the last silences read in force (and returns the error).
func (s *Store) Silenced(rule, key string, now time.Time) (Silence, bool, error) {
	err := s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sl := range s.cache {
		if sl.Matches(rule, key, now) {
			return sl, true, err
		}
	}
	return Silence{}, false, err
}

// Add stores sl, giving it an id (and Start, when zero, now), and returns it.
func (s *Store) Add(sl Silence, now time.Time) (Silence, error) {
	if sl.Start.IsZero() {
		sl.Start = now
	}
	if err := sl.Validate(); err != nil {
		return Silence{}, fmt.Errorf("silence: %w", err)
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	sl.ID = hex.EncodeToString(id[:])
	err := s.update(now, func(all []Silence) ([]Silence, error) { return append(all, sl), nil })
	return sl, err
}

// Expire ends the silence id at now. Ending an ended silence is a no-op.
func (s *Store) Expire(id string, now time.Time) error {
	return s.update(now, func(all []Silence) ([]Silence, error) {
		for i := range all {
			if all[i].ID == id {
				if all[i].Until.After(now) {
					all[i].Until = now
				}
				return all, nil
			}
		}
		return nil, fmt.Errorf("%w %q", ErrNotFound, id)
	})
}

// refresh re-reads the file when its size or modification time changed.
func (s *Store) refresh() error {
	st, err := os.Stat(s.path)
	if errors.Is(err, os.ErrNotExist) {
		s.mu.Lock()
		s.cache, s.loaded = nil, true
		s.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	s.mu.Lock()
	same := s.loaded && st.ModTime().Equal(s.modTime) && st.Size() == s.size
	s.mu.Unlock()
	if same {
		return nil
	}
	all, err := read(s.path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cache, s.modTime, s.size, s.loaded = all, st.ModTime(), st.Size(), true
	s.mu.Unlock()
	return nil
}

func read(path string) ([]Silence, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("silence: %w", err)
	}
	var body fileBody
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, fmt.Errorf("silence: %s: %w", path, err)
	}
	return body.Silences, nil
}

// update is the one read-modify-write, under the file lock.
func (s *Store) update(now time.Time, change func([]Silence) ([]Silence, error)) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	lock, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	defer func() { _ = lock.Close() }() // closing releases the flock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("silence: lock: %w", err)
	}
	all, err := read(s.path)
	if err != nil {
		return err
	}
	if all, err = change(all); err != nil {
		return err
	}
	all = slices.DeleteFunc(all, func(sl Silence) bool { return now.Sub(sl.Until) > keepExpired })
	b, err := json.MarshalIndent(fileBody{Silences: all}, "", "  ")
	if err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".silences-*")
	if err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // no-op after the rename
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("silence: %w", err)
	}
	// fsync before rename: after a crash the file is the old or the new
	// one, never empty.
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("silence: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("silence: %w", err)
	}
	s.mu.Lock()
	s.cache, s.loaded = all, false // re-stat on the next read
	s.mu.Unlock()
	return nil
}
