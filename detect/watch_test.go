package detect

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// watchEvent is what a RuleWatcher callback reported.
type watchEvent struct {
	set *RuleSet
	err error
}

// startWatch loads dir, runs a RuleWatcher on it and returns its reports;
// it stops the watcher when the test ends and checks it returned.
func startWatch(t *testing.T, dir string, interval time.Duration, reload <-chan struct{}) <-chan watchEvent {
	t.Helper()
	w, set, err := NewRuleWatcher(dir)
	if err != nil {
		t.Fatal(err)
	}
	if set.Get("one") == nil {
		t.Fatalf("initial load: %v, want rule one", set.Rules())
	}
	ctx, cancel := context.WithCancel(t.Context())
	out := make(chan watchEvent)
	done := make(chan struct{})
	send := func(e watchEvent) {
		select {
		case out <- e:
		case <-ctx.Done():
		}
	}
	go func() {
		defer close(done)
		w.Run(ctx, interval, reload,
			func(set *RuleSet) { send(watchEvent{set: set}) },
			func(err error) { send(watchEvent{err: err}) })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return out
}

// next waits for the watcher's next report.
func next(t *testing.T, ch <-chan watchEvent) watchEvent {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no report from the watcher within 10s")
	}
	return watchEvent{}
}

// writeRule replaces a rule file atomically, as editors and deployment
// tools do: a poll never sees it half-written.
func writeRule(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

const watchedRule = "id: one\ntitle: One\nwhere: http.response.status_code == 401\n"

func TestRuleWatcherReloadSignal(t *testing.T) {
	dir := t.TempDir()
	writeRule(t, dir, "one.yaml", watchedRule)
	reload := make(chan struct{})
	reports := startWatch(t, dir, 0, reload)

	steps := []struct {
		name    string
		write   func()
		wantIDs []string // nil: want an error
		wantErr string
	}{
		{"signal reloads unchanged files", func() {}, []string{"one"}, ""},
		{"bad file keeps the old set", func() {
			writeRule(t, dir, "two.yaml", "id: two\ntitle: Two\nwhere: url.pth == \"/\"\n")
		}, nil, `two.yaml:3:8: where: unknown name "url.pth"`},
		{"fixed file loads", func() {
			writeRule(t, dir, "two.yaml", "id: two\ntitle: Two\nwhere: url.path == \"/\"\n")
		}, []string{"one", "two"}, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.write()
			reload <- struct{}{}
			e := next(t, reports)
			if st.wantIDs == nil {
				if e.err == nil || !strings.Contains(e.err.Error(), st.wantErr) {
					t.Fatalf("got set %v, err %v; want error %q and no set", e.set, e.err, st.wantErr)
				}
				return
			}
			if e.err != nil {
				t.Fatalf("reload failed: %v", e.err)
			}
			var ids []string
			for _, r := range e.set.Rules() {
				ids = append(ids, r.ID)
			}
			if strings.Join(ids, ",") != strings.Join(st.wantIDs, ",") {
				t.Fatalf("loaded %v, want %v", ids, st.wantIDs)
			}
		})
	}
}

func TestRuleWatcherPollsForChanges(t *testing.T) {
	dir := t.TempDir()
	writeRule(t, dir, "one.yaml", watchedRule)
	reports := startWatch(t, dir, 5*time.Millisecond, nil)

	// A broken edit is reported once; the old set stays (apply not
	// called), and the same content is not retried on every poll.
	writeRule(t, dir, "one.yaml", strings.Replace(watchedRule, "http.response", "http.respons", 1))
	if e := next(t, reports); e.err == nil || !strings.Contains(e.err.Error(), "one.yaml:3:") {
		t.Fatalf("got set %v, err %v; want the load error of one.yaml", e.set, e.err)
	}
	writeRule(t, dir, "one.yaml", strings.Replace(watchedRule, "401", "403", 1))
	e := next(t, reports)
	if e.err != nil {
		t.Fatalf("second report is an error (retried unchanged content?): %v", e.err)
	}
	if r := e.set.Get("one"); r == nil || !strings.Contains(r.Where, "403") {
		t.Fatalf("loaded %v, want rule one with the new condition", e.set.Rules())
	}
}
