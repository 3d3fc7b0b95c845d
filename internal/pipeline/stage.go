// Package pipeline runs a stage as a Kafka consumer group: poll a batch,
// hand it to the stage, produce the stage's output records and wait for their
// acknowledgement, and only then commit the input offsets. A crash anywhere
// in that sequence replays the batch: delivery is at-least-once, and the
// sinks' deterministic ids make it effectively-once.
//
// Stages never see offsets or commits. A stage whose state lives with a
// partition (detection windows) implements Warmer: after an assignment the
// runner rewinds the partition far enough to rebuild that state and feeds the
// already-processed records to Warm, never to Handle, so nothing is emitted
// twice.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler is one stage's processing of a polled batch.
type Handler interface {
	// Handle processes records (from any of the stage's assigned partitions,
	// in offset order per partition) and returns the records to produce.
	// Bad input is the handler's to route (a DLQ record in the output); an
	// error means the batch could not be processed at all (a sink is down),
	// and the runner retries the same batch with backoff until ctx ends.
	Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error)
}

// Acknowledger is implemented by handlers that must know when the output
// of the batch they last returned has been acknowledged by Kafka.
type Acknowledger interface {
	// Produced is called once a batch's output is acknowledged, before
	// its offsets are committed.
	Produced()
}

// PartitionAware is implemented by handlers that keep state per partition.
type PartitionAware interface {
	// Assigned is called before any record of the partition is handed over.
	Assigned(topic string, partition int32)
	// Revoked is called when the partition is taken away; its state must go.
	Revoked(topic string, partition int32)
}

// Warmer is implemented by handlers that rebuild state from input they
// already processed before a restart or rebalance.
type Warmer interface {
	PartitionAware
	// WarmWindow is how far back, in record time, state reaches.
	WarmWindow() time.Duration
	// Warm replays already-processed records into state without output.
	Warm(ctx context.Context, recs []*kgo.Record)
}

// Stage describes one consumer-group stage.
type Stage struct {
	// Name is the stage name used in logs and metrics ("normalize").
	Name string
	// Group is the consumer group.
	Group string
	// Topics are the input topics.
	Topics []string
	// Handler processes batches.
	Handler Handler
	// MaxPollRecords bounds a batch (default 5000).
	MaxPollRecords int
	// Metrics receives counts; nil disables them.
	Metrics *StageMetrics
	// Logger receives the stage's logs.
	Logger *slog.Logger
	// GroupOpts are extra consumer-group options (session timeout).
	GroupOpts []kgo.Opt
	// InFlight is how many batches may be handled at once (default 1).
	// Above 1 the runner polls and hands over the next batch while the
	// previous ones are still being handled, and commits in poll order;
	// only for handlers whose batches are independent of each other and
	// safe to handle concurrently (the index stage: a sink waiting on one
	// batch's answer idles while the next is read and encoded). Handlers
	// keeping state per partition, or acknowledging output, are refused.
	InFlight int
}

// Runner owns a stage's consumer client.
type Runner struct {
	st   Stage
	cl   *kgo.Client
	prod *kgo.Client
	log  *slog.Logger

	mu       sync.Mutex
	liveFrom map[string]map[int32]int64 // offsets below are warm-up only

	rebalanceWanted atomic.Bool // a rebalance waits for the batches in flight
	waitingHook     func()      // tests: a handled batch waits for the one before it
}

// NewRunner builds the consumer for st. base holds the connection options;
// prod is the client used to produce outputs (may be shared between stages).
func NewRunner(st Stage, base []kgo.Opt, prod *kgo.Client) (*Runner, error) {
	if st.MaxPollRecords <= 0 {
		st.MaxPollRecords = 5000
	}
	if st.InFlight <= 0 {
		st.InFlight = 1
	}
	if st.InFlight > 1 {
		_, partitioned := st.Handler.(PartitionAware)
		_, acks := st.Handler.(Acknowledger)
		if partitioned || acks {
			return nil, fmt.Errorf("stage %s: %d batches in flight: the handler keeps per-partition state or acknowledges output, so its batches must be handled one at a time", st.Name, st.InFlight)
		}
	}
	log := st.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{st: st, prod: prod, log: log.With("stage", st.Name), liveFrom: map[string]map[int32]int64{}}
	opts := append([]kgo.Opt{}, base...)
	opts = append(opts,
		kgo.ConsumerGroup(st.Group),
		kgo.ConsumeTopics(st.Topics...),
		kgo.DisableAutoCommit(),
		// Rebalances wait until a batch is committed, so a partition never
		// changes hands with processed-but-uncommitted records.
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.OnPartitionsAssigned(r.assigned),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.revoked),
		kgo.OnPartitionsCallbackBlocked(func(context.Context, *kgo.Client) { r.rebalanceWanted.Store(true) }),
	)
	opts = append(opts, st.GroupOpts...)
	if w, ok := st.Handler.(Warmer); ok {
		opts = append(opts, kgo.AdjustFetchOffsetsFn(func(ctx context.Context, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
			return r.rewind(ctx, base, w.WarmWindow(), offs)
		}))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", st.Name, err)
	}
	r.cl = cl
	return r, nil
}

func (r *Runner) assigned(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
	pa, ok := r.st.Handler.(PartitionAware)
	if !ok {
		return
	}
	for t, ps := range tps {
		for _, p := range ps {
			pa.Assigned(t, p)
		}
	}
}

func (r *Runner) revoked(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
	r.mu.Lock()
	for t, ps := range tps {
		for _, p := range ps {
			delete(r.liveFrom[t], p)
		}
	}
	r.mu.Unlock()
	pa, ok := r.st.Handler.(PartitionAware)
	if !ok {
		return
	}
	for t, ps := range tps {
		for _, p := range ps {
			pa.Revoked(t, p)
		}
	}
}

// rewind moves each assigned partition back by window in record time from
// its committed position, remembering where live processing starts.
func (r *Runner) rewind(ctx context.Context, base []kgo.Opt, window time.Duration, offs map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	// A separate client: r.cl may not be assigned yet when the group's first
	// assignment arrives, and its own requests wait on this callback.
	admCl, err := kgo.NewClient(base...)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	for topic, ps := range offs {
		for p, off := range ps {
			committed := off.EpochOffset().Offset
			if committed <= 0 {
				continue
			}
			ts, err := recordTime(ctx, base, topic, p, committed-1)
			if err != nil {
				r.log.Warn("cannot read last processed record; state not rebuilt", "topic", topic, "partition", p, "err", err)
				continue
			}
			listed, err := adm.ListOffsetsAfterMilli(ctx, ts.Add(-window).UnixMilli(), topic)
			if err != nil {
				r.log.Warn("cannot list offsets for rewind; state not rebuilt", "topic", topic, "partition", p, "err", err)
				continue
			}
			lo, ok := listed.Lookup(topic, p)
			if !ok || lo.Err != nil || lo.Offset >= committed {
				continue
			}
			r.mu.Lock()
			if r.liveFrom[topic] == nil {
				r.liveFrom[topic] = map[int32]int64{}
			}
			r.liveFrom[topic][p] = committed
			r.mu.Unlock()
			ps[p] = kgo.NewOffset().At(lo.Offset).WithEpoch(-1)
			r.log.Info("rebuilding state", "topic", topic, "partition", p, "from", lo.Offset, "live_from", committed)
		}
	}
	return offs, nil
}

// recordTime reads the timestamp of one record with a short-lived direct
// consumer: the group client cannot fetch while its assignment is pending.
func recordTime(ctx context.Context, base []kgo.Opt, topic string, p int32, offset int64) (time.Time, error) {
	opts := append([]kgo.Opt{}, base...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(offset)}}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return time.Time{}, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollRecords(ctx, 1)
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		for _, rec := range fs.Records() {
			return rec.Timestamp, nil
		}
	}
}

// Run polls and processes until ctx is done, then commits nothing further
// and closes the consumer (leaving the group so partitions move promptly).
//
// Batches are handed over in poll order, at most st.InFlight at a time,
// each in its own goroutine; each commits only after the one polled before
// it has, so the committed position never passes an unfinished batch.
// Rebalances are allowed only with nothing in flight: before a poll that
// has nothing buffered to return (the stage keeps up), and as soon as the
// group asks for one.
func (r *Runner) Run(ctx context.Context) error {
	defer r.cl.CloseAllowingRebalance()
	warmer, _ := r.st.Handler.(Warmer)
	m := r.st.Metrics
	var (
		batches sync.WaitGroup
		slots   = make(chan struct{}, r.st.InFlight)
		prev    = closedChan
	)
	defer batches.Wait()
	inFlight := func() bool { return len(slots) > 0 }
	for {
		if r.rebalanceWanted.Load() || (inFlight() && r.cl.BufferedFetchRecords() == 0) {
			batches.Wait()
			r.rebalanceWanted.Store(false)
			r.cl.AllowRebalance()
		}
		fs := r.cl.PollRecords(ctx, r.st.MaxPollRecords)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			r.log.Error("fetch failed", "topic", t, "partition", p, "err", err)
			m.fetchError()
		})
		var live, warm []*kgo.Record
		r.mu.Lock()
		fs.EachPartition(func(ftp kgo.FetchTopicPartition) {
			if len(ftp.Records) > 0 {
				last := ftp.Records[len(ftp.Records)-1]
				m.lag(ftp.Topic, ftp.Partition, ftp.HighWatermark-last.Offset-1)
			}
			lf, rewound := r.liveFrom[ftp.Topic][ftp.Partition]
			for _, rec := range ftp.Records {
				if rewound && rec.Offset < lf {
					warm = append(warm, rec)
					continue
				}
				live = append(live, rec)
			}
		})
		r.mu.Unlock()
		if len(warm) > 0 && warmer != nil {
			warmer.Warm(ctx, warm)
		}
		if len(live) > 0 {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			done := make(chan struct{})
			after := prev
			prev = done
			if r.st.InFlight == 1 {
				// One at a time: no goroutine, and the next poll waits.
				r.process(ctx, live, after, done)
				<-slots
			} else {
				batches.Go(func() {
					defer func() { <-slots }()
					r.process(ctx, live, after, done)
				})
			}
		}
		if !inFlight() {
			r.cl.AllowRebalance()
		}
	}
}

// closedChan is the "previous batch committed" signal of the first batch.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// process handles recs and produces the output, retrying with backoff until
// that succeeds or ctx ends; then, once the batch polled before it has
// committed (after is closed), commits recs, retrying the commit alone, and
// closes done. A batch abandoned because ctx ended closes nothing: it and
// every later batch stay uncommitted and are replayed.
func (r *Runner) process(ctx context.Context, recs []*kgo.Record, after <-chan struct{}, done chan<- struct{}) {
	m := r.st.Metrics
	m.in(len(recs))
	start := time.Now()
	bo := Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	failed := func(what string, err error) bool {
		if ctx.Err() != nil {
			return true
		}
		m.retry()
		r.log.Warn(what+" failed; retrying", "records", len(recs), "err", err)
		return bo.Wait(ctx) != nil
	}
	for {
		out, err := r.st.Handler.Handle(ctx, recs)
		if err == nil {
			err = Produce(ctx, r.prod, out)
		}
		if err == nil {
			if a, ok := r.st.Handler.(Acknowledger); ok {
				a.Produced()
			}
			m.out(out)
			break
		}
		if failed("batch", err) {
			return
		}
	}
	select {
	case <-after:
	default:
		if r.waitingHook != nil {
			r.waitingHook()
		}
		select {
		case <-after:
		case <-ctx.Done():
			return
		}
	}
	// Commit only after the outputs are acknowledged: a crash before this
	// line replays the batch, and the sinks drop what they already have.
	for {
		err := r.cl.CommitRecords(ctx, recs...)
		if err == nil {
			break
		}
		if failed("commit", fmt.Errorf("commit: %w", err)) {
			return
		}
	}
	m.took(time.Since(start))
	close(done)
}

// Produce sends recs and waits until Kafka acknowledged every one.
func Produce(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	return nil
}

// Backoff doubles its wait from Min to Max. Wait returns early with the
// context's error, so a stop always wins over a retry.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Wait sleeps for the next backoff step or until ctx ends.
func (b *Backoff) Wait(ctx context.Context) error {
	if b.cur == 0 {
		b.cur = b.Min
	} else if b.cur *= 2; b.cur > b.Max {
		b.cur = b.Max
	}
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
