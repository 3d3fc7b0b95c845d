package file

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

const (
	// fingerprintMax is how much of a file's head identifies its content.
	fingerprintMax = 1024
	// readChunk is the size of one read from a file.
	readChunk = 64 << 10
)

// tracked is one open file and where reading it stands.
type tracked struct {
	id   fileID
	path string // absolute path where the file was last seen
	f    *os.File
	// src reads the content: f itself, or for a .gz file its decompressed
	// stream (then gz is its state as well).
	src io.ReaderAt
	gz  *gzFile

	// committed is the offset after the last line Emit acknowledged: what
	// the checkpoint stores.
	committed int64
	// buf[start:end] holds bytes read but not consumed; bufPos is the file
	// offset of buf[start].
	buf        []byte
	start, end int
	bufPos     int64
	observed   time.Time // when the bytes in buf were read

	// skipping discards bytes up to the next newline: reading resumed in
	// the middle of a line (start_at end, or an odd checkpoint).
	skipping bool
	// long holds the kept head of a line longer than max_line_bytes while
	// the rest is discarded; longAt is that line's offset.
	long   []byte
	longAt int64

	fpLen int // head bytes covered by fpSum
	fpSum [sha256.Size]byte
	// gen counts the resets of this dev:inode (see position.Gen); stream
	// is Record.Stream, "" until the first line is known.
	gen    int
	stream string
	size   int64 // size at the last scan

	gone  bool // no longer matched by the globs: renamed away or deleted
	final bool // gone and idle: drain, emit any unterminated tail, close
	atEOF bool // the last read reached the end of the file
}

// readPos is the file offset up to which bytes were read.
func (t *tracked) readPos() int64 { return t.bufPos + int64(t.end-t.start) }

// consume drops n bytes from the front of the buffer.
func (t *tracked) consume(n int) {
	t.start += n
	t.bufPos += int64(n)
}

// rewind forgets buffered state and restarts reading at off.
func (t *tracked) rewind(off int64) {
	t.committed, t.bufPos = off, off
	t.start, t.end = 0, 0
	t.long, t.skipping = nil, false
}

// readMore appends the next chunk of the file to the buffer, returning how
// many bytes came; 0 means end of file for now.
func (t *tracked) readMore(maxLine int) (int, error) {
	if t.buf == nil {
		// Room for a whole max-length line with "\r" plus a chunk.
		t.buf = make([]byte, maxLine+2+readChunk)
	}
	if t.start > 0 {
		t.end = copy(t.buf, t.buf[t.start:t.end])
		t.start = 0
	}
	n, err := t.src.ReadAt(t.buf[t.end:], t.readPos())
	t.end += n
	if n > 0 {
		t.observed = time.Now()
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// firstLineHash returns the first 16 hex digits of the SHA-256 of the first
// line in head (the bytes before the first "\n", at most maxLine of them).
// It reports false if head does not hold that line yet; with eof set, head
// is the whole file and an unterminated first line counts.
func firstLineHash(head []byte, maxLine int, eof bool) (string, bool) {
	cut := head[:min(len(head), maxLine)]
	if i := bytes.IndexByte(cut, '\n'); i >= 0 {
		cut = cut[:i]
	} else if len(head) < maxLine && !eof {
		return "", false
	}
	sum := sha256.Sum256(cut)
	return hex.EncodeToString(sum[:8]), true
}

// learnStream sets t.stream from the file's first line. It is called only
// once a line is about to be emitted, so that line is complete (or, with
// eof, the file ends); the head is taken from the buffer when it holds
// offset 0, else read from the file.
func (r *runner) learnStream(t *tracked, eof bool) error {
	maxLine := r.c.cfg.MaxLineBytes
	var head []byte
	switch {
	case t.bufPos == 0 && t.long == nil:
		head = t.buf[t.start:t.end]
	case t.long != nil && t.longAt == 0:
		head = t.long
	default:
		head = make([]byte, maxLine)
		n, err := t.src.ReadAt(head, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		head = head[:n]
	}
	h, ok := firstLineHash(head, maxLine, eof)
	if !ok {
		// Only if the file changed under us; the next scan resets it.
		return errors.New("first line no longer readable")
	}
	t.stream = t.id.String() + ":" + strconv.Itoa(t.gen) + ":" + h
	r.dirty = true
	return nil
}

// readHead returns up to n bytes from the start of f.
func readHead(f *os.File, n int64) ([]byte, error) {
	b := make([]byte, min(n, fingerprintMax))
	m, err := f.ReadAt(b, 0)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:m], err
}

// batch is the records read from one file for one Emit call.
type batch struct {
	recs  []ingest.Record
	bytes int
	// end is the offset after the last complete line consumed (emitted or
	// skipped): the file's committed offset once the batch is acknowledged.
	end   int64
	arena []byte
}

// copyData copies p into the batch's arena so records never alias the read
// buffer, which is overwritten by the next read.
func (b *batch) copyData(p []byte) []byte {
	if cap(b.arena)-len(b.arena) < len(p) {
		b.arena = make([]byte, 0, max(len(p), min(2*cap(b.arena), 1<<20), 4<<10))
	}
	s := len(b.arena)
	b.arena = append(b.arena, p...)
	return b.arena[s:len(b.arena):len(b.arena)]
}

// fill reads lines of t into b until b is full (true) or the file has no
// more complete line (false). With final set, an unterminated last line is
// emitted as well: the file is gone and nothing will complete it.
func (r *runner) fill(t *tracked, b *batch, final bool) (bool, error) {
	maxLine := r.c.cfg.MaxLineBytes
	for {
		data := t.buf[t.start:t.end]
		i := bytes.IndexByte(data, '\n')
		// A record is near: learn the stream before consuming anything,
		// so an error leaves the buffer as it was.
		if t.stream == "" && (i >= 0 || t.long != nil || len(data) > maxLine+1) {
			if err := r.learnStream(t, false); err != nil {
				return false, err
			}
		}
		switch {
		case (t.skipping || t.long != nil) && i < 0:
			t.consume(len(data))
		case t.skipping || t.long != nil:
			t.consume(i + 1)
			if t.long != nil {
				r.add(b, t, t.long, t.longAt, true)
				t.long = nil
			}
			t.skipping = false
			b.end = t.bufPos
			if r.full(b) {
				return true, nil
			}
			continue
		case i >= 0:
			at := t.bufPos
			t.consume(i + 1)
			line := bytes.TrimSuffix(data[:i], []byte{'\r'})
			trunc := len(line) > maxLine
			if trunc {
				line = line[:maxLine]
			}
			r.add(b, t, line, at, trunc)
			b.end = t.bufPos
			if r.full(b) {
				return true, nil
			}
			continue
		case len(data) > maxLine+1:
			// No newline within max_line_bytes (+1 for a "\r"): keep the
			// head and discard until the newline, so the buffer stays
			// bounded whatever the line length.
			t.long = append([]byte(nil), data[:maxLine]...)
			t.longAt = t.bufPos
			t.consume(len(data))
		}
		n, err := t.readMore(maxLine)
		if err != nil {
			return false, err
		}
		if n > 0 {
			continue
		}
		if final {
			if t.stream == "" && (t.long != nil || (t.end > t.start && !t.skipping)) {
				if err := r.learnStream(t, true); err != nil {
					return false, err
				}
			}
			switch {
			case t.long != nil:
				r.add(b, t, t.long, t.longAt, true)
				t.long = nil
			case t.end > t.start && !t.skipping:
				line := t.buf[t.start:t.end]
				r.add(b, t, line[:min(len(line), maxLine)], t.bufPos, len(line) > maxLine)
			}
			t.consume(t.end - t.start)
			b.end = t.bufPos
		}
		return false, nil
	}
}

// add appends one record to b.
func (r *runner) add(b *batch, t *tracked, line []byte, at int64, truncated bool) {
	c := r.c
	b.recs = append(b.recs, ingest.Record{
		Data:      b.copyData(line),
		Source:    c.cfg.Source,
		Collector: c.cfg.Name,
		Host:      c.cfg.Host,
		Origin:    t.path,
		Stream:    t.stream,
		Offset:    at,
		Truncated: truncated,
		Observed:  t.observed,
	})
	b.bytes += len(line)
	if truncated {
		c.truncated.Add(1)
		c.log.Warn("line longer than max_line_bytes, emitting it cut",
			"origin", t.path, "offset", at, "max_line_bytes", c.cfg.MaxLineBytes)
	}
}

// full reports whether b reached a batch limit.
func (r *runner) full(b *batch) bool {
	return len(b.recs) >= r.c.cfg.BatchLines || b.bytes >= r.c.cfg.BatchBytes
}
