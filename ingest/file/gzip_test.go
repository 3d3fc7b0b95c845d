package file

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/trailwatch/trailwatch/ingest"
)

// gzipped returns data compressed as one gzip member per element.
func gzipped(t *testing.T, members ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range members {
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// gzConfig reads dir/*.log and dir/*.gz, decompressing the latter.
func gzConfig(dir string) Config {
	cfg := testConfig(dir)
	cfg.Paths = append(cfg.Paths, filepath.Join(dir, "*.gz"))
	cfg.ReadGzip = true
	return cfg
}

// compress is logrotate's compress step: path is gzipped to path.gz, then
// removed.
func compress(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".gz", gzipped(t, string(data)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// gzEntry returns the checkpoint entry of the .gz file at path.
func gzEntry(t *testing.T, cfg Config, path string) gzPosition {
	t.Helper()
	for _, p := range readCheckpoint(t, cfg).Gzip {
		if p.Path == path {
			return p
		}
	}
	t.Fatalf("no checkpoint entry for %s", path)
	return gzPosition{}
}

func TestGzipBackfill(t *testing.T) {
	tests := []struct {
		name      string
		members   []string
		readGzip  bool
		startAt   string
		want      []string
		offsets   []int64
		wantFiles uint64
	}{
		{name: "lines and unterminated tail", members: []string{"alpha\nbeta\r\ngamma"}, readGzip: true,
			want: []string{"alpha", "beta", "gamma"}, offsets: []int64{0, 6, 12}, wantFiles: 1},
		{name: "concatenated members", members: []string{"alpha\nbe", "ta\n"}, readGzip: true,
			want: []string{"alpha", "beta"}, offsets: []int64{0, 6}, wantFiles: 1},
		{name: "empty archive", members: []string{""}, readGzip: true, wantFiles: 1},
		{name: "read_gzip off ignores archives", members: []string{"alpha\n"}},
		{name: "start_at end skips archives present at the first start", members: []string{"alpha\n"},
			readGzip: true, startAt: StartEnd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := gzConfig(dir)
				cfg.ReadGzip = tt.readGzip
				if tt.startAt != "" {
					cfg.StartAt = tt.startAt
				}
				path := filepath.Join(dir, "access.log.2.gz")
				if err := os.WriteFile(path, gzipped(t, tt.members...), 0o644); err != nil {
					t.Fatal(err)
				}
				s := &sink{}
				c, stop := start(t, cfg, s)
				synctest.Wait()
				poll(cfg) // a .gz is read once its size held still for an interval
				poll(cfg)
				equalLines(t, s.lines(), tt.want...)
				id := inode(t, path)
				for i, r := range s.records() {
					if r.Offset != tt.offsets[i] || r.Origin != path {
						t.Errorf("record %d at %s:%d, want %s:%d", i, r.Origin, r.Offset, path, tt.offsets[i])
					}
					if want := fmt.Sprintf("gz:%s:%s", id, lineHash(tt.want[0])); r.Stream != want {
						t.Errorf("record %d stream = %q, want %q", i, r.Stream, want)
					}
				}
				if got := c.Stats(); got.GzipFiles != tt.wantFiles || got.GzipErrors != 0 || got.FilesTracked != 0 {
					t.Errorf("stats = %+v, want %d gzip files, no error, nothing open", got, tt.wantFiles)
				}
				stop()
				if tt.readGzip && !gzEntry(t, cfg, path).Done {
					t.Error("checkpoint entry not done")
				}

				// Read once: a restart, or a rename, does not read it again.
				if err := os.Rename(path, filepath.Join(dir, "access.log.3.gz")); err != nil {
					t.Fatal(err)
				}
				s2 := &sink{}
				start(t, cfg, s2)
				synctest.Wait()
				poll(cfg)
				poll(cfg)
				equalLines(t, s2.lines())
			})
		})
	}
}

func TestGzipRotation(t *testing.T) {
	tests := []struct {
		name    string
		stopped bool // rotate and compress while the collector is down
		// glob access.log* and delete the uncompressed file only after the
		// .gz was read: it continues a stream still tracked.
		lateDelete bool
	}{
		{name: "while running"},
		{name: "while stopped", stopped: true},
		{name: "rotated file still tracked", lateDelete: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := gzConfig(dir)
				path := filepath.Join(dir, "access.log")
				if tt.lateDelete {
					cfg.Paths = []string{path + "*"}
				}
				writeFile(t, path, "a1\na2\n")
				s := &sink{}
				_, stop := start(t, cfg, s)
				synctest.Wait()
				if tt.stopped {
					stop()
				}

				// logrotate with compress: rename, create, compress, delete.
				appendFile(t, path, "a3\n") // not read yet when stopped
				rotated := filepath.Join(dir, "access.log.1")
				if err := os.Rename(path, rotated); err != nil {
					t.Fatal(err)
				}
				writeFile(t, path, "b1\n")
				if tt.lateDelete {
					poll(cfg) // access.log.1 tracked under its new name
					data, err := os.ReadFile(rotated)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(rotated+".gz", gzipped(t, string(data)), 0o644); err != nil {
						t.Fatal(err)
					}
					poll(cfg)
					poll(cfg)
					if err := os.Remove(rotated); err != nil {
						t.Fatal(err)
					}
				} else {
					compress(t, rotated)
				}

				s2 := s
				if tt.stopped {
					s2 = &sink{}
					start(t, cfg, s2)
					synctest.Wait()
				}
				for range 3 {
					poll(cfg)
				}
				all := s.records()
				if tt.stopped {
					all = append(all, s2.records()...)
				}
				var lines []string
				for _, r := range all {
					lines = append(lines, string(r.Data))
				}
				slices.Sort(lines)
				equalLines(t, lines, "a1", "a2", "a3", "b1")

				// The line read from the .gz keeps the id the plain file
				// would have given it, so a sink drops it if it was sent.
				a1, a3 := recordOf(t, all, "a1"), recordOf(t, all, "a3")
				want := ingest.Record{Host: a1.Host, Stream: a1.Stream, Offset: 6}
				if a3.Stream != a1.Stream || a3.ID() != want.ID() {
					t.Errorf("a3: stream %q id %s, want stream %q id %s", a3.Stream, a3.ID(), a1.Stream, want.ID())
				}
				if tt.stopped && a3.Origin != rotated+".gz" {
					t.Errorf("a3 origin = %q, want the .gz", a3.Origin)
				}
				if e := gzEntry(t, cfg, rotated+".gz"); !e.Done || e.Stream != a1.Stream || e.Offset != 9 {
					t.Errorf("gz checkpoint = %+v, want done at 9 in %q", e, a1.Stream)
				}
			})
		})
	}
}

func TestGzipRestartMidFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := gzConfig(dir)
		cfg.BatchLines = 2
		path := filepath.Join(dir, "access.log.2.gz")
		if err := os.WriteFile(path, gzipped(t, "l1\nl2\nl3\nl4\nl5\n"), 0o644); err != nil {
			t.Fatal(err)
		}

		// Kafka acknowledges the first batch, then goes down.
		s := &sink{}
		var mu sync.Mutex
		calls := 0
		emit := func(ctx context.Context, recs []ingest.Record) error {
			mu.Lock()
			calls++
			n := calls
			mu.Unlock()
			if n > 1 {
				return errors.New("broker unavailable")
			}
			return s.emit(ctx, recs)
		}
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx, emit) }()
		synctest.Wait()
		poll(cfg)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run = %v", err)
		}
		equalLines(t, s.lines(), "l1", "l2")
		if e := gzEntry(t, cfg, path); e.Done || e.Offset != 6 {
			t.Fatalf("checkpoint = %+v, want offset 6, not done", e)
		}

		s2 := &sink{}
		start(t, cfg, s2)
		synctest.Wait()
		poll(cfg)
		poll(cfg)
		equalLines(t, s2.lines(), "l3", "l4", "l5")
		if a, b := s.records()[0].Stream, s2.records()[0].Stream; a != b {
			t.Errorf("stream after restart = %q, want %q", b, a)
		}
		if r := s2.records()[0]; r.Offset != 6 {
			t.Errorf("l3 offset = %d, want 6", r.Offset)
		}
	})
}

func TestGzipCorrupt(t *testing.T) {
	good := "g1\ng2\n"
	full := gzipped(t, strings.Repeat("x-line\n", 1000))
	badCRC := gzipped(t, "c1\nc2\n")
	badCRC[len(badCRC)-8] ^= 0xff // the CRC-32 in the trailer
	tests := []struct {
		name     string
		data     []byte
		maxBytes int64
	}{
		{name: "not gzip", data: []byte("plain text\n")},
		{name: "truncated", data: full[:len(full)/2]},
		{name: "bad checksum", data: badCRC},
		{name: "empty file", data: nil},
		{name: "over max_gzip_bytes", data: full, maxBytes: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := gzConfig(dir)
				if tt.maxBytes > 0 {
					cfg.MaxGzipBytes = tt.maxBytes
				}
				bad := filepath.Join(dir, "a.gz")
				if err := os.WriteFile(bad, tt.data, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "b.gz"), gzipped(t, good), 0o644); err != nil {
					t.Fatal(err)
				}
				log := filepath.Join(dir, "access.log")
				writeFile(t, log, "p1\n")
				s := &sink{}
				c, stop := start(t, cfg, s)
				synctest.Wait()
				for range 3 {
					poll(cfg)
				}
				appendFile(t, log, "p2\n")
				poll(cfg)
				var got []string
				for _, l := range s.lines() {
					if !strings.HasPrefix(l, "x-line") && !strings.HasPrefix(l, "c") {
						got = append(got, l) // what a.gz yields before failing may vary
					}
				}
				equalLines(t, got, "p1", "g1", "g2", "p2")
				if st := c.Stats(); st.GzipErrors != 1 || st.GzipFiles != 1 {
					t.Errorf("stats = %+v, want 1 gzip error, 1 gzip file", st)
				}
				stop()
				if !gzEntry(t, cfg, bad).Failed {
					t.Error("checkpoint does not mark the file failed")
				}

				// Not retried after a restart while unchanged.
				c2, _ := start(t, cfg, &sink{})
				synctest.Wait()
				poll(cfg)
				poll(cfg)
				if n := c2.Stats().GzipErrors; n != 0 {
					t.Errorf("restart retried the unchanged file: %d errors", n)
				}
			})
		})
	}
}

// A .gz still being written (compress in progress) fails as truncated, and
// is read on from where it stopped once it grew.
func TestGzipCompletedLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := gzConfig(dir)
		var want []string
		var content strings.Builder
		for i := range 20000 {
			l := fmt.Sprintf("line %d %x", i, i*7919)
			want = append(want, l)
			content.WriteString(l + "\n")
		}
		full := gzipped(t, content.String())
		path := filepath.Join(dir, "access.log.1.gz")
		if err := os.WriteFile(path, full[:len(full)*3/4], 0o644); err != nil {
			t.Fatal(err)
		}
		s := &sink{}
		c, _ := start(t, cfg, s)
		synctest.Wait()
		poll(cfg)
		poll(cfg)
		if c.Stats().GzipErrors != 1 {
			t.Fatalf("stats = %+v, want the truncated file counted", c.Stats())
		}
		partial := len(s.lines())
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, f, string(full[len(full)*3/4:]))
		f.Close()
		for range 3 {
			poll(cfg)
		}
		equalLines(t, s.lines(), want...)
		if st := c.Stats(); st.GzipFiles != 1 || partial == 0 {
			t.Errorf("stats = %+v, %d lines before completion; want 1 file done and some lines first", st, partial)
		}
	})
}
