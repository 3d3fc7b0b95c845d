package detect

import (
	"context"
	"crypto/sha256"
	"os"
	"slices"
	"time"
)

// RuleWatcher reloads a rule set when its files change or when asked to:
// the pipeline's hot reload. Its Run method is called once.
type RuleWatcher struct {
	dirs []string
	last [sha256.Size]byte // fingerprint of the content last loaded
}

// NewRuleWatcher loads the rules under dirs, as LoadDir does, and returns a
// watcher that reloads them whenever their content differs from what was
// loaded here. A load error is returned as LoadDir returns it.
func NewRuleWatcher(dirs ...string) (*RuleWatcher, *RuleSet, error) {
	w := &RuleWatcher{dirs: slices.Clone(dirs)}
	// Why fingerprint before loading: a file written in between changes
	// the next fingerprint, so it is loaded then rather than missed.
	w.last = fingerprint(dirs)
	set, err := LoadDir(dirs...)
	if err != nil {
		return nil, nil, err
	}
	return w, set, nil
}

// Run reloads the rules whenever their content changes (checked every
// interval; zero or less disables polling) or a value arrives on reload
// (the caller forwards SIGHUP there; nil disables it), until ctx is done.
// It blocks: run it in its own goroutine.
//
// A load that succeeds is passed to apply (typically Detector.Reload, or a
// swap of the rule set the pipeline uses). A load that fails calls onError
// with every problem found and does not call apply, so the rules in use
// stay the last good set, never part of a new one; the same content is not
// retried until it changes again or reload fires. apply and onError are
// called from Run's goroutine, one at a time.
func (w *RuleWatcher) Run(ctx context.Context, interval time.Duration, reload <-chan struct{}, apply func(*RuleSet), onError func(error)) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			w.last = fingerprint(w.dirs)
		case <-tick:
			fp := fingerprint(w.dirs)
			if fp == w.last {
				continue
			}
			w.last = fp
		}
		set, err := LoadDir(w.dirs...)
		if err != nil {
			onError(err)
			continue
		}
		apply(set)
	}
}

// fingerprint hashes the names and contents of the rule files under dirs.
// Hashing content rather than modification times catches a rewrite within
// the file system's time granularity and ignores a touch; the rule files
// are small. An error is part of the fingerprint, so a vanished directory
// counts as a change (and its load reports it).
func fingerprint(dirs []string) [sha256.Size]byte {
	h := sha256.New()
	files, err := ruleFiles(dirs)
	if err != nil {
		writeHashString(h, "error: "+err.Error())
	}
	for _, f := range files {
		writeHashString(h, f)
		data, err := os.ReadFile(f)
		if err != nil {
			writeHashString(h, "error: "+err.Error())
			continue
		}
		writeHashString(h, string(data))
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}
