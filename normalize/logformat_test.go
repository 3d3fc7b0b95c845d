package normalize_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// lfFormatOf reads the format a golden input is written in: the sidecar
// <name>.format next to <name>.log, or def when there is none.
func lfFormatOf(t testing.TB, logPath, def string) string {
	t.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(logPath, ".log") + ".format")
	if os.IsNotExist(err) {
		return def
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimRight(string(b), "\n")
}

// lfGolden normalizes every line of dir/*.log with the normalizer build
// returns for the file's format and compares with dir/*.golden.json.
func lfGolden(t *testing.T, dir, def string, build func(format string) (normalize.Normalizer, error)) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata in %s: %v", dir, err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			n, err := build(lfFormatOf(t, path, def))
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, n, path)
		})
	}
}

// lfFuzz is the body of the format-driven fuzz targets: no panic, dst
// untouched on error, a bounded error naming the source, and on success
// the invariants later stages rely on.
func lfFuzz(f *testing.F, source, dataset string, seeds []string, n normalize.Normalizer) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rec := &ingest.Record{Data: line, Collector: "file", Host: "h", Origin: "fuzz", Offset: 7}
		dst := make([]schema.Event, 1, 2)
		dst[0].Event.ID = "kept"
		got, err := n.Normalize(dst, rec)
		if err != nil {
			if len(got) != 1 || got[0].Event.ID != "kept" {
				t.Fatalf("Normalize changed dst on error %v", err)
			}
			if !strings.HasPrefix(err.Error(), source+": ") {
				t.Fatalf("error %q does not name the source", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error text is %d bytes, unbounded?", len(err.Error()))
			}
			return
		}
		if len(got) != 2 || got[0].Event.ID != "kept" {
			t.Fatalf("Normalize returned %d events, want dst plus one", len(got))
		}
		ev := &got[1]
		switch {
		case ev.HTTP.Response.StatusCode < 0 || ev.HTTP.Response.StatusCode > 999:
			t.Fatalf("status %d out of range", ev.HTTP.Response.StatusCode)
		case ev.Timestamp.IsZero() || ev.Timestamp.Location() != time.UTC:
			t.Fatalf("@timestamp %v is zero or not UTC", ev.Timestamp)
		case ev.HTTP.Response.Body.Bytes < 0 || ev.HTTP.Response.Bytes < 0 || ev.HTTP.Request.Bytes < 0 || ev.Event.Duration < 0:
			t.Fatalf("negative count in %+v", ev.HTTP)
		case ev.Event.ID != rec.ID() || ev.Event.Dataset != dataset || ev.Trailwatch.Source != source:
			t.Fatalf("identity fields wrong: %+v", ev.Event)
		case ev.Trailwatch.Actor != ev.ActorKey():
			t.Fatalf("actor %q", ev.Trailwatch.Actor)
		}
		forEachString(reflect.ValueOf(ev).Elem(), func(s string) {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q in event", s)
			}
		})
		assertSameJSON(t, ev)
	})
}

// lfSeeds returns the lines of the golden inputs under dir.
func lfSeeds(f *testing.F, glob string) []string {
	paths, _ := filepath.Glob(glob)
	var out []string
	for _, p := range paths {
		for _, r := range readRecords(f, p) {
			out = append(out, string(r.Data))
		}
	}
	return out
}

// lfBench runs recs through n, reporting lines/s, alone and with the JSON
// encoder.
func lfBench(b *testing.B, n normalize.Normalizer, recs []ingest.Record, unit string) {
	var size int64
	for _, r := range recs {
		size += int64(len(r.Data))
	}
	for _, mode := range []string{"parse", "parse+json"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(size / int64(len(recs)))
			var dst []schema.Event
			var buf []byte
			i := 0
			for b.Loop() {
				var err error
				if dst, err = n.Normalize(dst[:0], &recs[i]); err != nil {
					b.Fatal(err)
				}
				if mode == "parse+json" {
					buf = normalize.AppendEvent(buf[:0], &dst[0])
				}
				if i++; i == len(recs) {
					i = 0
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
		})
	}
}

// lfBadInput checks the hostile inputs every parser must reject with an
// error naming the source, never a panic.
func lfBadInput(t *testing.T, source string, n normalize.Normalizer) {
	bad := map[string]string{
		"empty":        "",
		"1 MB line":    strings.Repeat("a", 1<<20),
		"binary":       "\x00\x01\x02\xff\xfe\x7f",
		"deep nesting": strings.Repeat(`{"a":[`, 10000),
		"truncated":    `127.0.0.1 - - [10/Oct/2025:13:55:36 +0000] "GET /`,
		"other format": `Oct 10 13:55:36 host sshd[1]: Accepted password for root`,
	}
	for name, line := range bad {
		t.Run(name, func(t *testing.T) {
			dst, err := n.Normalize(nil, &ingest.Record{Data: []byte(line), Origin: "x"})
			if err == nil || len(dst) != 0 {
				t.Fatalf("got %d events, err %v; want an error", len(dst), err)
			}
			if !strings.HasPrefix(err.Error(), source+": ") || len(err.Error()) > 512 {
				t.Errorf("error %q: want it to start with %q and stay short", err, source+": ")
			}
		})
	}
}

// lfFreePort returns a TCP port that was free a moment ago on 127.0.0.1.
func lfFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lfServe starts a real server program, stops it at cleanup, and waits
// until it accepts connections on port (or exits, which fails the test
// with its output).
func lfServe(t *testing.T, port int, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGTERM to the group: nginx's master and workers, apache -X.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before listening on %s:\n%s", name, addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s after 15s:\n%s", name, addr, out.String())
		}
		// Poll the observable condition (the port), not a fixed sleep.
		<-tick.C
	}
}

// lfWaitLines polls a log file until it holds n lines: servers write the
// access log after the response has been sent.
func lfWaitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(b) > 0 && len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines after 10s, want %d:\n%s", path, len(lines), n, b)
		}
		<-tick.C
	}
}

// lfNormalizeLines normalizes each line, failing the test on an error.
func lfNormalizeLines(t *testing.T, n normalize.Normalizer, path string, lines []string) []schema.Event {
	t.Helper()
	var evs []schema.Event
	off := 0
	for _, l := range lines {
		var err error
		evs, err = n.Normalize(evs, &ingest.Record{Data: []byte(l), Host: "web-1", Origin: path, Offset: int64(off), Collector: "file"})
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		off += len(l) + 1
	}
	return evs
}

// lfMulti runs a line through the first normalizer and, when that fails,
// the second, so one fuzz target covers two formats.
type lfMulti [2]normalize.Normalizer

func (m lfMulti) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	out, err := m[0].Normalize(dst, rec)
	if err == nil {
		return out, nil
	}
	return m[1].Normalize(dst, rec)
}

// lfGoodRecords keeps the records of path that n parses.
func lfGoodRecords(b *testing.B, n normalize.Normalizer, path string) []ingest.Record {
	var good []ingest.Record
	for _, r := range readRecords(b, path) {
		if _, err := n.Normalize(nil, &r); err == nil {
			good = append(good, r)
		}
	}
	if len(good) == 0 {
		b.Fatalf("no line of %s parses", path)
	}
	return good
}
