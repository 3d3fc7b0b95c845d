package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/detect"
	"github.com/trailwatch/trailwatch/enrich"
	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/ingest/redact"
	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// huntMaxLine bounds one input line of `trailwatch hunt`.
const huntMaxLine = 1 << 20

// huntBatch is how many events go to the detector at once.
const huntBatch = 4096

func cmdHunt(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("hunt --source NAME [--rules DIR…] FILE…",
		"Run raw log files through redaction, normalize and detect in event time, without\n"+
			"Kafka, and print alerts as NDJSON on stdout and a summary on stderr. FILE may be\n"+
			"gzip'd; - reads stdin. Files are read in the order given: give them oldest first.", stdout, stderr)
	source := fs.String("source", "", "normalizer for the files (required): "+strings.Join(normalize.Sources(), ", "))
	format := fs.String("format", "", "format variant or custom format string of the source")
	rules := fs.StringSlice("rules", []string{"rules"}, "rule directories or files")
	keyFile := fs.String("key-file", "data/"+fingerprintKeyName, "fingerprint key, so credential fingerprints match the pipeline's; a missing file means a key for this run only")
	lateness := fs.Duration("allowed-lateness", detect.DefaultConfig().AllowedLateness, "how late (event time) an event may be and still count in windows")
	cfgPath := fs.StringP("config", "c", "", "YAML configuration file whose enrich section (GeoIP, lists, identity…) is used")
	noEnrich := fs.Bool("no-enrich", false, "skip enrichment (faster; rules on enriched fields then see them empty)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *source == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "trailwatch hunt: --source and at least one FILE are required")
		return errUsage
	}
	n, err := normalize.Build(normalize.Spec{Type: *source, Format: *format})
	if err != nil {
		return err
	}
	rs, err := detect.LoadDir(*rules...)
	if err != nil {
		return err
	}
	dc := detect.DefaultConfig()
	dc.AllowedLateness = *lateness
	det, err := detect.New(rs, dc, nil)
	if err != nil {
		return err
	}
	red, err := huntRedactor(*keyFile, stderr)
	if err != nil {
		return err
	}
	h := &hunter{n: n, det: det, red: red, source: *source, out: bufio.NewWriter(stdout), stderr: stderr}
	if !*noEnrich {
		cfg, err := loadConfig(*cfgPath, nil, nil)
		if err != nil {
			return err
		}
		en, err := enrich.New(cfg.Enrich, nil)
		if err != nil {
			return fmt.Errorf("enrich: %w", err)
		}
		defer en.Close(context.Background())
		h.en = en
	}
	defer h.out.Flush()
	start := time.Now()
	for _, path := range fs.Args() {
		if err := h.file(ctx, path, stdin); err != nil {
			return err
		}
	}
	if err := h.flush(ctx); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(stderr, "hunt: %d files, %d lines, %d events, %d unparseable, %d alerts in %s (%.0f lines/s)\n",
		fs.NArg(), h.lines, h.events, h.bad, h.alerts, el.Round(time.Millisecond), float64(h.lines)/max(el.Seconds(), 1e-9))
	return nil
}

// huntRedactor uses the pipeline's key when it exists, so fingerprints in
// the alerts match the index; otherwise a random key for this run.
func huntRedactor(keyFile string, stderr io.Writer) (*redact.Redactor, error) {
	if _, err := os.Stat(keyFile); err == nil {
		return redact.New(redact.Config{KeyFile: keyFile})
	}
	dir, err := os.MkdirTemp("", "trailwatch-hunt-key")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	key, err := redact.LoadOrCreateKey(filepath.Join(dir, "key"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "hunt: %s not found; credential fingerprints use a key for this run only\n", keyFile)
	return redact.New(redact.Config{Key: config.Secret(key.Value())})
}

type hunter struct {
	n      normalize.Normalizer
	en     *enrich.Enrichment // nil: no enrichment
	det    *detect.Detector
	red    *redact.Redactor
	source string
	out    *bufio.Writer
	stderr io.Writer

	pending                    []schema.Event
	scratch                    []schema.Event
	lines, events, bad, alerts int
}

func (h *hunter) file(ctx context.Context, path string, stdin io.Reader) error {
	var r io.Reader = stdin
	origin := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r, origin = f, path
		if abs, err := filepath.Abs(path); err == nil {
			origin = abs
		}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		defer gz.Close()
		br = bufio.NewReaderSize(gz, 64<<10)
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 64<<10), huntMaxLine)
	var offset int64
	lineNo := 0
	for sc.Scan() {
		if err := ctx.Err(); err != nil {
			return err
		}
		lineNo++
		h.lines++
		line, _ := h.red.Redact(sc.Bytes())
		rec := ingest.Record{Data: line, Source: h.source, Collector: "hunt", Host: "hunt", Origin: origin, Offset: offset}
		offset += int64(len(sc.Bytes())) + 1
		var err error
		h.scratch, err = h.n.Normalize(h.scratch[:0], &rec)
		if err != nil {
			h.bad++
			fmt.Fprintf(h.stderr, "%s:%d: %v\n", path, lineNo, err)
			continue
		}
		h.pending = append(h.pending, h.scratch...)
		if len(h.pending) >= huntBatch {
			if err := h.flush(ctx); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: line over %d bytes", path, lineNo+1, huntMaxLine)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func (h *hunter) flush(ctx context.Context) error {
	if len(h.pending) == 0 {
		return nil
	}
	h.events += len(h.pending)
	if h.en != nil {
		if err := h.en.Enrich(ctx, h.pending); err != nil {
			return err
		}
		h.en.DrainChanges() // nothing outlives a hunt
	}
	alerts, err := h.det.Observe(ctx, h.pending)
	h.det.DrainChanges()
	h.pending = h.pending[:0]
	if err != nil {
		return err
	}
	for i := range alerts {
		b, err := json.Marshal(&alerts[i])
		if err != nil {
			return err
		}
		h.out.Write(append(b, '\n'))
		h.alerts++
	}
	return nil
}
