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
	pattern := fs.String("pattern", "", "regex source: the pattern, with named groups")
	fields := fs.StringToString("fields", nil, "regex source: named group=ECS field, comma-separated")
	timeLayout := fs.String("time-layout", "", "regex source: Go time layout of the timestamp group")
	whole := fs.Bool("whole", false, "stdin is one record (a CloudTrail {\"Records\":[…]} file, gzip'd or not), not one record per line")
	origin := fs.String("origin", "stdin", "origin recorded in trailwatch.raw.origin")
	quiet := fs.BoolP("quiet", "q", false, "do not report each bad line, only the totals")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *source == "" {
		fmt.Fprintln(stderr, "trailwatch parse: --source is required; one of:", strings.Join(normalize.Sources(), ", "))
		return errUsage
	}
	n, err := normalize.Build(normalize.Spec{Type: *source, Format: *format, Pattern: *pattern, Fields: *fields, TimeLayout: *timeLayout})
	if err != nil {
		return err
	}
	if *whole {
		return parseWhole(n, *source, *origin, stdin, stdout, stderr)
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

// maxWholeRecord bounds `parse --whole` input, like the S3 collector's
// object mode.
const maxWholeRecord = 256 << 20

// parseWhole normalizes all of stdin as one record.
func parseWhole(n normalize.Normalizer, source, origin string, stdin io.Reader, stdout, stderr io.Writer) error {
	data, err := io.ReadAll(io.LimitReader(stdin, maxWholeRecord+1))
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	if len(data) > maxWholeRecord {
		return fmt.Errorf("stdin is over the %d-byte limit of --whole", maxWholeRecord)
	}
	rec := ingest.Record{Data: data, Source: source, Collector: "parse", Origin: origin, Observed: time.Now().UTC()}
	evs, err := n.Normalize(nil, &rec)
	if err != nil {
		fmt.Fprintf(stderr, "record: %v\nparsed 1 record: 0 events, 1 unparseable\n", err)
		return nil
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	var buf []byte
	for i := range evs {
		buf = append(normalize.AppendEvent(buf[:0], &evs[i]), '\n')
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	fmt.Fprintf(stderr, "parsed 1 record: %d events, 0 unparseable\n", len(evs))
	return nil
}
