package silence

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestSilenceMatches(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	sl := Silence{Rule: "r1", Key: "source.ip=1.2.3.4", Start: now.Add(-time.Hour), Until: now.Add(time.Hour)}
	tests := []struct {
		name      string
		sl        Silence
		rule, key string
		at        time.Time
		want      bool
	}{
		{name: "same group", sl: sl, rule: "r1", key: "source.ip=1.2.3.4", at: now, want: true},
		{name: "other group", sl: sl, rule: "r1", key: "source.ip=9.9.9.9", at: now},
		{name: "other rule", sl: sl, rule: "r2", key: "source.ip=1.2.3.4", at: now},
		{name: "after the end", sl: sl, rule: "r1", key: "source.ip=1.2.3.4", at: now.Add(time.Hour)},
		{name: "before the start", sl: sl, rule: "r1", key: "source.ip=1.2.3.4", at: now.Add(-2 * time.Hour)},
		{name: "whole rule", sl: Silence{Rule: "r1", Start: sl.Start, Until: sl.Until}, rule: "r1", key: "anything", at: now, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sl.Matches(tt.rule, tt.key, tt.at); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGroupKeyIsCanonical(t *testing.T) {
	a := GroupKey(map[string]string{"source.ip": "1.2.3.4", "user.name": "bob"})
	b := GroupKey(map[string]string{"user.name": "bob", "source.ip": "1.2.3.4"})
	if a != b || a != "source.ip=1.2.3.4,user.name=bob" {
		t.Errorf("GroupKey = %q / %q", a, b)
	}
	if GroupKey(nil) != "" {
		t.Error("empty key not empty")
	}
}

func TestStoreAddListExpireAcrossOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	s := Open(path)
	if _, ok, err := s.Silenced("r1", "k", now); ok || err != nil {
		t.Fatalf("empty store: silenced=%v err=%v", ok, err)
	}
	added, err := s.Add(Silence{Rule: "r1", Key: "k", Until: now.Add(time.Hour), By: "@alice", Reason: "known scanner"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if added.ID == "" || !added.Start.Equal(now) {
		t.Fatalf("added = %+v", added)
	}
	// Another process (a second Store on the same file) sees it.
	other := Open(path)
	got, ok, err := other.Silenced("r1", "k", now.Add(time.Minute))
	if err != nil || !ok || got.ID != added.ID || got.By != "@alice" {
		t.Fatalf("Silenced = %+v, %v, %v", got, ok, err)
	}
	if err := other.Expire(added.ID, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Silenced("r1", "k", now.Add(3*time.Minute)); ok {
		t.Error("expired silence still in force for the first store")
	}
	if err := s.Expire("nope", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("Expire(unknown) = %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// Long-ended silences are dropped on the next write.
	if _, err := s.Add(Silence{Rule: "r2", Until: now.Add(30 * 24 * time.Hour)}, now.Add(10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if list, _ = s.List(); len(list) != 1 || list[0].Rule != "r2" {
		t.Errorf("after GC List = %+v", list)
	}
}

func TestStoreConcurrentAddsKeepEvery(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	now := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			// A Store each, as separate processes would have.
			if _, err := Open(path).Add(Silence{Rule: "r", Until: now.Add(time.Hour)}, now); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	list, err := Open(path).List()
	if err != nil || len(list) != 20 {
		t.Fatalf("List holds %d silences (%v), want 20", len(list), err)
	}
}

func TestAddRejectsIncomplete(t *testing.T) {
	s := Open(filepath.Join(t.TempDir(), FileName))
	now := time.Now()
	if _, err := s.Add(Silence{Until: now.Add(time.Hour)}, now); err == nil {
		t.Error("silence without rule accepted")
	}
	if _, err := s.Add(Silence{Rule: "r", Until: now.Add(-time.Hour)}, now); err == nil {
		t.Error("silence ending before it starts accepted")
	}
}
