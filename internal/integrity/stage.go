package integrity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Where the chain is built (Config.Mode).
const (
	// ModeStage: the `integrity` stage, where a process lists it, with its
	// own consumer group, fetch and digest of the raw topic.
	ModeStage = "stage"
	// ModeNormalize: every normalize stage, from its own read and digest
	// of the raw topic; the `integrity` stage is not used.
	ModeNormalize = "normalize"
)

// Config is the `integrity` section of the configuration.
type Config struct {
	// Mode says where the chain is built: ModeStage (default) or
	// ModeNormalize. One setting for every process, so two builders never
	// extend the same partition's chain.
	Mode string `koanf:"mode"`
	// SigningKeyFile is the ed25519 private key (PEM PKCS#8 or base64
	// seed) the stage signs with. Required to run the stage.
	SigningKeyFile string `koanf:"signing_key_file"`
	// PublicKeyFile is the key `trailwatch verify` checks with when no
	// --public-key is given.
	PublicKeyFile string `koanf:"public_key_file"`
	// CheckpointEvery cuts a checkpoint after this many records of a
	// partition (default 10000; at most 100000 to keep a checkpoint under
	// Kafka's 1 MB record limit).
	CheckpointEvery int `koanf:"checkpoint_every"`
	// CheckpointInterval cuts a checkpoint at the end of a batch when the
	// pending records' first one is older than this (default 10s), and
	// RunFlush checks every half interval, so a record is signed within
	// about 1.5 intervals of arriving even on a partition gone quiet.
	CheckpointInterval time.Duration `koanf:"checkpoint_interval"`
	// CheckpointFile, when set, also appends every checkpoint as a JSON line
	// to this file: ship it to storage the Kafka admins cannot rewrite.
	CheckpointFile string `koanf:"checkpoint_file"`
	// RecordDigests lists 4 bytes of each record's digest in its checkpoint
	// (default true; ~2% of the raw bytes for 200-byte lines) so verify can
	// name the altered record, not only the checkpoint range.
	RecordDigests bool `koanf:"record_digests"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Mode: ModeStage, CheckpointEvery: 10000, CheckpointInterval: 10 * time.Second, RecordDigests: true}
}

// Validate reports every problem in the section, each naming its key.
// requireKey is true when this process runs the stage.
func (c *Config) Validate(requireKey bool) error {
	var errs []error
	if c.Mode != ModeStage && c.Mode != ModeNormalize {
		errs = append(errs, fmt.Errorf("mode: %q is not %q or %q", c.Mode, ModeStage, ModeNormalize))
	}
	if requireKey && c.SigningKeyFile == "" {
		errs = append(errs, errors.New("signing_key_file: required to run the integrity stage (create one with `trailwatch verify --gen-key PREFIX`)"))
	}
	if c.CheckpointEvery < 1 || c.CheckpointEvery > 100000 {
		errs = append(errs, fmt.Errorf("checkpoint_every: %d is not between 1 and 100000", c.CheckpointEvery))
	}
	if c.CheckpointInterval < time.Second {
		errs = append(errs, errors.New("checkpoint_interval: must be at least 1s"))
	}
	return errors.Join(errs...)
}

// LastFunc returns the last checkpoint written for a raw partition, or nil.
type LastFunc func(ctx context.Context, partition int32) (*Checkpoint, error)

// ReadFunc calls fn for the records of a raw partition at offsets from..to
// (to < 0: to the end) in offset order.
type ReadFunc func(ctx context.Context, partition int32, from, to int64, fn func(*kgo.Record) error) error

// Checkpointer is the integrity stage's handler: it extends each raw
// partition's chain in offset order and returns signed checkpoints as
// records for the integrity topic.
//
// Restarts: the runner commits raw offsets after each batch, ahead of the
// last checkpoint, so after an assignment (or a retried batch) the chain
// head is recovered from the last checkpoint in the integrity topic (Last)
// and the records between it and the batch are re-hashed from the raw topic
// (Read). Holding commits back until a checkpoint covers them would tie the
// runner to this stage; re-reading at most CheckpointEvery records, or
// CheckpointInterval worth, per assignment is cheaper. Raw records deleted
// by retention before they were hashed leave a gap between two checkpoints
// that verify reports.
type Checkpointer struct {
	cfg      Config
	rawTopic string
	topic    string
	signer   *Signer
	last     LastFunc
	read     ReadFunc
	file     *FileSink
	log      *slog.Logger
	now      func() time.Time

	mu    sync.Mutex
	parts map[int32]*chainState
	dg    Digester
	// inflight is set when Handle returned checkpoints the runner may not
	// have produced yet; Flush waits for the next Handle so checkpoints of
	// a partition reach the topic in order.
	inflight bool
}

// chainState is one partition's chain and its not yet checkpointed segment.
type chainState struct {
	next    int64 // next offset expected; -1 before the first record
	head    Hash  // after the last checkpoint
	seg     Segment
	prevCk  Hash
	from    int64
	start   Hash
	count   int64
	digests []byte
	first   time.Time
	lastTS  time.Time
}

// NewCheckpointer returns the stage handler. last and read reach the
// integrity and raw topics (KafkaSource provides both); file may be nil.
func NewCheckpointer(cfg Config, rawTopic, topic string, signer *Signer, last LastFunc, read ReadFunc, file *FileSink, log *slog.Logger) (*Checkpointer, error) {
	if err := cfg.Validate(false); err != nil {
		return nil, fmt.Errorf("integrity: %w", err)
	}
	if signer == nil || last == nil || read == nil {
		return nil, errors.New("integrity: signer, last and read are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{cfg: cfg, rawTopic: rawTopic, topic: topic, signer: signer, last: last, read: read,
		file: file, log: log, now: time.Now, parts: map[int32]*chainState{}}, nil
}

// SetClock replaces the wall clock the interval is measured with (tests).
func (h *Checkpointer) SetClock(now func() time.Time) {
	h.mu.Lock()
	h.now = now
	h.mu.Unlock()
}

// Assigned implements pipeline.PartitionAware: state is recovered lazily in
// Handle, where a context is available.
func (h *Checkpointer) Assigned(string, int32) {}

// Revoked implements pipeline.PartitionAware.
func (h *Checkpointer) Revoked(_ string, p int32) {
	h.mu.Lock()
	delete(h.parts, p)
	h.mu.Unlock()
}

// Handle implements pipeline.Handler. An error (the integrity or raw topic
// unreadable during recovery, the checkpoint file unwritable) makes the
// runner retry the batch, which recovers again from the topic.
func (h *Checkpointer) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	return h.HandleDigests(ctx, recs, nil)
}

// HandleDigests is Handle for a stage that already computed each record's
// digest (RecordDigest) while reading it: the normalize stage, which needs
// the digest for every event's provenance anyway, extends the chain this
// way without a second fetch of the raw topic or a second SHA-256. digests
// is parallel to recs; nil computes them here.
func (h *Checkpointer) HandleDigests(ctx context.Context, recs []*kgo.Record, digests []Hash) ([]*kgo.Record, error) {
	if digests != nil && len(digests) != len(recs) {
		return nil, fmt.Errorf("integrity: %d digests for %d records", len(digests), len(recs))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// The runner hands over a new batch only after the previous one's
	// output was acknowledged (or to retry it, which recovers below).
	h.inflight = false
	var out []*Checkpoint
	for i := 0; i < len(recs); {
		p := recs[i].Partition
		j := i
		for j < len(recs) && recs[j].Partition == p {
			j++
		}
		var ds []Hash
		if digests != nil {
			ds = digests[i:j]
		}
		cks, err := h.handlePartition(ctx, p, recs[i:j], ds)
		if err != nil {
			// Forget the partition: the retry recovers from the topic.
			delete(h.parts, p)
			return nil, err
		}
		out = append(out, cks...)
		i = j
	}
	krs, err := h.records(out)
	if err != nil {
		return nil, err
	}
	if h.file != nil && len(out) > 0 {
		// Written before Kafka acknowledges: a failed batch may leave a
		// checkpoint in the file that the topic lacks. It is still a true,
		// signed statement, and its replay is byte-identical.
		if err := h.file.Append(out); err != nil {
			return nil, err
		}
	}
	h.inflight = len(krs) > 0
	return krs, nil
}

func (h *Checkpointer) records(cks []*Checkpoint) ([]*kgo.Record, error) {
	krs := make([]*kgo.Record, 0, len(cks))
	for _, c := range cks {
		kr, err := c.Record(h.topic)
		if err != nil {
			return nil, err
		}
		krs = append(krs, kr)
	}
	return krs, nil
}

// Produced implements pipeline.Acknowledger: the checkpoints Handle
// returned are in the topic, so Flush may cut behind them.
func (h *Checkpointer) Produced() {
	h.mu.Lock()
	h.inflight = false
	h.mu.Unlock()
}

// Flush checkpoints every partition whose pending records are older than
// CheckpointInterval, producing with produce, which must wait for the
// acknowledgement. It is what covers the tail of a partition that went
// quiet. It does nothing while the last batch's checkpoints may still be
// unacknowledged, so a partition's checkpoints never overtake each other;
// a failed produce forgets the partitions, which recover from the topic.
func (h *Checkpointer) Flush(ctx context.Context, produce func(context.Context, []*kgo.Record) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inflight {
		return nil
	}
	var out []*Checkpoint
	var ps []int32
	for p, st := range h.parts {
		if st.count > 0 && h.now().Sub(st.first) >= h.cfg.CheckpointInterval {
			out = append(out, h.cut(p, st))
			ps = append(ps, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	krs, err := h.records(out)
	if err == nil {
		err = produce(ctx, krs)
	}
	if err == nil && h.file != nil {
		err = h.file.Append(out)
	}
	if err != nil {
		for _, p := range ps {
			delete(h.parts, p)
		}
		return fmt.Errorf("integrity: flush: %w", err)
	}
	return nil
}

// RunFlush calls Flush every half CheckpointInterval until ctx ends,
// logging failures (the next call or batch recovers).
func (h *Checkpointer) RunFlush(ctx context.Context, produce func(context.Context, []*kgo.Record) error) {
	t := time.NewTicker(h.cfg.CheckpointInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.Flush(ctx, produce); err != nil && ctx.Err() == nil {
				h.log.Warn("checkpoint flush failed; will recover from the topic", "err", err)
			}
		}
	}
}

func (h *Checkpointer) handlePartition(ctx context.Context, p int32, recs []*kgo.Record, digests []Hash) ([]*Checkpoint, error) {
	var out []*Checkpoint
	st := h.parts[p]
	first := recs[0].Offset
	if st == nil || st.next != first {
		// A new assignment, or a retried batch whose earlier attempt moved
		// the chain: recover from what Kafka acknowledged.
		var err error
		if st, err = h.recover(ctx, p, first, &out); err != nil {
			return nil, err
		}
		h.parts[p] = st
	}
	for i, r := range recs {
		if digests != nil {
			h.add(st, r, digests[i], &out)
		} else {
			h.add(st, r, h.dg.Digest(r), &out)
		}
	}
	if st.count > 0 && h.now().Sub(st.first) >= h.cfg.CheckpointInterval {
		out = append(out, h.cut(p, st))
	}
	return out, nil
}

// recover rebuilds the chain of p from its last checkpoint and the raw
// records after it, up to first (exclusive).
func (h *Checkpointer) recover(ctx context.Context, p int32, first int64, out *[]*Checkpoint) (*chainState, error) {
	st := &chainState{next: -1}
	last, err := h.last(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("integrity: last checkpoint of partition %d: %w", p, err)
	}
	if last == nil {
		h.log.Info("starting chain", "partition", p, "offset", first)
		return st, nil
	}
	st.next, st.head, st.prevCk = last.To+1, last.ChainHead, last.Hash()
	if st.next >= first {
		return st, nil
	}
	h.log.Info("re-hashing raw records after the last checkpoint", "partition", p, "from", st.next, "to", first-1)
	err = h.read(ctx, p, st.next, first-1, func(r *kgo.Record) error {
		if r.Offset < first {
			h.add(st, r, h.dg.Digest(r), out)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("integrity: re-reading partition %d: %w", p, err)
	}
	return st, nil
}

// add extends the chain by r, whose digest is d, cutting a checkpoint at
// CheckpointEvery records or before a gap in the offsets.
func (h *Checkpointer) add(st *chainState, r *kgo.Record, d Hash, out *[]*Checkpoint) {
	switch {
	case st.next >= 0 && r.Offset < st.next:
		return // already covered by a checkpoint
	case st.next >= 0 && r.Offset > st.next:
		// Records the stage never saw (retention deleted them first):
		// close the segment so the gap shows between two checkpoints.
		h.log.Warn("raw offsets missing before they were hashed", "partition", r.Partition, "from", st.next, "to", r.Offset-1)
		if st.count > 0 {
			*out = append(*out, h.cut(r.Partition, st))
		}
	}
	if st.count == 0 {
		st.from, st.start, st.first = r.Offset, st.head, r.Timestamp
		st.seg.Reset(st.head)
		if h.cfg.RecordDigests {
			st.digests = make([]byte, 0, h.cfg.CheckpointEvery*prefixLen)
		}
	}
	st.seg.Add(r.Offset, d)
	if h.cfg.RecordDigests {
		st.digests = append(st.digests, d[:prefixLen]...)
	}
	st.count++
	st.next = r.Offset + 1
	st.lastTS = r.Timestamp
	if st.count >= int64(h.cfg.CheckpointEvery) {
		*out = append(*out, h.cut(r.Partition, st))
	}
}

// cut signs the pending segment of st and starts the next one.
func (h *Checkpointer) cut(p int32, st *chainState) *Checkpoint {
	st.head = st.seg.Head()
	c := &Checkpoint{
		V: Version, Topic: h.rawTopic, Partition: p,
		From: st.from, To: st.next - 1, Count: st.count,
		StartHead: st.start, ChainHead: st.head, Prev: st.prevCk,
		FirstTime: st.first.UTC().Truncate(time.Millisecond), LastTime: st.lastTS.UTC().Truncate(time.Millisecond),
		Digests: st.digests,
	}
	c.Sign(h.signer)
	st.prevCk = c.Hash()
	st.count, st.digests = 0, nil
	return c
}

// String names the handler in logs.
func (h *Checkpointer) String() string { return fmt.Sprintf("integrity(%s→%s)", h.rawTopic, h.topic) }
