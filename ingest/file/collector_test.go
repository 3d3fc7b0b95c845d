package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

func TestReadsExistingFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "first\nsecond\r\n\nlast\n")
		s := &sink{}
		c, _ := start(t, cfg, s)
		synctest.Wait()

		equalLines(t, s.lines(), "first", "second", "", "last")
		wantOffsets := []int64{0, 6, 14, 15}
		for i, r := range s.records() {
			if r.Offset != wantOffsets[i] || r.Origin != path || r.Source != "nginx" ||
				r.Collector != "file" || r.Host != "testhost" || !r.Observed.Equal(time.Now()) {
				t.Errorf("record %d = %+v", i, r)
			}
		}
		if got := offsetOf(t, cfg, path); got != 20 {
			t.Errorf("checkpoint offset = %d, want 20", got)
		}
		if st := c.Stats(); st.Lines != 4 || st.Bytes != 15 || st.FilesTracked != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestStartAt(t *testing.T) {
	tests := []struct {
		name     string
		startAt  string
		existing string
		appended string
		want     []string
	}{
		{name: "beginning", startAt: StartBeginning, existing: "old\n", appended: "new\n", want: []string{"old", "new"}},
		{name: "end", startAt: StartEnd, existing: "old\n", appended: "new\n", want: []string{"new"}},
		{name: "end mid-line skips the rest of that line", startAt: StartEnd, existing: "old\nhalf", appended: "-done\nnew\n", want: []string{"new"}},
		{name: "end of empty file", startAt: StartEnd, existing: "", appended: "new\n", want: []string{"new"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				cfg.StartAt = tt.startAt
				path := filepath.Join(dir, "access.log")
				writeFile(t, path, tt.existing)
				s := &sink{}
				start(t, cfg, s)
				synctest.Wait()
				appendFile(t, path, tt.appended)
				poll(cfg)
				equalLines(t, s.lines(), tt.want...)
			})
		})
	}
}

func TestStartAtEndReadsFilesCreatedLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.StartAt = StartEnd
		s := &sink{}
		start(t, cfg, s)
		synctest.Wait()
		writeFile(t, filepath.Join(dir, "new.log"), "one\ntwo\n")
		poll(cfg)
		equalLines(t, s.lines(), "one", "two")
	})
}

func TestTailsAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a\n")
		s := &sink{}
		start(t, cfg, s)
		synctest.Wait()
		var want []string
		want = append(want, "a")
		for i := range 5 {
			line := fmt.Sprintf("line-%d", i)
			appendFile(t, path, line+"\n")
			want = append(want, line)
			poll(cfg)
			equalLines(t, s.lines(), want...)
		}
	})
}

func TestPartialLineWaitsForNewline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a\nb")
		s := &sink{}
		_, stop := start(t, cfg, s)
		synctest.Wait()
		equalLines(t, s.lines(), "a")
		appendFile(t, path, "c")
		poll(cfg)
		equalLines(t, s.lines(), "a")
		stop() // the partial "bc" is not emitted at shutdown

		if got := offsetOf(t, cfg, path); got != 2 {
			t.Fatalf("checkpoint offset = %d, want 2", got)
		}
		appendFile(t, path, "\n")
		s2 := &sink{}
		start(t, cfg, s2)
		synctest.Wait()
		equalLines(t, s2.lines(), "bc")
		if r := s2.records()[0]; r.Offset != 2 {
			t.Errorf("offset = %d, want 2", r.Offset)
		}
	})
}

func TestCheckpointSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.BatchLines = 2
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "1\n2\n3\n4\n5\n")
		s := &sink{}
		_, stop := start(t, cfg, s)
		synctest.Wait()
		stop()
		equalLines(t, s.lines(), "1", "2", "3", "4", "5")

		appendFile(t, path, "6\n7\n")
		s2 := &sink{}
		start(t, cfg, s2)
		synctest.Wait()
		equalLines(t, s2.lines(), "6", "7")
		if got := offsetOf(t, cfg, path); got != 14 {
			t.Errorf("checkpoint offset = %d, want 14", got)
		}
	})
}

func TestEmitFailureRetriesSameBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a\nb\n")
		s := &sink{failNext: 3}
		c, _ := start(t, cfg, s)
		synctest.Wait()
		if got := offsetOf(t, cfg, path); got > 0 {
			t.Fatalf("checkpoint advanced to %d while emit fails", got)
		}
		// Backoff doubles from 100ms: attempts at 0, 100ms, 300ms, 700ms.
		for _, d := range []time.Duration{100, 200, 400} {
			time.Sleep(d * time.Millisecond)
			synctest.Wait()
		}
		equalLines(t, s.lines(), "a", "b")
		if got := s.calls(); got != 4 {
			t.Fatalf("emit calls = %d, want 4", got)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, want := range []time.Duration{100, 200, 400} {
			if gap := s.attempts[i+1].Sub(s.attempts[i]); gap != want*time.Millisecond {
				t.Errorf("retry %d after %v, want %v", i+1, gap, want*time.Millisecond)
			}
		}
		if st := c.Stats(); st.EmitErrors != 3 || st.Lines != 2 {
			t.Errorf("stats = %+v", st)
		}
		if got := offsetOf(t, cfg, path); got != 4 {
			t.Errorf("checkpoint offset = %d, want 4", got)
		}
	})
}

func TestBackoffIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		writeFile(t, filepath.Join(dir, "access.log"), "a\n")
		s := &sink{failNext: 10}
		start(t, cfg, s)
		time.Sleep(time.Minute)
		synctest.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := 1; i < len(s.attempts); i++ {
			if gap := s.attempts[i].Sub(s.attempts[i-1]); gap > ingest.RetryMaxBackoff {
				t.Errorf("retry %d after %v, above the %v cap", i, gap, ingest.RetryMaxBackoff)
			}
		}
		if len(s.batches) != 1 {
			t.Errorf("acknowledged batches = %d, want 1", len(s.batches))
		}
	})
}

func TestShutdownDuringRetryLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a\nb\n")
		s := &sink{failNext: 1 << 30}
		_, stop := start(t, cfg, s)
		synctest.Wait()
		time.Sleep(time.Second)
		stop()
		if got := offsetOf(t, cfg, path); got > 0 {
			t.Fatalf("checkpoint advanced to %d without an ack", got)
		}
		s2 := &sink{}
		start(t, cfg, s2)
		synctest.Wait()
		equalLines(t, s2.lines(), "a", "b")
	})
}

func TestRenameCreateRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a1\na2\n")
		w, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		s := &sink{}
		c, _ := start(t, cfg, s)
		synctest.Wait()

		// logrotate renames; the writer keeps writing to its old handle
		// until it reopens.
		if err := os.Rename(path, filepath.Join(dir, "access.log.1")); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, w, "a3\n")
		writeFile(t, path, "b1\n")
		poll(cfg)
		equalLines(t, s.lines(), "a1", "a2", "a3", "b1")

		mustWrite(t, w, "a4\n") // late write before the writer reopened
		poll(cfg)
		equalLines(t, s.lines(), "a1", "a2", "a3", "b1", "a4")
		if got := c.Stats().FilesTracked; got != 2 {
			t.Errorf("files tracked = %d while the old file may still grow, want 2", got)
		}
		poll(cfg) // idle for a whole interval: drained and closed
		if got := c.Stats().FilesTracked; got != 1 {
			t.Errorf("files tracked = %d, want 1", got)
		}
		if n := len(readCheckpoint(t, cfg).Files); n != 1 {
			t.Errorf("checkpoint holds %d files, want 1", n)
		}
		if r := s.records()[3]; r.Origin != path || r.Offset != 0 {
			t.Errorf("new file record = %+v", r)
		}
	})
}

func TestRotatedFileEmitsUnterminatedTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a\nlast-without-newline")
		s := &sink{}
		start(t, cfg, s)
		synctest.Wait()
		if err := os.Rename(path, filepath.Join(dir, "old")); err != nil {
			t.Fatal(err)
		}
		poll(cfg)
		poll(cfg)
		equalLines(t, s.lines(), "a", "last-without-newline")
	})
}

func TestRenameWithinGlobKeepsOffsetAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.Paths = []string{filepath.Join(dir, "access.log*")}
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a1\n")
		s := &sink{}
		_, stop := start(t, cfg, s)
		synctest.Wait()
		stop()

		// Rotated while the collector was down.
		rotated := filepath.Join(dir, "access.log.1")
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		appendFile(t, rotated, "a2\n")
		writeFile(t, path, "b1\n")
		s2 := &sink{}
		start(t, cfg, s2)
		synctest.Wait()
		got := s2.lines()
		if strings.Join(got, ",") != "a2,b1" && strings.Join(got, ",") != "b1,a2" {
			t.Fatalf("lines after restart = %q, want a2 and b1 once each", got)
		}
		for _, r := range s2.records() {
			if string(r.Data) == "a2" && (r.Origin != rotated || r.Offset != 3) {
				t.Errorf("rotated record = %+v", r)
			}
		}
	})
}

func TestCopyTruncate(t *testing.T) {
	tests := []struct {
		name    string
		rewrite string // written after truncation, before the next poll
		want    []string
	}{
		{name: "shorter than the offset", rewrite: "n1\n", want: []string{"old-1", "old-2", "n1"}},
		{name: "regrown past the offset", rewrite: "new-line-1\nnew-line-2\nnew-line-3\n",
			want: []string{"old-1", "old-2", "new-line-1", "new-line-2", "new-line-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				path := filepath.Join(dir, "access.log")
				writeFile(t, path, "old-1\nold-2\n")
				s := &sink{}
				c, _ := start(t, cfg, s)
				synctest.Wait()
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
				appendFile(t, path, tt.rewrite)
				poll(cfg)
				equalLines(t, s.lines(), tt.want...)
				if st := c.Stats(); st.Resets != 1 {
					t.Errorf("resets = %d, want 1", st.Resets)
				}
			})
		})
	}
}

func TestInodeReuseAtRestart(t *testing.T) {
	tests := []struct {
		name    string
		rewrite func(t *testing.T, path string)
		want    []string
	}{
		{
			name: "same inode, other content",
			rewrite: func(t *testing.T, path string) {
				writeFile(t, path, "cccc\ndddd\neeee\n") // O_TRUNC keeps the inode
			},
			want: []string{"cccc", "dddd", "eeee"},
		},
		{
			name:    "same content grown",
			rewrite: func(t *testing.T, path string) { appendFile(t, path, "eeee\n") },
			want:    []string{"eeee"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				path := filepath.Join(dir, "access.log")
				writeFile(t, path, "aaaa\nbbbb\n")
				before := inode(t, path)
				_, stop := start(t, cfg, &sink{})
				synctest.Wait()
				stop()

				tt.rewrite(t, path)
				if inode(t, path) != before {
					t.Fatal("the test needs the inode to stay the same")
				}
				s := &sink{}
				start(t, cfg, s)
				synctest.Wait()
				equalLines(t, s.lines(), tt.want...)
			})
		})
	}
}

func TestLongLines(t *testing.T) {
	const maxLine = 8
	tests := []struct {
		name      string
		writes    []string // each followed by a poll
		want      []string
		offsets   []int64
		truncated uint64
		cut       []int // indexes of the records with Truncated set
	}{
		{name: "exactly the limit", writes: []string{"12345678\nok\n"},
			want: []string{"12345678", "ok"}, offsets: []int64{0, 9}},
		{name: "limit plus CRLF", writes: []string{"12345678\r\nok\n"},
			want: []string{"12345678", "ok"}, offsets: []int64{0, 10}},
		{name: "one over", writes: []string{"123456789\nok\n"},
			want: []string{"12345678", "ok"}, offsets: []int64{0, 10}, truncated: 1, cut: []int{0}},
		{name: "far over in one write", writes: []string{strings.Repeat("x", 300<<10) + "\nok\n"},
			want: []string{"xxxxxxxx", "ok"}, offsets: []int64{0, 300<<10 + 1}, truncated: 1, cut: []int{0}},
		{name: "arriving across polls", writes: []string{"ab\nabcdefghijkl", "mnopqrstuvwxyz", "0123\nok\n"},
			want: []string{"ab", "abcdefgh", "ok"}, offsets: []int64{0, 3, 34}, truncated: 1, cut: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				cfg.MaxLineBytes = maxLine
				path := filepath.Join(dir, "access.log")
				writeFile(t, path, "")
				s := &sink{}
				c, _ := start(t, cfg, s)
				for _, w := range tt.writes {
					appendFile(t, path, w)
					poll(cfg)
				}
				equalLines(t, s.lines(), tt.want...)
				for i, r := range s.records() {
					if r.Offset != tt.offsets[i] {
						t.Errorf("record %d offset = %d, want %d", i, r.Offset, tt.offsets[i])
					}
					if want := slices.Contains(tt.cut, i); r.Truncated != want {
						t.Errorf("record %d truncated = %t, want %t", i, r.Truncated, want)
					}
				}
				if got := c.Stats().TruncatedLines; got != tt.truncated {
					t.Errorf("truncated = %d, want %d", got, tt.truncated)
				}
			})
		})
	}
}

func TestGlobsAndExclude(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(dir)
		cfg.Paths = []string{filepath.Join(dir, "*.log"), filepath.Join(sub, "*"), filepath.Join(dir, "a.*")}
		cfg.Exclude = []string{"*.gz", filepath.Join(sub, "skip-*")}
		files := map[string]bool{ // name -> read
			"a.log": true, "b.log": true, "c.log.gz": false, "a.gz": false,
			"sub/x.txt": true, "sub/skip-me.txt": false, "other.txt": false,
		}
		for name := range files {
			writeFile(t, filepath.Join(dir, name), name+"\n")
		}
		s := &sink{}
		c, _ := start(t, cfg, s)
		synctest.Wait()
		got := map[string]int{}
		for _, r := range s.records() {
			rel, _ := filepath.Rel(dir, r.Origin)
			got[rel]++
			if string(r.Data) != rel {
				t.Errorf("%s holds %q", rel, r.Data)
			}
		}
		for name, read := range files {
			if want := map[bool]int{true: 1}[read]; got[name] != want {
				t.Errorf("%s read %d times, want %d", name, got[name], want)
			}
		}
		if n := c.Stats().FilesTracked; n != 3 {
			t.Errorf("files tracked = %d, want 3", n)
		}
	})
}

func TestConcurrentAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.PollInterval = time.Millisecond
		cfg.BatchLines = 7
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "")
		s := &sink{}
		c, _ := start(t, cfg, s)

		const n = 3000
		var all strings.Builder
		for i := range n {
			fmt.Fprintf(&all, "line-%d\n", i)
		}
		data := all.String()
		w, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		// Odd-sized chunks split lines; the collector reads between them.
		for off, size := 0, 1; off < len(data); off, size = off+size, size%97+13 {
			mustWrite(t, w, data[off:min(off+size, len(data))])
			_ = c.Stats()
			time.Sleep(time.Millisecond / 2)
		}
		poll(cfg)
		got := s.lines()
		if len(got) != n {
			t.Fatalf("got %d lines, want %d", len(got), n)
		}
		for i, l := range got {
			if l != fmt.Sprintf("line-%d", i) {
				t.Fatalf("line %d = %q", i, l)
			}
		}
	})
}

func TestRunErrors(t *testing.T) {
	t.Run("corrupt checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		if err := os.MkdirAll(filepath.Dir(cfg.CheckpointFile), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, cfg.CheckpointFile, "{not json")
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Run(t.Context(), (&sink{}).emit); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("Run = %v, want a corrupt checkpoint error", err)
		}
	})
	t.Run("concurrent Run", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			c, _ := start(t, cfg, &sink{})
			synctest.Wait()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if err := c.Run(ctx, (&sink{}).emit); err == nil {
				t.Error("second concurrent Run succeeded")
			}
		})
	})
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "deep", "cp.json")
	want := checkpoint{Version: checkpointVersion, Files: map[string]position{
		"1:2": {Path: "/var/log/a.log", Offset: 10, Size: 12, Fingerprint: "ab", FingerprintLen: 12},
	}}
	for range 2 { // the second write replaces the first
		if err := saveCheckpoint(path, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := loadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("checkpoint dir holds %d entries, want 1 (temp files left?)", len(entries))
	}
}

func mustWrite(t *testing.T, f *os.File, s string) {
	t.Helper()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) fileID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := identityOf(fi)
	return id
}
