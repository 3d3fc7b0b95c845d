package replay

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ProgressPrinter shows a replay's progress on w: on a terminal one line
// rewritten in place at most every 200ms (events, rate, percent of the
// offsets read, ETA); otherwise a plain line every Interval, so a log file
// or CI output gets a readable trace rather than carriage returns.
type ProgressPrinter struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	last  time.Time
	drawn bool
}

// NewProgressPrinter returns a printer for w; tty says whether w is a
// terminal. interval is the plain-line period (0 means 5s).
func NewProgressPrinter(w io.Writer, tty bool, interval time.Duration) *ProgressPrinter {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if tty {
		interval = 200 * time.Millisecond
	}
	return &ProgressPrinter{w: w, tty: tty, interval: interval, now: time.Now}
}

// Update is Config.Progress: it prints p if the interval has passed.
func (pp *ProgressPrinter) Update(p Progress) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	now := pp.now()
	if !pp.last.IsZero() && now.Sub(pp.last) < pp.interval {
		return
	}
	pp.last = now
	line := FormatProgress(p)
	if pp.tty {
		// \r back to the start, \x1b[K clears what a longer line left.
		fmt.Fprintf(pp.w, "\r%s\x1b[K", line)
		pp.drawn = true
		return
	}
	fmt.Fprintln(pp.w, line)
}

// Done ends the in-place line on a terminal, so what follows starts on a
// line of its own.
func (pp *ProgressPrinter) Done() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.tty && pp.drawn {
		fmt.Fprintln(pp.w)
		pp.drawn = false
	}
}

// FormatProgress renders p: "replay: 1200000/3000000 records (40.0%),
// 1180000 events, 210k events/s, ETA 9s".
func FormatProgress(p Progress) string {
	secs := max(p.Elapsed.Seconds(), 1e-9)
	rate := float64(p.Events) / secs
	s := fmt.Sprintf("replay: %d/%d records", p.Records, p.Total)
	if p.Total > 0 {
		s += fmt.Sprintf(" (%.1f%%)", 100*float64(p.Records)/float64(p.Total))
	}
	s += fmt.Sprintf(", %d events, %s events/s", p.Events, humanRate(rate))
	if p.Records > 0 && p.Total > p.Records {
		// Records, not events, measure what is left: the offsets are known
		// up front, the number of events they hold is not.
		left := time.Duration(float64(p.Elapsed) * float64(p.Total-p.Records) / float64(p.Records))
		s += ", ETA " + left.Round(time.Second).String()
	}
	return s
}

func humanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.0fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}
