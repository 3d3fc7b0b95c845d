package file

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
)

// gzState is where reading of one .gz file stands.
type gzState int

const (
	// gzWaiting: seen, not yet read; starts once its size held still for a
	// poll interval and no other .gz is being read.
	gzWaiting gzState = iota
	// gzReading: open and read by the cycle like a plain file.
	gzReading
	// gzDone: every line emitted (or skipped by start_at: end).
	gzDone
	// gzFailed: decompression failed; retried only if the file changes.
	gzFailed
)

// gzFile is the state of one .gz file matched by the globs.
type gzFile struct {
	id          fileID
	path        string
	size, mtime int64 // at the last scan
	stable      bool  // size and mtime unchanged since the scan before
	fp          string
	fpLen       int // fp is the hex SHA-256 of the first fpLen compressed bytes
	state       gzState
	offset      int64  // committed decompressed offset, while not reading
	stream      string // "" until reading began
	skipNew     bool   // start_at end at the first scan: read it only if it continues a known stream
	t           *tracked
}

// gzSeen is a .gz file found by one scan.
type gzSeen struct {
	path string
	fi   fs.FileInfo
}

// scanGz updates the .gz files found by a scan and starts reading the next
// one when none is being read: one at a time, so a backfill of many
// archives holds one decompressor.
func (r *runner) scanGz(found map[fileID]gzSeen, order []fileID, first bool) {
	c := r.c
	busy := false
	for id, g := range r.gz {
		if g.state == gzReading {
			busy = true // a deleted file is still read through its handle
			continue
		}
		if _, ok := found[id]; !ok {
			delete(r.gz, id)
			r.dirty = true
		}
	}
	for _, id := range order {
		s := found[id]
		size, mtime := s.fi.Size(), s.fi.ModTime().UnixNano()
		g := r.gz[id]
		if g == nil {
			g = &gzFile{id: id, path: s.path, size: size, mtime: mtime}
			r.gz[id] = g
			r.dirty = true
			if pos, ok := r.gzSaved[id.String()]; ok {
				r.restoreGz(g, pos)
			} else if first && c.cfg.StartAt == StartEnd {
				g.skipNew = true
			}
			continue
		}
		if s.path != g.path {
			c.log.Info("gzip file renamed", "from", g.path, "to", s.path)
			g.path = s.path
			if g.t != nil {
				g.t.path = s.path
			}
			r.dirty = true
		}
		changed := size != g.size || mtime != g.mtime
		g.size, g.mtime = size, mtime
		switch g.state {
		case gzWaiting:
			g.stable = !changed
		case gzDone, gzFailed:
			if changed {
				c.log.Info("gzip file changed, reading it again", "path", g.path)
				r.gzChanged(g)
			}
		}
	}
	r.gzSaved = nil
	if busy {
		return
	}
	for _, id := range order {
		if g := r.gz[id]; g.state == gzWaiting && g.stable {
			r.startGz(g)
			if g.state == gzReading {
				return
			}
		}
	}
}

// restoreGz applies a checkpoint entry to g if the file still has the
// checkpointed head; a changed file is read on from the entry's offset.
func (r *runner) restoreGz(g *gzFile, pos gzPosition) {
	head, err := readHeadOf(g.path)
	if err != nil || !fingerprintMatches(head, pos.Fingerprint, pos.FingerprintLen) {
		return // another file on that inode: read it as new
	}
	g.fp, g.fpLen, g.offset, g.stream = pos.Fingerprint, pos.FingerprintLen, pos.Offset, pos.Stream
	switch {
	case pos.Size != g.size || pos.ModTime != g.mtime:
		g.state = gzWaiting
	case pos.Done:
		g.state = gzDone
	case pos.Failed:
		g.state = gzFailed
	}
}

// gzChanged handles a done or failed .gz whose size or mtime changed: with
// the same head it is read on from its offset (a file still being written
// when it failed), else it is another file and read from the start.
func (r *runner) gzChanged(g *gzFile) {
	g.state, g.stable = gzWaiting, false
	r.dirty = true
	head, err := readHeadOf(g.path)
	if err == nil && fingerprintMatches(head, g.fp, g.fpLen) {
		return
	}
	g.fp, g.fpLen, g.offset, g.stream = "", 0, 0, ""
}

// readHeadOf returns the first KiB of the file at path.
func readHeadOf(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readHead(f, fingerprintMax)
}

// startGz opens g and queues it for reading. A .gz new to the checkpoint
// whose decompressed head is that of a stream read before (the file it was
// compressed from) continues that stream from its committed offset, so
// the lines already emitted are not read again and the others get the ids
// the uncompressed file would have given them.
func (r *runner) startGz(g *gzFile) {
	c := r.c
	f, err := os.Open(g.path)
	if err != nil {
		c.log.Warn("open failed, will retry", "path", g.path, "err", err)
		return
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		c.log.Warn("stat failed, will retry", "path", g.path, "err", err)
		return
	}
	if got, ok := identityOf(fi); !ok || got != g.id {
		f.Close() // replaced since the scan: the next scan sees the new file
		return
	}
	head, err := readHead(f, fingerprintMax)
	if err != nil {
		f.Close()
		c.log.Warn("read failed, will retry", "path", g.path, "err", err)
		return
	}
	if g.fp != "" && !fingerprintMatches(head, g.fp, g.fpLen) {
		g.offset, g.stream = 0, ""
	}
	sum := sha256.Sum256(head)
	g.fp, g.fpLen = hex.EncodeToString(sum[:]), len(head)
	src := &gzSource{f: f, path: g.path, limit: c.cfg.MaxGzipBytes}
	t := &tracked{id: g.id, path: g.path, f: f, src: src, gz: g, size: fi.Size(), final: true}
	if g.stream == "" {
		if !r.learnGzStream(g, src) {
			f.Close()
			return
		}
	}
	if g.state == gzDone {
		f.Close()
		return
	}
	t.stream = g.stream
	t.rewind(g.offset)
	if g.offset > 0 {
		var prev [1]byte
		if _, err := src.ReadAt(prev[:], g.offset-1); err == nil && prev[0] != '\n' {
			t.skipping = true
		}
	}
	c.log.Info("reading gzip file", "path", g.path, "offset", g.offset, "stream", g.stream)
	g.state, g.t = gzReading, t
	r.files = append(r.files, t)
	r.dirty = true
}

// learnGzStream sets g.stream and g.offset from the decompressed head, or
// marks g done (start_at end) or failed. It reports whether to read g.
func (r *runner) learnGzStream(g *gzFile, src *gzSource) bool {
	c := r.c
	maxLine := c.cfg.MaxLineBytes
	head := make([]byte, max(maxLine, fingerprintMax))
	n, err := src.ReadAt(head, 0)
	eof := errors.Is(err, io.EOF)
	if err != nil && !eof {
		r.gzFailed(g, err)
		return false
	}
	head = head[:n]
	h, _ := firstLineHash(head, maxLine, eof) // head is full or the whole stream
	if stream, off, ok := r.knownStream(head, h); ok {
		c.log.Info("gzip file continues a stream already read, resuming it",
			"path", g.path, "stream", stream, "offset", off)
		g.stream, g.offset = stream, off
		return true
	}
	if g.skipNew {
		c.log.Info("skipping gzip file present at the first start (start_at: end)", "path", g.path)
		g.state = gzDone
		r.dirty = true
		return true
	}
	g.stream, g.offset = "gz:"+g.id.String()+":"+h, 0
	return true
}

// knownStream returns the stream and committed offset of a plain file,
// tracked or retired, whose first line hashes to h and whose head
// fingerprint matches head.
func (r *runner) knownStream(head []byte, h string) (string, int64, bool) {
	suffix := ":" + h
	for _, t := range r.files {
		if t.gz == nil && strings.HasSuffix(t.stream, suffix) && t.fpLen > 0 && t.fpLen <= len(head) &&
			sha256.Sum256(head[:t.fpLen]) == t.fpSum {
			return t.stream, t.committed, true
		}
	}
	for i := len(r.retired) - 1; i >= 0; i-- {
		e := r.retired[i]
		if strings.HasSuffix(e.Stream, suffix) && fingerprintMatches(head, e.Fingerprint, e.FingerprintLen) {
			return e.Stream, e.Offset, true
		}
	}
	return "", 0, false
}

// finishGz stops reading g: done at the end of its stream, failed on err.
func (r *runner) finishGz(g *gzFile, err error) {
	t := g.t
	t.f.Close()
	r.files = slices.DeleteFunc(r.files, func(x *tracked) bool { return x == t })
	r.c.filesTracked.Store(int64(len(r.files)))
	g.t, g.offset = nil, t.committed
	if err != nil {
		r.gzFailed(g, err)
		return
	}
	r.c.log.Info("gzip file read", "path", g.path, "offset", g.offset)
	r.c.gzFiles.Add(1)
	g.state = gzDone
	r.dirty = true
}

// gzFailed marks g failed: counted, logged, skipped until it changes.
func (r *runner) gzFailed(g *gzFile, err error) {
	r.c.gzErrors.Add(1)
	r.c.log.Warn("gzip file unreadable, skipping it", "path", g.path, "offset", g.offset, "err", err)
	g.state = gzFailed
	r.dirty = true
}

// gzPositions returns the checkpoint entries of the .gz files, nil if none.
func (r *runner) gzPositions() map[string]gzPosition {
	if len(r.gz) == 0 {
		return nil
	}
	m := make(map[string]gzPosition, len(r.gz))
	for id, g := range r.gz {
		off := g.offset
		if g.t != nil {
			off = g.t.committed
		}
		m[id.String()] = gzPosition{
			Path: g.path, Offset: off, Size: g.size, ModTime: g.mtime,
			Fingerprint: g.fp, FingerprintLen: g.fpLen, Stream: g.stream,
			Done: g.state == gzDone, Failed: g.state == gzFailed,
		}
	}
	return m
}

// gzSource reads the decompressed stream of a .gz file as an io.ReaderAt.
// Reads are expected in sequence; a read behind the current position
// decompresses again from the start, one ahead of it skips forward. Both
// are streaming: memory stays bounded whatever the file size.
type gzSource struct {
	f       *os.File
	path    string
	limit   int64 // max_gzip_bytes
	zr      *gzip.Reader
	pos     int64 // decompressed offset of the next byte zr yields
	scratch []byte
	// pending is an error met after some bytes were read: those bytes are
	// returned first (the lines before a corruption are good), the error
	// by the next read at pos.
	pending error
}

// ReadAt reads len(p) bytes at decompressed offset off. At the end of the
// stream it returns fewer with io.EOF. Errors other than io.EOF name the
// file. Unlike io.ReaderAt, a read cut short by an error returns the bytes
// before it with a nil error; the next read at the following offset
// returns the error.
func (s *gzSource) ReadAt(p []byte, off int64) (int, error) {
	if s.pending != nil && off == s.pos {
		return 0, s.pending
	}
	if s.zr == nil || off < s.pos || s.pending != nil {
		s.pending = nil
		sr := io.NewSectionReader(s.f, 0, math.MaxInt64)
		var err error
		if s.zr == nil {
			s.zr, err = gzip.NewReader(sr)
		} else {
			err = s.zr.Reset(sr)
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("empty file")
		}
		if err != nil {
			s.zr = nil
			return 0, s.wrap(err)
		}
		s.pos = 0
	}
	for off > s.pos {
		if s.scratch == nil {
			s.scratch = make([]byte, 32<<10)
		}
		if _, err := s.read(s.scratch[:min(int64(len(s.scratch)), off-s.pos)]); err != nil {
			return 0, s.wrap(err)
		}
	}
	n, err := s.read(p)
	if n > 0 && err != nil && !errors.Is(err, io.EOF) {
		s.pending = s.wrap(err)
		return n, nil
	}
	return n, s.wrap(err)
}

// read fills p from the decompressor, stopping at an error or the limit.
func (s *gzSource) read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := s.zr.Read(p[n:])
		n += m
		s.pos += int64(m)
		if s.pos > s.limit {
			return n, fmt.Errorf("decompressed size exceeds max_gzip_bytes (%d)", s.limit)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// wrap names the file in err, except for nil and io.EOF.
func (s *gzSource) wrap(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	return fmt.Errorf("gzip %s: %w", s.path, err)
}
