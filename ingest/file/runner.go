package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// runner is the state of one Run call; only Run's goroutine touches it.
type runner struct {
	c     *Collector
	files []*tracked // in discovery order
	// saved holds checkpoint entries not yet matched to an open file; it is
	// consulted by the first scan only.
	saved      map[string]position
	savedPaths map[string]bool
	retired    []retired // checkpoint.Retired
	gz         map[fileID]*gzFile
	gzSaved    map[string]gzPosition // checkpoint.Gzip, for the first scan
	dirty      bool                  // the checkpoint on disk is behind
	lastSave   time.Time             // when the checkpoint was last written
}

func newRunner(c *Collector, cp checkpoint) *runner {
	r := &runner{c: c, saved: cp.Files, savedPaths: map[string]bool{}, retired: cp.Retired,
		gz: map[fileID]*gzFile{}, gzSaved: cp.Gzip}
	for _, p := range cp.Files {
		r.savedPaths[p.Path] = true
	}
	return r
}

// scan re-globs, opens new files, notices renames, rotation, truncation and
// replaced content, and marks files no longer matched as gone.
func (r *runner) scan(first bool) {
	c := r.c
	found := map[fileID]string{}
	var order []fileID
	gzFound := map[fileID]gzSeen{}
	var gzOrder []fileID
	for _, pat := range c.patterns {
		matches, _ := filepath.Glob(pat) // the only error, ErrBadPattern, was validated
		for _, p := range matches {
			if c.excluded(p) {
				continue
			}
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue // vanished since the glob, or a directory
			}
			id, ok := identityOf(fi)
			_, dup := found[id]
			if _, gzDup := gzFound[id]; !ok || dup || gzDup {
				continue // two patterns or a symlink reached the same file
			}
			if strings.HasSuffix(p, ".gz") {
				if c.cfg.ReadGzip {
					gzFound[id] = gzSeen{path: p, fi: fi}
					gzOrder = append(gzOrder, id)
				}
				continue
			}
			found[id] = p
			order = append(order, id)
		}
	}

	for _, t := range r.files {
		if t.gz != nil {
			continue // immutable: see scanGz
		}
		p, ok := found[t.id]
		delete(found, t.id)
		switch {
		case ok:
			if t.gone {
				c.log.Info("file matched again", "path", p)
				t.gone, t.final = false, false
			}
			if p != t.path {
				c.log.Info("file renamed, keeping its offset", "from", t.path, "to", p)
				t.path = p
				r.dirty = true
			}
			r.check(t)
		case !t.gone:
			// Renamed out of the globs or deleted. The open handle still
			// reads it; keep draining until it stops growing, since the
			// writer may not have reopened its log yet.
			c.log.Info("file no longer matched, draining it", "path", t.path)
			t.gone = true
			t.size = r.statSize(t)
		default:
			size := r.statSize(t)
			t.final = size == t.size && t.atEOF
			t.size = size
		}
	}
	for _, id := range order {
		if p, ok := found[id]; ok {
			r.open(id, p, first)
		}
	}
	if first {
		for key, pos := range r.saved {
			c.log.Info("checkpointed file not found, forgetting it", "path", pos.Path, "id", key)
			r.retire(key, pos.Gen, pos.Fingerprint, pos.FingerprintLen, pos.Stream, pos.Offset)
			r.dirty = true
		}
		r.saved, r.savedPaths = nil, nil
	}
	// After the retirements above, so a .gz compressed from a file that
	// vanished while we were down finds that file's stream.
	r.scanGz(gzFound, gzOrder, first)
	c.filesTracked.Store(int64(len(r.files)))
}

// statSize returns t's current size, or its last known size on error.
func (r *runner) statSize(t *tracked) int64 {
	fi, err := t.f.Stat()
	if err != nil {
		r.c.log.Warn("stat failed", "path", t.path, "err", err)
		return t.size
	}
	return fi.Size()
}

// open starts tracking the file at path and decides where to read from.
func (r *runner) open(id fileID, path string, first bool) {
	c := r.c
	f, err := os.Open(path)
	if err != nil {
		c.log.Warn("open failed, will retry", "path", path, "err", err)
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		c.log.Warn("stat failed, will retry", "path", path, "err", err)
		return
	}
	if got, ok := identityOf(fi); !ok || got != id {
		f.Close() // replaced between glob and open: the next scan sees the new one
		return
	}
	t := &tracked{id: id, path: path, f: f, src: f, size: fi.Size()}
	head, err := readHead(f, t.size)
	if err != nil {
		f.Close()
		c.log.Warn("read failed, will retry", "path", path, "err", err)
		return
	}

	var off int64
	key := id.String()
	if pos, ok := r.saved[key]; ok {
		delete(r.saved, key)
		switch {
		case t.size < pos.Offset:
			c.log.Warn("file shrank since the checkpoint, reading it from the start", "path", path)
			c.resets.Add(1)
			t.gen = pos.Gen + 1
		case !fingerprintMatches(head, pos.Fingerprint, pos.FingerprintLen):
			c.log.Warn("file content differs from the checkpoint (inode reused), reading it from the start", "path", path)
			c.resets.Add(1)
			t.gen = pos.Gen + 1
		default:
			off = pos.Offset
			t.gen, t.stream = pos.Gen, pos.Stream
		}
	} else {
		if first && c.cfg.StartAt == StartEnd && !r.savedPaths[path] {
			// Only files present at a first start. A new file at a
			// checkpointed path was rotated in while we were down: read it
			// whole.
			off = t.size
		}
		if i := r.findRetired(key); i >= 0 {
			// A file we stopped tracking: matched again it keeps its
			// stream; a new file on its inode gets the next generation, so
			// its lines cannot take the old file's record ids.
			old := r.retired[i]
			r.retired = slices.Delete(r.retired, i, i+1)
			t.gen = old.Gen
			if !fingerprintMatches(head, old.Fingerprint, old.FingerprintLen) {
				t.gen++
			}
		}
	}
	t.fpLen, t.fpSum = len(head), sha256.Sum256(head)
	t.rewind(off)
	if off > 0 {
		// Resume on a line boundary: if the byte before off is not a
		// newline, the rest of that line was never wanted.
		var prev [1]byte
		if _, err := f.ReadAt(prev[:], off-1); err == nil && prev[0] != '\n' {
			t.skipping = true
		}
	}
	c.log.Info("tracking file", "path", path, "offset", off, "size", t.size)
	r.files = append(r.files, t)
	r.dirty = true
}

// fingerprintMatches reports whether head starts with the fpLen bytes whose
// hex SHA-256 begins with fp (a full or shortened fingerprint).
func fingerprintMatches(head []byte, fp string, fpLen int) bool {
	if fpLen > len(head) || fp == "" {
		return false
	}
	sum := sha256.Sum256(head[:fpLen])
	return strings.HasPrefix(hex.EncodeToString(sum[:]), fp)
}

// findRetired returns the index of the retired entry for key, or -1.
func (r *runner) findRetired(key string) int {
	for i := len(r.retired) - 1; i >= 0; i-- {
		if r.retired[i].ID == key {
			return i
		}
	}
	return -1
}

// retire remembers the generation and head of a file no longer tracked. If
// its inode is later reused by a file with the same first line, the new
// file still gets another stream; without this its gen would restart at 0
// and its lines would take the old file's record ids, and be dropped as
// duplicates. Bounded: the oldest entries are forgotten.
func (r *runner) retire(key string, gen int, fp string, fpLen int, stream string, off int64) {
	if i := r.findRetired(key); i >= 0 {
		r.retired = slices.Delete(r.retired, i, i+1)
	}
	r.retired = append(r.retired, retired{ID: key, Gen: gen, Fingerprint: fp[:min(len(fp), 16)], FingerprintLen: fpLen, Stream: stream, Offset: off})
	if n := len(r.retired) - maxRetired; n > 0 {
		r.retired = slices.Delete(r.retired, 0, n)
	}
}

// check detects a truncated (copytruncate) or replaced file and rewinds it.
func (r *runner) check(t *tracked) {
	size := r.statSize(t)
	defer func() { t.size = size }()
	if size < t.readPos() {
		r.reset(t, "file truncated, reading it from the start")
		return
	}
	// The head is re-read on every scan, not only when the size changed:
	// copytruncate followed by writes back past our offset keeps the size
	// growing but changes the head.
	head, err := readHead(t.f, size)
	if err != nil {
		r.c.log.Warn("read failed", "path", t.path, "err", err)
		return
	}
	if len(head) < t.fpLen || sha256.Sum256(head[:t.fpLen]) != t.fpSum {
		r.reset(t, "file content replaced, reading it from the start")
		return
	}
	if len(head) > t.fpLen {
		t.fpLen, t.fpSum = len(head), sha256.Sum256(head)
	}
}

// reset rewinds t to offset 0 after its content changed under it.
func (r *runner) reset(t *tracked, msg string) {
	r.c.log.Warn(msg, "path", t.path, "offset", t.committed)
	r.c.resets.Add(1)
	t.rewind(0)
	t.gen++
	t.stream = "" // learned again from the new first line
	head, err := readHead(t.f, fingerprintMax)
	if err != nil {
		head = nil
	}
	t.fpLen, t.fpSum = len(head), sha256.Sum256(head)
	r.dirty = true
}

// cycle reads and emits one batch per file, gone files first since their
// lines are older. It reports whether some file has more to read now.
func (r *runner) cycle(ctx context.Context, emit ingest.Emit) bool {
	more := false
	for _, gone := range []bool{true, false} {
		for _, t := range slices.Clone(r.files) {
			if t.gone != gone {
				continue
			}
			if ctx.Err() != nil {
				return false
			}
			b := &batch{end: t.committed}
			full, err := r.fill(t, b, t.final)
			if err != nil {
				// The lines consumed before the error are in b: emit them,
				// or a later batch would commit past them.
				if t.gz == nil {
					r.c.log.Warn("read failed, will retry", "path", t.path, "err", err)
				}
				full = false
			}
			if len(b.recs) > 0 {
				if !r.c.emit(ctx, emit, b.recs) {
					return false // not acknowledged: the checkpoint stays behind
				}
				r.c.lines.Add(uint64(len(b.recs)))
				r.c.bytes.Add(uint64(b.bytes))
			}
			if b.end != t.committed {
				t.committed = b.end
				r.dirty = true
			}
			t.atEOF = !full && err == nil
			more = more || full
			switch {
			case t.gz != nil && (err != nil || !full):
				r.finishGz(t.gz, err)
			case t.final && !full && err == nil:
				r.drop(t)
			}
			// While catching up, checkpoint at most once per poll interval:
			// each write costs two fsyncs, and a later checkpoint only widens
			// what a crash re-sends (the sinks drop those duplicates).
			if r.dirty && time.Since(r.lastSave) >= r.c.cfg.PollInterval {
				r.save()
			}
		}
	}
	if r.dirty && (!more || time.Since(r.lastSave) >= r.c.cfg.PollInterval) {
		r.save()
	}
	return more
}

// drop stops tracking a drained, gone file.
func (r *runner) drop(t *tracked) {
	r.c.log.Info("rotated file drained, closing it", "path", t.path, "offset", t.committed)
	t.f.Close()
	r.files = slices.DeleteFunc(r.files, func(x *tracked) bool { return x == t })
	r.retire(t.id.String(), t.gen, hex.EncodeToString(t.fpSum[:]), t.fpLen, t.stream, t.committed)
	r.c.filesTracked.Store(int64(len(r.files)))
	r.dirty = true
}

// save writes the checkpoint. A failure is logged and retried after the
// next batch: the records are in Kafka already, so it only widens what a
// crash would re-send.
func (r *runner) save() {
	cp := checkpoint{Version: checkpointVersion, Files: make(map[string]position, len(r.files))}
	for _, t := range r.files {
		if t.gz != nil {
			continue
		}
		cp.Files[t.id.String()] = position{
			Path:           t.path,
			Offset:         t.committed,
			Size:           t.size,
			Fingerprint:    hex.EncodeToString(t.fpSum[:]),
			FingerprintLen: t.fpLen,
			Gen:            t.gen,
			Stream:         t.stream,
		}
	}
	cp.Retired = r.retired
	cp.Gzip = r.gzPositions()
	if err := saveCheckpoint(r.c.cfg.CheckpointFile, cp); err != nil {
		r.c.cpErrors.Add(1)
		r.c.log.Error("checkpoint write failed", "path", r.c.cfg.CheckpointFile, "err", err)
		r.dirty = true
		return
	}
	r.dirty = false
	r.lastSave = time.Now()
}

// close saves what is pending and closes every file.
func (r *runner) close() {
	if r.dirty {
		r.save()
	}
	for _, t := range r.files {
		t.f.Close()
	}
	r.c.filesTracked.Store(0)
}
