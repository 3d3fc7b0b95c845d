package file

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/trailwatch/trailwatch/ingest"
)

// lineHash is the expected "h" part of a stream id for first line l.
func lineHash(l string) string {
	sum := sha256.Sum256([]byte(l))
	return hex.EncodeToString(sum[:8])
}

// recordOf returns the only record holding data, failing if there is not
// exactly one.
func recordOf(t *testing.T, recs []ingest.Record, data string) ingest.Record {
	t.Helper()
	var found []ingest.Record
	for _, r := range recs {
		if string(r.Data) == data {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d records hold %q, want 1: %+v", len(found), data, recs)
	}
	return found[0]
}

// rewindCheckpoint rewrites the checkpoint entry of the file at path as if
// the collector had crashed before acknowledging anything after off;
// keepStream false also drops the stored stream id.
func rewindCheckpoint(t *testing.T, cfg Config, path string, off int64, keepStream bool) {
	t.Helper()
	cp := readCheckpoint(t, cfg)
	n := 0
	for k, p := range cp.Files {
		if p.Path == path {
			p.Offset = off
			if !keepStream {
				p.Stream = ""
			}
			cp.Files[k] = p
			n++
		}
	}
	if n != 1 {
		t.Fatalf("checkpoint has %d entries for %s", n, path)
	}
	if err := saveCheckpoint(cfg.CheckpointFile, cp); err != nil {
		t.Fatal(err)
	}
}

func TestStreamID(t *testing.T) {
	tests := []struct {
		name    string
		maxLine int
		startAt string
		data    string
		rotate  bool // rename the file out of the globs, so its tail is flushed
		first   string
	}{
		{name: "first line", data: "alpha\nbeta\n", first: "alpha"},
		{name: "CR of CRLF is hashed", data: "alpha\r\nbeta\r\n", first: "alpha\r"},
		{name: "empty first line", data: "\nbeta\n", first: ""},
		{name: "long first line: first max_line_bytes", maxLine: 8, data: "123456789abc\nok\n", first: "12345678"},
		{name: "first line of exactly max_line_bytes", maxLine: 8, data: "12345678\nok\n", first: "12345678"},
		{name: "start at end reads the head", startAt: StartEnd, data: "alpha\nbe", first: "alpha"},
		{name: "unterminated only line of a rotated file", data: "alpha", rotate: true, first: "alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				if tt.maxLine > 0 {
					cfg.MaxLineBytes = tt.maxLine
				}
				if tt.startAt != "" {
					cfg.StartAt = tt.startAt
				}
				path := filepath.Join(dir, "access.log")
				writeFile(t, path, tt.data)
				id := inode(t, path)
				s := &sink{}
				start(t, cfg, s)
				synctest.Wait()
				if tt.startAt == StartEnd {
					appendFile(t, path, "ta\ngamma\n")
					poll(cfg)
				}
				if tt.rotate {
					if err := os.Rename(path, filepath.Join(dir, "gone")); err != nil {
						t.Fatal(err)
					}
					poll(cfg)
					poll(cfg)
				}
				recs := s.records()
				if len(recs) == 0 {
					t.Fatal("no records")
				}
				want := fmt.Sprintf("%d:%d:0:%s", id.dev, id.ino, lineHash(tt.first))
				for i, r := range recs {
					if r.Stream != want {
						t.Errorf("record %d stream = %q, want %q", i, r.Stream, want)
					}
				}
			})
		})
	}
}

func TestStreamStableAcrossRestart(t *testing.T) {
	tests := []struct {
		name       string
		off        int64 // checkpointed offset after the simulated crash
		keepStream bool  // whether the checkpoint still holds the stream id
	}{
		{name: "resume with stored stream", off: 6, keepStream: true},
		{name: "resume without stored stream", off: 6},
		{name: "re-read from the start", off: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				path := filepath.Join(dir, "access.log")
				writeFile(t, path, "first\nsecond\n")
				s := &sink{}
				_, stop := start(t, cfg, s)
				synctest.Wait()
				stop()
				if got := readCheckpoint(t, cfg).Files[inode(t, path).String()].Stream; got != s.records()[0].Stream {
					t.Fatalf("checkpointed stream = %q, want %q", got, s.records()[0].Stream)
				}
				rewindCheckpoint(t, cfg, path, tt.off, tt.keepStream)
				appendFile(t, path, "third\n")

				s2 := &sink{}
				start(t, cfg, s2)
				synctest.Wait()
				before := recordOf(t, s.records(), "second")
				after := recordOf(t, s2.records(), "second")
				if after.ID() != before.ID() || after.Stream != before.Stream {
					t.Errorf("re-read line: id %s stream %q, before the restart id %s stream %q",
						after.ID(), after.Stream, before.ID(), before.Stream)
				}
				if third := recordOf(t, s2.records(), "third"); third.Stream != before.Stream {
					t.Errorf("new line stream = %q, want %q", third.Stream, before.Stream)
				}
			})
		})
	}
}

func TestRotationGetsNewStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "same\n")
		w, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		s := &sink{}
		start(t, cfg, s)
		synctest.Wait()

		if err := os.Rename(path, filepath.Join(dir, "access.log.1")); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, "same\n") // identical content, new inode
		mustWrite(t, w, "late\n")    // the renamed file keeps growing
		poll(cfg)
		recs := s.records()
		equalLines(t, s.lines(), "same", "late", "same")
		old, late, fresh := recs[0], recs[1], recs[2]
		if fresh.ID() == old.ID() || fresh.Stream == old.Stream {
			t.Errorf("rotated-in file reuses the old stream: old %q %s, new %q %s",
				old.Stream, old.ID(), fresh.Stream, fresh.ID())
		}
		if fresh.Offset != 0 || old.Offset != 0 {
			t.Errorf("offsets = %d, %d, want 0, 0", old.Offset, fresh.Offset)
		}
		if late.Stream != old.Stream {
			t.Errorf("renamed file's stream = %q, want it kept: %q", late.Stream, old.Stream)
		}
	})
}

func TestRenamedFileKeepsStreamAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		cfg.Paths = []string{filepath.Join(dir, "access.log*")}
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a1\na2\n")
		s := &sink{}
		_, stop := start(t, cfg, s)
		synctest.Wait()
		stop()
		rewindCheckpoint(t, cfg, path, 0, true) // crash before the ack was checkpointed

		rotated := filepath.Join(dir, "access.log.1")
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, "a1\n")
		s2 := &sink{}
		start(t, cfg, s2)
		synctest.Wait()
		var reread, fresh []ingest.Record
		for _, r := range s2.records() {
			if r.Origin == rotated {
				reread = append(reread, r)
			} else {
				fresh = append(fresh, r)
			}
		}
		if len(reread) != 2 || len(fresh) != 1 {
			t.Fatalf("re-read %d lines of the renamed file and %d of the new one, want 2 and 1", len(reread), len(fresh))
		}
		for i, r := range reread {
			if r.ID() != s.records()[i].ID() {
				t.Errorf("re-read %q has id %s, before the rename %s", r.Data, r.ID(), s.records()[i].ID())
			}
		}
		if fresh[0].ID() == s.records()[0].ID() {
			t.Error("the new file's first line has the old file's id")
		}
	})
}

func TestResetBumpsGeneration(t *testing.T) {
	tests := []struct {
		name    string
		restart bool // change the file while the collector is down
		change  func(t *testing.T, path string)
	}{
		{name: "copytruncate", change: func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			appendFile(t, path, "same\n")
		}},
		{name: "copytruncate regrown past the offset", change: func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			appendFile(t, path, "same\n"+strings.Repeat("z", 40)+"\n")
		}},
		{name: "truncated while down", restart: true, change: func(t *testing.T, path string) {
			writeFile(t, path, "same\n")
		}},
		{name: "content replaced while down", restart: true, change: func(t *testing.T, path string) {
			writeFile(t, path, "same\n"+strings.Repeat("z", 40)+"\n")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				path := filepath.Join(dir, "access.log")
				writeFile(t, path, "same\nold-2\n")
				id := inode(t, path)
				s := &sink{}
				_, stop := start(t, cfg, s)
				synctest.Wait()
				if tt.restart {
					stop()
					s = &sink{}
					tt.change(t, path)
					_, stop = start(t, cfg, s)
					synctest.Wait()
				} else {
					tt.change(t, path)
					poll(cfg)
				}
				if inode(t, path) != id {
					t.Fatal("the test needs the inode to stay the same")
				}
				stop()

				var zero []ingest.Record
				for _, r := range s.records() {
					if r.Offset == 0 {
						zero = append(zero, r)
					}
				}
				if tt.restart {
					// Only the new content was read by this run.
					if len(zero) != 1 {
						t.Fatalf("records at offset 0: %+v", zero)
					}
				} else if len(zero) != 2 || zero[0].ID() == zero[1].ID() {
					t.Fatalf("records at offset 0 = %+v, want 2 with distinct ids", zero)
				}
				want := fmt.Sprintf("%d:%d:1:%s", id.dev, id.ino, lineHash("same"))
				if got := zero[len(zero)-1].Stream; got != want {
					t.Errorf("stream after the reset = %q, want %q", got, want)
				}
				if p := readCheckpoint(t, cfg).Files[id.String()]; p.Gen != 1 || p.Stream != want {
					t.Errorf("checkpoint gen %d stream %q, want 1 %q", p.Gen, p.Stream, want)
				}
			})
		})
	}
}

func TestRetiredInodeReused(t *testing.T) {
	tests := []struct {
		name    string
		fp      func(head string) string // retired fingerprint of the file now on the inode
		wantGen int
	}{
		{name: "other content gets the next generation", wantGen: 4,
			fp: func(string) string { return "0123456789abcdef" }},
		{name: "the same file matched again keeps its stream", wantGen: 3,
			fp: func(head string) string { return lineHash(head) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testConfig(dir)
				path := filepath.Join(dir, "access.log")
				const data = "same\n"
				writeFile(t, path, data)
				id := inode(t, path)
				cp := checkpoint{Version: checkpointVersion, Files: map[string]position{}, Retired: []retired{
					{ID: "1:1", Gen: 7, Fingerprint: "00", FingerprintLen: 1},
					{ID: id.String(), Gen: 3, Fingerprint: tt.fp(data), FingerprintLen: len(data)},
				}}
				if err := saveCheckpoint(cfg.CheckpointFile, cp); err != nil {
					t.Fatal(err)
				}
				s := &sink{}
				start(t, cfg, s)
				synctest.Wait()
				want := fmt.Sprintf("%d:%d:%d:%s", id.dev, id.ino, tt.wantGen, lineHash("same"))
				if got := recordOf(t, s.records(), "same").Stream; got != want {
					t.Errorf("stream = %q, want %q", got, want)
				}
				if r := readCheckpoint(t, cfg).Retired; len(r) != 1 || r[0].ID != "1:1" {
					t.Errorf("retired = %+v, want only 1:1 left", r)
				}
			})
		})
	}
}

func TestDroppedFileIsRetired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(dir)
		path := filepath.Join(dir, "access.log")
		writeFile(t, path, "a\n")
		id := inode(t, path)
		s := &sink{}
		_, stop := start(t, cfg, s)
		synctest.Wait()
		if err := os.Rename(path, filepath.Join(dir, "old")); err != nil {
			t.Fatal(err)
		}
		poll(cfg)
		poll(cfg)
		stop()
		r := readCheckpoint(t, cfg).Retired
		if len(r) != 1 || r[0].ID != id.String() || r[0].Gen != 0 || len(r[0].Fingerprint) != 16 || r[0].FingerprintLen != 2 {
			t.Errorf("retired = %+v", r)
		}
	})
}

func TestRetiredIsBounded(t *testing.T) {
	r := &runner{}
	for i := range maxRetired + 10 {
		r.retire(fmt.Sprintf("1:%d", i), 0, strings.Repeat("a", 64), 1024, "", 0)
	}
	r.retire("1:20", 5, "ff", 2, "", 0) // again: moves to the end
	if len(r.retired) != maxRetired || r.retired[0].ID != "1:10" || r.retired[maxRetired-1].ID != "1:20" {
		t.Errorf("retired holds %d, first %+v, last %+v", len(r.retired), r.retired[0], r.retired[len(r.retired)-1])
	}
}
