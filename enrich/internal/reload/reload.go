// Package reload notices when files change and runs a reload on a ticker.
// It only detects change (modification time and size) and schedules the
// check; what a reload does, and that a failed reload keeps the old data,
// is up to the caller.
package reload

import (
	"context"
	"os"
	"sync"
	"time"
)

// Stamp identifies one version of a file by modification time and size.
type Stamp struct {
	ModTime time.Time
	Size    int64
}

// Stat returns the stamp of path.
func Stat(path string) (Stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Stamp{}, err
	}
	return Stamp{ModTime: fi.ModTime(), Size: fi.Size()}, nil
}

// Loop calls a function every interval on its own goroutine until Stop.
type Loop struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Start runs fn every interval; interval <= 0 starts nothing and the
// returned Loop's Stop returns at once.
func Start(interval time.Duration, fn func()) *Loop {
	l := &Loop{stop: make(chan struct{}), done: make(chan struct{})}
	if interval <= 0 {
		close(l.done)
		return l
	}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				// Stop wins over a tick that arrived at the same time.
				select {
				case <-l.stop:
					return
				default:
				}
				fn()
			}
		}
	}()
	return l
}

// Stop ends the loop and waits for a running fn to return, or for ctx.
// It is idempotent.
func (l *Loop) Stop(ctx context.Context) error {
	l.once.Do(func() { close(l.stop) })
	select {
	case <-l.done: // preferred when both are ready
		return nil
	default:
	}
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
