package s3

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/trailwatch/trailwatch/ingest"
)

// readResult says what became of one object.
type readResult int

const (
	// readDone: every record was acknowledged, or the object was given up
	// on (recorded as failed), or it vanished.
	readDone readResult = iota
	// readRetry: a failure that may pass; read it again at the next poll.
	readRetry
	// readStopped: ctx ended.
	readStopped
)

// errTooLarge reports content past max_object_bytes.
var errTooLarge = errors.New("over max_object_bytes")

// readBufSize is the buffered read size over an object's body.
const readBufSize = 256 << 10

// read reads one object and emits its records.
func (r *runner) read(ctx context.Context, emit ingest.Emit, obj minio.ObjectInfo) readResult {
	c := r.c
	bound := c.cfg.maxObjectBytes()
	if obj.Size == 0 {
		r.markDone(obj.Key, obj.ETag)
		return readDone
	}
	// gzip output is never much smaller than its input's size minus the
	// headers, so an object far over the bound cannot fit once inflated.
	if c.cfg.Mode == ModeObject && obj.Size > bound+(64<<10) {
		r.markFailed(obj.Key, obj.ETag, fmt.Sprintf("object is %d bytes, over max_object_bytes (%d)", obj.Size, bound))
		return readDone
	}
	var resume int64
	if f := r.cp.InFlight; f != nil && f.Key == obj.Key && f.ETag == obj.ETag {
		resume = f.Offset
	}

	objCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	opts := minio.GetObjectOptions{}
	if obj.ETag != "" {
		// Read the version that was listed; a rewrite in between shows up
		// in the next listing with its new ETag.
		_ = opts.SetMatchETag(obj.ETag)
	}
	body, err := c.client.GetObject(objCtx, c.cfg.Bucket, obj.Key, opts)
	if err != nil {
		return r.readFailed(ctx, obj, err, false)
	}
	defer body.Close()
	raw := &stallReader{r: body, stall: c.cfg.RequestTimeout}
	// Why a stall timer and not a deadline: a large object may take
	// minutes, but a body that stops moving for request_timeout is dead.
	raw.timer = time.AfterFunc(c.cfg.RequestTimeout, func() {
		cancel(fmt.Errorf("no data for %s", c.cfg.RequestTimeout))
	})
	defer raw.timer.Stop()

	br := bufio.NewReaderSize(raw, readBufSize)
	var content io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return r.readFailed(ctx, obj, err, raw.n == obj.Size)
		}
		defer zr.Close()
		content = zr
	}
	lim := &limitReader{r: content, left: bound}
	src := &source{
		origin: "s3://" + c.cfg.Bucket + "/" + obj.Key,
	}
	src.stream = src.origin + "@" + obj.ETag

	if c.cfg.Mode == ModeObject {
		err = r.readObject(ctx, emit, src, lim)
	} else {
		err = r.readLines(ctx, emit, obj, src, bufio.NewReaderSize(lim, readBufSize), resume)
	}
	switch {
	case err == nil:
		r.markDone(obj.Key, obj.ETag)
		return readDone
	case ctx.Err() != nil:
		return readStopped
	case errors.Is(err, errTooLarge):
		r.markFailed(obj.Key, obj.ETag, fmt.Sprintf("content over max_object_bytes (%d) once decompressed", bound))
		return readDone
	}
	if cause := context.Cause(objCtx); cause != nil && objCtx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	return r.readFailed(ctx, obj, err, raw.n == obj.Size)
}

// readFailed sorts a read error: ctx ending stops the pass; a corrupt
// object (bad gzip data, or a truncated stream although every byte of
// the object arrived) is given up on; the object vanishing is done; the
// rest (network, permissions, a rewrite racing the read) is retried at the
// next poll.
func (r *runner) readFailed(ctx context.Context, obj minio.ObjectInfo, err error, complete bool) readResult {
	if ctx.Err() != nil {
		return readStopped
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code == "NoSuchKey" {
		r.c.log.Info("object deleted before it was read", "key", obj.Key)
		return readDone
	}
	var corrupt flate.CorruptInputError
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.As(err, &corrupt) ||
		(complete && errors.Is(err, io.ErrUnexpectedEOF)) {
		r.markFailed(obj.Key, obj.ETag, "corrupt gzip content: "+err.Error())
		return readDone
	}
	r.c.readErrors.Add(1)
	r.c.log.Warn("object read failed, retrying at the next poll", "key", obj.Key, "err", err)
	return readRetry
}

// source is the provenance shared by one object's records.
type source struct {
	origin, stream string
}

func (r *runner) record(src *source, data []byte, off int64, now time.Time) ingest.Record {
	return ingest.Record{
		Data:      data,
		Source:    r.c.cfg.Source,
		Collector: r.c.cfg.Name,
		Host:      r.c.cfg.Host,
		Origin:    src.origin,
		Stream:    src.stream,
		Offset:    off,
		Observed:  now,
	}
}

// readObject emits the whole content as one record.
func (r *runner) readObject(ctx context.Context, emit ingest.Emit, src *source, content io.Reader) error {
	data, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	recs := []ingest.Record{r.record(src, data, 0, time.Now())}
	if !r.c.emit(ctx, emit, recs) {
		return ctx.Err()
	}
	r.c.records.Add(1)
	r.c.bytes.Add(uint64(len(data)))
	return nil
}

// readLines emits every non-empty line from resume on, in batches, and
// moves the in-flight offset after each acknowledged batch.
func (r *runner) readLines(ctx context.Context, emit ingest.Emit, obj minio.ObjectInfo, src *source, br *bufio.Reader, resume int64) error {
	cfg := r.c.cfg
	if resume > 0 {
		// gzip streams cannot seek: inflate and drop what was acknowledged.
		if _, err := io.CopyN(io.Discard, br, resume); err != nil {
			return err
		}
	}
	pos := resume
	var recs []ingest.Record
	batchBytes := 0
	flush := func() bool {
		if len(recs) == 0 {
			return true
		}
		if !r.c.emit(ctx, emit, recs) {
			return false
		}
		r.c.records.Add(uint64(len(recs)))
		r.c.bytes.Add(uint64(batchBytes))
		r.cp.InFlight = &inFlight{Key: obj.Key, ETag: obj.ETag, Offset: pos}
		r.dirty = true
		r.maybeSave(false)
		recs, batchBytes = recs[:0:0], 0
		return true
	}
	now := time.Now()
	for {
		line, n, cut, err := readLine(br, cfg.MaxLineBytes)
		// A line is complete when ended by "\n" or by the end of the
		// content; one cut short by a read error is not emitted.
		if len(line) > 0 && (err == nil || errors.Is(err, io.EOF)) {
			if cut {
				r.c.truncated.Add(1)
			}
			rec := r.record(src, line, pos, now)
			rec.Truncated = cut
			recs = append(recs, rec)
			batchBytes += len(line)
		}
		pos += n
		if err != nil {
			// Emit what was read before the error: a corrupt tail must not
			// hold back the lines before it.
			if !flush() {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(recs) >= cfg.BatchLines || batchBytes >= cfg.BatchBytes {
			if !flush() {
				return ctx.Err()
			}
			now = time.Now()
		}
	}
}

// readLine returns the next line without its "\n" or "\r\n" (a copy, cut
// to maxLen bytes with cut set if longer), and n, the bytes it consumed. At
// the end it returns io.EOF, with an unterminated last line if any.
func readLine(br *bufio.Reader, maxLen int) (line []byte, n int64, cut bool, err error) {
	var last, prev byte // the last two bytes consumed
	for {
		frag, ferr := br.ReadSlice('\n')
		n += int64(len(frag))
		// Keep two bytes past maxLen: they may be the "\r\n".
		if room := maxLen + 2 - len(line); room > 0 {
			line = append(line, frag[:min(len(frag), room)]...)
		}
		switch len(frag) {
		case 0:
		case 1:
			prev, last = last, frag[0]
		default:
			prev, last = frag[len(frag)-2], frag[len(frag)-1]
		}
		if errors.Is(ferr, bufio.ErrBufferFull) {
			continue
		}
		content := n
		if ferr == nil { // ended by "\n"
			content--
			if prev == '\r' && n >= 2 {
				content--
			}
		}
		if content > int64(maxLen) {
			return line[:maxLen], n, true, ferr
		}
		return line[:content], n, false, ferr
	}
}

// stallReader counts bytes and pushes back timer, which aborts the read,
// on every read that returns data.
type stallReader struct {
	r     io.Reader
	n     int64
	stall time.Duration
	timer *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.n += int64(n)
		s.timer.Reset(s.stall)
	}
	return n, err
}

// limitReader fails with errTooLarge past left bytes, instead of the silent
// EOF of io.LimitReader.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// One byte more tells a content of exactly the limit from a larger one.
		var one [1]byte
		if n, err := l.r.Read(one[:]); n > 0 {
			return 0, errTooLarge
		} else if err != nil {
			return 0, err
		}
		return 0, nil
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
