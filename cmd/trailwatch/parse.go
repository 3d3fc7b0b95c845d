package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// maxParseLine bounds one input line of `trailwatch parse`.
const maxParseLine = 1 << 20

func cmdParse(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("parse --source NAME < raw.log > events.ndjson",
		"Parse raw log lines from stdin and write one ECS JSON event per line on stdout.\n"+
			"Unparseable lines are counted and reported on stderr; they do not stop the run.\n"+
			"Sources: "+strings.Join(normalize.Sources(), ", "), stdout, stderr)
	source := fs.String("source", "", "normalizer to use (required)")
	format := fs.String("format", "", "format variant or custom format string of the source (e.g. an nginx log_format)")
	origin := fs.String("origin", "stdin", "origin recorded in trailwatch.raw.origin")
	quiet := fs.BoolP("quiet", "q", false, "do not report each bad line, only the totals")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *source == "" {
		fmt.Fprintln(stderr, "trailwatch parse: --source is required; one of:", strings.Join(normalize.Sources(), ", "))
		return errUsage
	}
	n, err := normalize.Build(normalize.Spec{Type: *source, Format: *format})
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), maxParseLine)
	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	var (
		lines, events, bad int
		offset             int64
		evs                []schema.Event
		buf                []byte
	)
	now := time.Now().UTC()
	for sc.Scan() {
		if ctx.Err() != nil {
			break
		}
		line := sc.Bytes()
		lines++
		rec := ingest.Record{Data: line, Source: *source, Collector: "parse", Origin: *origin, Offset: offset, Observed: now}
		offset += int64(len(line)) + 1
		evs, err = n.Normalize(evs[:0], &rec)
		if err != nil {
			bad++
			if !*quiet {
				fmt.Fprintf(stderr, "line %d: %v\n", lines, err)
			}
			continue
		}
		for i := range evs {
			buf = normalize.AppendEvent(buf[:0], &evs[i])
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			events++
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin at line %d: %w", lines+1, err)
	}
	fmt.Fprintf(stderr, "parsed %d lines: %d events, %d unparseable\n", lines, events, bad)
	return nil
}
