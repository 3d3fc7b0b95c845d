//go:build soak

package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// fault is one scheduled injection: at is the offset from the start of
// the traffic; do blocks for the fault's duration and undoes it. An
// outage fault (a service down for a minute) runs beside the rest of the
// schedule instead of holding it up, so the faults planned inside the
// outage happen inside it.
type fault struct {
	at     time.Duration
	name   string
	do     func(ctx context.Context) error
	outage bool
}

// faultLog records what was injected, for the report.
type faultLog struct {
	mu   sync.Mutex
	done []string
}

func (l *faultLog) add(s string) {
	l.mu.Lock()
	l.done = append(l.done, s)
	l.mu.Unlock()
}

// runFaults injects each fault at its time, one after the other, outage
// faults beside the others; it returns when all of them are over. The log
// names the offset at which each fault really began, and how late that
// was when a fault before it overran its slot.
func runFaults(ctx context.Context, start time.Time, faults []fault, log *faultLog) {
	var outages sync.WaitGroup
	defer outages.Wait()
	inject := func(f fault) {
		t0 := time.Now()
		if err := f.do(ctx); err != nil {
			log.add(fmt.Sprintf("%s FAILED: %v", f.name, err))
			return
		}
		at := fmt.Sprintf("@%ds", int(t0.Sub(start).Seconds()))
		if late := t0.Sub(start.Add(f.at)); late > time.Second {
			at += fmt.Sprintf(" (planned @%ds)", int(f.at.Seconds()))
		}
		log.add(fmt.Sprintf("%s %s (%.1fs)", f.name, at, time.Since(t0).Seconds()))
	}
	for _, f := range faults {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(f.at))):
		}
		if f.outage {
			outages.Go(func() { inject(f) })
			continue
		}
		inject(f)
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// killRestart SIGKILLs p, leaves it dead for down, and starts it again.
func killRestart(p *proc, down time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := p.kill(); err != nil {
			return err
		}
		pause(ctx, down)
		return p.restart()
	}
}

// killRandom SIGKILLs a stage process chosen at random, then restarts it.
func killRandom(pl *pipeline, down time.Duration, rng *rand.Rand, chosen *string) func(context.Context) error {
	return func(ctx context.Context) error {
		p := pl.procs[rng.IntN(len(pl.procs))]
		*chosen = p.name
		return killRestart(p, down)(ctx)
	}
}

// malformedBurst appends n lines that are not nginx lines to the live
// nginx log, while nginx writes to it: plain garbage, control bytes,
// invalid UTF-8 and lines longer than the collector's line limit. Each
// carries a marker the verifier looks for in the DLQ.
func malformedBurst(g *gateways, run string, n int, counter *int) func(context.Context) error {
	return func(ctx context.Context) error {
		f, err := os.OpenFile(g.nginxLog, os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		for i := range n {
			*counter++
			marker := fmt.Sprintf("SOAKBAD-%s-%d", run, *counter)
			var line string
			switch i % 4 {
			case 0:
				line = marker + " this is not an access log line {\"half\": json"
			case 1:
				line = marker + " \x01\x02\x00 binary \x7f"
			case 2:
				line = marker + " invalid utf8 \xff\xfe\xc3\x28"
			default:
				line = marker + " " + strings.Repeat("A", 70<<10) // past max_line_bytes (64 KiB)
			}
			// One write per line: O_APPEND keeps it whole between nginx's lines.
			if _, err := f.WriteString(line + "\n"); err != nil {
				return err
			}
		}
		return nil
	}
}

// rotations runs n rotations of one kind back to back, every gap.
func rotations(n int, gap time.Duration, rotate func(i int) error, counter *int) func(context.Context) error {
	return func(ctx context.Context) error {
		for range n {
			*counter++
			if err := rotate(*counter); err != nil {
				return err
			}
			pause(ctx, gap)
		}
		return nil
	}
}

// slackFault makes Slack answer status for d.
func slackFault(s *slackServer, status int, d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		s.fail(status)
		pause(ctx, d)
		s.fail(0)
		return nil
	}
}

// mountTmpfs mounts a tmpfs of size over dir: the disk-full fault fills
// it. Mounting needs root (CAP_SYS_ADMIN); without it, errNoMount.
var errNoMount = errors.New("mount not permitted")

func mountTmpfs(dir string, size string) error {
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		return fmt.Errorf("%w: %v", errNoMount, err)
	}
	return nil
}

// diskFull fills the collector's data dir (a small tmpfs) to the last
// byte for d, then frees it: checkpoint writes fail while it is full.
func diskFull(dir string, d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		filler := filepath.Join(dir, "filler")
		f, err := os.Create(filler)
		if err != nil {
			return err
		}
		buf := make([]byte, 64<<10)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					f.Close()
					return err
				}
				break
			}
		}
		f.Close()
		pause(ctx, d)
		return os.Remove(filler)
	}
}

// settle waits until the pipeline has nothing left to do: the raw topic
// stopped growing and every consumer group of the run committed the end of
// what it reads. It returns the time it took.
func settle(ctx context.Context, brokers []string, run string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var lastRaw int64 = -1
	stable := 0
	for time.Since(t0) < timeout {
		raw, _ := endOffsetsSum(ctx, brokers, run+".raw")
		lag := int64(-1)
		if groups, err := adm.ListGroups(ctx); err == nil {
			var names []string
			for _, g := range groups.Groups() {
				if strings.HasPrefix(g, run+"-") {
					names = append(names, g)
				}
			}
			if lags, err := adm.Lag(ctx, names...); err == nil && lags.Error() == nil {
				lag = 0
				lags.Each(func(l kadm.DescribedGroupLag) { lag += l.Lag.Total() })
			}
		}
		if lag == 0 && raw == lastRaw {
			stable++
		} else {
			stable = 0
		}
		if stable >= 3 {
			return time.Since(t0), nil
		}
		lastRaw = raw
		pause(ctx, 2*time.Second)
	}
	return time.Since(t0), fmt.Errorf("pipeline not settled after %s", timeout)
}

// freshRequest sends one new request after the faults stopped and waits
// until it is indexed.
func freshRequest(ctx context.Context, g *generator, es search, run string, timeout time.Duration) string {
	r := g.next("/api/soak/%s/%d", "10.99.0.1", 200, "nginx", -1)
	t0 := time.Now()
	g.send(&http.Client{Timeout: 10 * time.Second}, r)
	if r.status != http.StatusOK {
		return fmt.Sprintf("FAILED: gateway answered %d", r.status)
	}
	path := strings.SplitN(r.path, "?", 2)[0]
	for time.Since(t0) < timeout {
		es.refresh(ctx, run+"-events")
		code, body, err := es.do(ctx, http.MethodPost, "/"+run+"-events/_count", "application/json",
			[]byte(`{"query":{"term":{"url.path":"`+path+`"}}}`))
		if err == nil && code == http.StatusOK && strings.Contains(string(body), `"count":1`) {
			return fmt.Sprintf("indexed in %.1fs", time.Since(t0).Seconds())
		}
		pause(ctx, 200*time.Millisecond)
	}
	return "FAILED: not indexed within " + timeout.String()
}
