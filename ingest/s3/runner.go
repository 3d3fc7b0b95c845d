package s3

import (
	"context"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/trailwatch/trailwatch/ingest"
)

// runner is the state of one Run call; only Run's goroutine touches it.
type runner struct {
	c        *Collector
	cp       checkpoint
	failed   map[string]string // cp.Failed as key -> etag
	dirty    bool              // the checkpoint on disk is behind
	lastSave time.Time
}

func newRunner(c *Collector, cp checkpoint) *runner {
	r := &runner{c: c, cp: cp, failed: map[string]string{}}
	for _, f := range cp.Failed {
		r.failed[f.Key] = f.ETag
	}
	return r
}

// pass lists everything after the cursor once, reads the objects not yet
// done in key order, and moves the cursor over the leading run of done
// objects older than settle.
func (r *runner) pass(ctx context.Context, emit ingest.Emit) {
	c := r.c
	now := time.Now()
	// The listing goroutine of minio-go stops when listCtx ends, so a pass
	// left early (ctx done, list error) leaks nothing.
	listCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := minio.ListObjectsOptions{Prefix: c.cfg.Prefix, Recursive: true, StartAfter: r.cp.Cursor}
	settled := true // every key listed so far is done and older than settle
	listed := map[string]bool{}
	for obj := range c.client.ListObjects(listCtx, c.cfg.Bucket, opts) {
		if ctx.Err() != nil {
			return
		}
		if obj.Err != nil {
			c.listErrors.Add(1)
			c.log.Warn("listing failed, retrying at the next poll", "prefix", c.cfg.Prefix, "after", r.cp.Cursor, "err", obj.Err)
			r.maybeSave(true)
			return
		}
		listed[obj.Key] = true
		done := r.isDone(obj.Key, obj.ETag)
		if !done {
			switch r.read(ctx, emit, obj) {
			case readStopped:
				return
			case readDone:
				done = true
			case readRetry:
				// Later objects are still read (Done remembers them); the
				// cursor stays before this one until it is read.
			}
		}
		if settled && done && now.Sub(obj.LastModified) >= c.cfg.Settle {
			r.cp.Cursor = obj.Key
			delete(r.cp.Done, obj.Key)
			r.dirty = true
		} else {
			settled = false
		}
		r.maybeSave(false)
	}
	if ctx.Err() != nil {
		return
	}
	// The listing was complete: forget done keys the cursor passed, and
	// keys deleted from the bucket (lifecycle rules) so Done stays bounded.
	for k := range r.cp.Done {
		if k <= r.cp.Cursor || !listed[k] {
			delete(r.cp.Done, k)
			r.dirty = true
		}
	}
	r.maybeSave(true)
	r.c.passes.Add(1)
}

// isDone reports whether key with etag was read or given up on already.
func (r *runner) isDone(key, etag string) bool {
	if strings.HasSuffix(key, "/") {
		return true // a "directory" marker, never a log
	}
	if e, ok := r.cp.Done[key]; ok {
		if e == etag {
			return true
		}
		r.c.log.Info("object rewritten, reading it again as a new stream", "key", key, "etag", etag, "old_etag", e)
	}
	if e, ok := r.failed[key]; ok && e == etag {
		return true
	}
	return false
}

// markDone records that key is read to its end.
func (r *runner) markDone(key, etag string) {
	r.cp.Done[key] = etag
	if r.cp.InFlight != nil && r.cp.InFlight.Key == key {
		r.cp.InFlight = nil
	}
	r.c.objects.Add(1)
	r.dirty = true
}

// markFailed gives up on an object: it is logged, counted and kept in the
// checkpoint with the reason, and counts as done from now on.
func (r *runner) markFailed(key, etag, reason string) {
	r.c.failed.Add(1)
	r.c.log.Error("object skipped", "key", key, "etag", etag, "reason", reason)
	r.cp.Failed = append(r.cp.Failed, failure{Key: key, ETag: etag, Reason: reason, At: time.Now().UTC()})
	if n := len(r.cp.Failed) - maxFailed; n > 0 {
		for _, f := range r.cp.Failed[:n] {
			if r.failed[f.Key] == f.ETag {
				delete(r.failed, f.Key)
			}
		}
		r.cp.Failed = append(r.cp.Failed[:0:0], r.cp.Failed[n:]...)
	}
	r.failed[key] = etag
	if r.cp.InFlight != nil && r.cp.InFlight.Key == key {
		r.cp.InFlight = nil
	}
	r.dirty = true
}

// maybeSave writes the checkpoint if it is behind, and either force is set
// or the last write is older than saveEvery.
func (r *runner) maybeSave(force bool) {
	if r.dirty && (force || time.Since(r.lastSave) >= saveEvery) {
		r.save()
	}
}

// save writes the checkpoint if it is behind. A failure is logged and
// retried later: the records are acknowledged already, so it only widens
// what a crash would re-send.
func (r *runner) save() {
	if !r.dirty {
		return
	}
	if err := saveCheckpoint(r.c.cfg.CheckpointFile, &r.cp); err != nil {
		r.c.cpErrors.Add(1)
		r.c.log.Error("checkpoint write failed", "path", r.c.cfg.CheckpointFile, "err", err)
		return
	}
	r.dirty = false
	r.lastSave = time.Now()
}
