// Package file writes trailwatch documents as NDJSON, one file per kind
// (events.ndjson, alerts.ndjson) under a directory: the embedded default for
// search when no Elasticsearch is configured.
//
// Each line is the document's JSON with its deterministic id added as the
// first member, "_id" (the shape of a search hit), so the file alone tells
// what is in it. Write appends and fsyncs before it returns, so a nil error
// means the lines are on disk. On open the writer reads back the ids of the
// last dedup_window lines of each file and skips documents whose id is among
// them (or among those written since), so a restart that re-delivers a batch
// does not duplicate lines: at-least-once delivery becomes effectively-once
// within that window. A line torn by a crash mid-write is cut off on open;
// its Write never returned nil, so the caller writes it again.
//
// The package deliberately does not rotate, compress or expire files, and
// does not dedupe beyond the window.
package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/trailwatch/trailwatch/outputs"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("file: writer closed")

// Config configures the NDJSON writer.
type Config struct {
	// Dir is the directory holding events.ndjson and alerts.ndjson; it is
	// created (0750) if missing. Required.
	Dir string `koanf:"dir"`
	// DedupWindow is how many of each file's most recent document ids are
	// remembered to skip re-delivered documents. Default 100000; memory is
	// about 100 bytes per id.
	DedupWindow int `koanf:"dedup_window"`
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{DedupWindow: 100_000} }

// Validate reports every problem, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: required"))
	}
	if c.DedupWindow < 0 {
		errs = append(errs, errors.New("dedup_window: must not be negative"))
	}
	return errors.Join(errs...)
}

// Writer appends documents to NDJSON files. It implements
// outputs.EventWriter and is safe for concurrent use.
type Writer struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	files  map[string]*kindFile
	closed bool
}

var _ outputs.EventWriter = (*Writer)(nil)

// FileName returns the file a kind is written to inside Config.Dir.
func FileName(kind string) string { return kind + ".ndjson" }

// New validates cfg, creates the directory, opens both files and loads the
// recent ids from them.
func New(cfg Config, logger *slog.Logger) (*Writer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = DefaultConfig().DedupWindow
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	w := &Writer{cfg: cfg, log: logger, files: map[string]*kindFile{}}
	for _, kind := range []string{outputs.KindEvents, outputs.KindAlerts} {
		kf, err := openKindFile(filepath.Join(cfg.Dir, FileName(kind)), cfg.DedupWindow)
		if err != nil {
			_ = w.Close(context.Background())
			return nil, fmt.Errorf("file: %w", err)
		}
		if kf.truncated > 0 {
			logger.Warn("file: cut a torn last line left by a crash", "path", kf.f.Name(), "bytes", kf.truncated)
		}
		w.files[kind] = kf
	}
	return w, nil
}

// Write appends the documents not already written and fsyncs. Documents
// with an unknown kind, no id or a body that is not a JSON object fail
// permanently; an I/O failure makes that kind's documents retryable (the
// file is cut back to where it was).
func (w *Writer) Write(_ context.Context, docs []outputs.Document) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	var be outputs.BatchError
	byKind := map[string][]int{}
	for i, d := range docs {
		if _, ok := w.files[d.Kind]; !ok {
			be.Items = append(be.Items, outputs.ItemError{Index: i, Reason: fmt.Sprintf("unknown document kind %q", d.Kind)})
			continue
		}
		byKind[d.Kind] = append(byKind[d.Kind], i)
	}
	for _, kind := range []string{outputs.KindEvents, outputs.KindAlerts} {
		if idx := byKind[kind]; len(idx) > 0 {
			be.Items = append(be.Items, w.files[kind].write(docs, idx)...)
		}
	}
	if len(be.Items) == 0 {
		return nil
	}
	sortItems(be.Items)
	return &be
}

// Close closes both files. It is idempotent.
func (w *Writer) Close(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	for _, kf := range w.files {
		errs = append(errs, kf.f.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("file: close: %w", err)
	}
	return nil
}

// kindFile is one NDJSON file and the ids recently written to it.
type kindFile struct {
	f         *os.File
	size      int64
	seen      *window
	truncated int64 // bytes of a torn last line cut on open
}

func (kf *kindFile) write(docs []outputs.Document, idx []int) []outputs.ItemError {
	var (
		buf     bytes.Buffer
		failed  []outputs.ItemError
		written []string
		inBatch = map[string]bool{}
	)
	for _, i := range idx {
		d := docs[i]
		if d.ID == "" {
			failed = append(failed, outputs.ItemError{Index: i, Reason: "document has no id"})
			continue
		}
		if kf.seen.has(d.ID) || inBatch[d.ID] {
			continue // already on disk: a re-delivery
		}
		if err := appendLine(&buf, d); err != nil {
			failed = append(failed, outputs.ItemError{Index: i, Reason: err.Error()})
			continue
		}
		inBatch[d.ID] = true
		written = append(written, d.ID)
	}
	if buf.Len() == 0 {
		return failed
	}
	if err := kf.appendSync(buf.Bytes()); err != nil {
		for _, i := range idx {
			if inBatch[docs[i].ID] {
				failed = append(failed, outputs.ItemError{Index: i, Retryable: true, Reason: err.Error()})
			}
		}
		return failed
	}
	for _, id := range written {
		kf.seen.add(id)
	}
	return failed
}

// appendSync writes b at the end and fsyncs; on failure it cuts the file
// back so no partial line stays behind.
func (kf *kindFile) appendSync(b []byte) error {
	_, err := kf.f.Write(b)
	if err == nil {
		err = kf.f.Sync()
	}
	if err != nil {
		if terr := kf.f.Truncate(kf.size); terr != nil {
			err = errors.Join(err, fmt.Errorf("cut back: %w", terr))
		}
		_, _ = kf.f.Seek(kf.size, io.SeekStart)
		return fmt.Errorf("append %s: %w", kf.f.Name(), err)
	}
	kf.size += int64(len(b))
	return nil
}

// appendLine writes {"_id":"<id>",<members of body>}\n to buf.
func appendLine(buf *bytes.Buffer, d outputs.Document) error {
	body := bytes.TrimSpace(d.Body)
	if bytes.ContainsAny(body, "\r\n") {
		var c bytes.Buffer
		if err := json.Compact(&c, body); err != nil {
			return fmt.Errorf("body is not valid JSON: %w", err)
		}
		body = c.Bytes()
	}
	if len(body) < 2 || body[0] != '{' || body[len(body)-1] != '}' {
		return errors.New("body is not a JSON object")
	}
	id, _ := json.Marshal(d.ID) // a string always marshals
	buf.WriteString(`{"_id":`)
	buf.Write(id)
	if rest := bytes.TrimSpace(body[1:]); len(rest) > 1 { // more than "}"
		buf.WriteByte(',')
	}
	buf.Write(body[1:])
	buf.WriteByte('\n')
	return nil
}

func sortItems(items []outputs.ItemError) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].Index < items[j-1].Index; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

// idOf reads the "_id" a line starts with.
func idOf(line []byte) (string, bool) {
	const prefix = `{"_id":`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return "", false
	}
	rest := line[len(prefix):]
	// The id is a JSON string: find its closing quote, skipping escapes.
	if len(rest) == 0 || rest[0] != '"' {
		return "", false
	}
	for i := 1; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			i++
		case '"':
			id, err := strconv.Unquote(string(rest[:i+1]))
			if err != nil {
				var s string
				if json.Unmarshal(rest[:i+1], &s) != nil {
					return "", false
				}
				id = s
			}
			return id, true
		}
	}
	return "", false
}
