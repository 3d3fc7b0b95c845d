package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/pipeline"
	"github.com/trailwatch/trailwatch/internal/silence"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs"
)

// Notifier is an AlertNotifier with the name its sent-markers are kept under.
type Notifier struct {
	Name string
	outputs.AlertNotifier
	// IgnoreSilences makes the notifier act on silenced alerts too
	// (response actions: a silence stops paging, not remediation).
	IgnoreSilences bool
}

// Notify pages each alert once per notifier. What was sent is remembered in
// a compacted topic (one marker per notifier and alert id), loaded at start,
// so a restart or a replay of the alerts topic does not page again. The one
// window left is a crash between the notifier's acknowledgement and the
// marker's: that alert is paged a second time. Retryable failures (rate
// limits, 5xx) hold the batch and retry with backoff; others go to the DLQ.
//
// A notifier that groups (outputs.Grouper with Grouping() true) is not
// called per alert: Handle hands it the batch's alerts (Accept), flushes
// what is due at once (so a group_wait of 0 pages before the offsets are
// committed), and writes the groups' state records ("<notifier>/group/<id>")
// and the alerts' markers to the notified topic synchronously, under the
// same lock as RunFlush, which flushes on a ticker. Records of one group
// therefore reach the topic in the order they were made, and a restart
// reloads the groups (LoadNotified) where they were: the same thread goes
// on, and accepted-but-unsent alerts are sent, not lost. Alerts matched by
// an active silence are marked handled without being paged.
type Notify struct {
	NotifiedTopic string
	DLQTopic      string
	Notifiers     []Notifier
	Log           *slog.Logger
	// Producer writes group state and markers synchronously; nil returns
	// them with Handle's output instead (tests without a flusher).
	Producer *kgo.Client
	// Silences, when set, stop paging for the alerts they match.
	Silences *silence.Store

	// TTL bounds how long a sent marker is kept: older ones are dropped
	// from memory and tombstoned in the compacted topic, so neither grows
	// without bound. An alert older than TTL is not expected on the alerts
	// topic again (the group's offsets are past it).
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	sent      map[string]time.Time
	lastPrune time.Time
	paged     *prometheus.CounterVec
	skipped   prometheus.Counter
	dlq       prometheus.Counter
	silenced  prometheus.Counter

	// gmu serialises the groupers' Accept/Flush with the writing of their
	// state, so one group's records reach the topic in order.
	gmu sync.Mutex
}

// NewNotify returns the notify stage handler with the markers already sent.
func NewNotify(notifiedTopic, dlqTopic string, ns []Notifier, sent map[string]time.Time, reg prometheus.Registerer, log *slog.Logger) *Notify {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if sent == nil {
		sent = map[string]time.Time{}
	}
	h := &Notify{
		NotifiedTopic: notifiedTopic, DLQTopic: dlqTopic, Notifiers: ns, Log: log, sent: sent,
		TTL:      DefaultSentTTL,
		paged:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "trailwatch_notify_alerts_total", Help: "Alerts sent, by notifier."}, []string{"notifier"}),
		skipped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_notify_duplicates_total", Help: "Alerts not sent again because they were already sent."}),
		dlq:      prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_notify_dlq_total", Help: "Alerts a notifier refused permanently, sent to the dead-letter topic."}),
		silenced: prometheus.NewCounter(prometheus.CounterOpts{Name: "trailwatch_notify_silenced_total", Help: "Alerts not paged because a silence matched them."}),
	}
	for _, n := range ns {
		h.paged.WithLabelValues(n.Name)
	}
	if reg != nil {
		reg.MustRegister(h.paged, h.skipped, h.dlq, h.silenced)
	}
	return h
}

// DefaultSentTTL is how long sent markers are kept by default.
const DefaultSentTTL = 30 * 24 * time.Hour

// prune drops markers older than TTL, at most once an hour, returning the
// tombstones that remove them from the compacted topic.
func (h *Notify) prune(now time.Time) []*kgo.Record {
	if h.TTL <= 0 || now.Sub(h.lastPrune) < time.Hour {
		return nil
	}
	h.lastPrune = now
	var out []*kgo.Record
	for k, at := range h.sent {
		if now.Sub(at) > h.TTL {
			delete(h.sent, k)
			out = append(out, &kgo.Record{Topic: h.NotifiedTopic, Key: []byte(k)}) // nil value: a tombstone
		}
	}
	return out
}

// Handle implements pipeline.Handler.
func (h *Notify) Handle(ctx context.Context, recs []*kgo.Record) ([]*kgo.Record, error) {
	now := h.clock()
	out := h.prune(now)
	grouped := map[int][]schema.Alert{} // by index in Notifiers
	var markers []*kgo.Record           // of grouped alerts, written with the group state
	for _, kr := range recs {
		var a schema.Alert
		if err := json.Unmarshal(kr.Value, &a); err != nil || a.Event.ID == "" {
			h.dlq.Inc()
			out = append(out, DLQRecord(h.DLQTopic, "notify", fmt.Sprintf("decode alert: %v", err), kr))
			continue
		}
		silenced := h.isSilenced(&a, now)
		for i, n := range h.Notifiers {
			key := n.Name + "/" + a.Event.ID
			if _, done := h.sent[key]; done {
				h.skipped.Inc()
				continue
			}
			at := now.UTC()
			marker := &kgo.Record{Topic: h.NotifiedTopic, Key: []byte(key), Value: at.AppendFormat(nil, time.RFC3339)}
			switch {
			case silenced && !n.IgnoreSilences:
				h.silenced.Inc()
				h.sent[key] = at
				out = append(out, marker)
				continue
			case grouping(n):
				grouped[i] = append(grouped[i], a)
				h.sent[key] = at
				markers = append(markers, marker)
				continue
			}
			err := h.send(ctx, n, a)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				h.dlq.Inc()
				out = append(out, DLQRecord(h.DLQTopic, "notify", n.Name+": "+err.Error(), kr))
				continue
			}
			h.sent[key] = at
			h.paged.WithLabelValues(n.Name).Inc()
			out = append(out, marker)
		}
	}
	if !slices.ContainsFunc(h.Notifiers, grouping) {
		return out, nil
	}
	h.gmu.Lock()
	defer h.gmu.Unlock()
	state := markers
	for i, alerts := range grouped {
		n := h.Notifiers[i]
		g := n.AlertNotifier.(outputs.Grouper)
		state = append(state, h.stateRecords(n.Name, g.Accept(now, alerts...))...)
		h.paged.WithLabelValues(n.Name).Add(float64(len(alerts)))
	}
	// Flush at once: a group whose wait is 0 (or over) pages before the
	// batch's offsets are committed.
	flushed, dead := h.flushLocked(ctx, now)
	state = append(state, flushed...)
	if h.Producer == nil {
		return append(append(out, state...), dead...), nil
	}
	if err := pipeline.Produce(ctx, h.Producer, append(state, dead...)); err != nil {
		// Nothing is committed: the batch is replayed, and its alerts
		// (markers not written) accepted again into the same groups.
		for _, m := range markers {
			delete(h.sent, string(m.Key))
		}
		return nil, fmt.Errorf("notify: write group state: %w", err)
	}
	return out, nil
}

// RunFlush flushes the grouping notifiers every interval (1s when 0) until
// ctx ends, writing their state changes and dead letters. It is the owner
// of no goroutine but its own; the caller stops it with ctx.
func (h *Notify) RunFlush(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.gmu.Lock()
		recs, dead := h.flushLocked(ctx, h.clock())
		if len(recs)+len(dead) > 0 && h.Producer != nil {
			if err := pipeline.Produce(ctx, h.Producer, append(recs, dead...)); err != nil && ctx.Err() == nil {
				// The groups moved on in memory; a restart before the
				// next successful write re-sends from the older state.
				h.Log.Error("notify: writing group state failed", "err", err)
			}
		}
		h.gmu.Unlock()
	}
}

// flushLocked flushes every grouping notifier; h.gmu is held.
func (h *Notify) flushLocked(ctx context.Context, now time.Time) (state, dead []*kgo.Record) {
	for _, n := range h.Notifiers {
		if !grouping(n) {
			continue
		}
		changes, dropped := n.AlertNotifier.(outputs.Grouper).Flush(ctx, now)
		state = append(state, h.stateRecords(n.Name, changes)...)
		for _, d := range dropped {
			h.dlq.Inc()
			b, _ := json.Marshal(&d.Alert)
			in := &kgo.Record{Topic: "notify/" + n.Name, Key: []byte(d.Alert.Event.ID), Value: b, Partition: -1, Offset: -1}
			dead = append(dead, DLQRecord(h.DLQTopic, "notify", n.Name+": "+d.Reason, in))
		}
	}
	return state, dead
}

// stateRecords turns a grouper's changes into records of the notified
// topic, keyed "<notifier>/<key>", in key order.
func (h *Notify) stateRecords(name string, changes map[string][]byte) []*kgo.Record {
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*kgo.Record, 0, len(keys))
	for _, k := range keys {
		out = append(out, &kgo.Record{Topic: h.NotifiedTopic, Key: []byte(name + "/" + k), Value: changes[k]})
	}
	return out
}

func (h *Notify) isSilenced(a *schema.Alert, now time.Time) bool {
	if h.Silences == nil {
		return false
	}
	rule, key := silence.AlertKey(a)
	_, ok, err := h.Silences.Silenced(rule, key, now)
	if err != nil {
		h.Log.Warn("reading silences failed; using the last read", "err", err)
	}
	return ok
}

func (h *Notify) clock() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// grouping reports whether n pages per group.
func grouping(n Notifier) bool {
	g, ok := n.AlertNotifier.(outputs.Grouper)
	return ok && g.Grouping()
}

// send retries retryable failures until ctx ends; it returns the error of a
// permanent failure.
func (h *Notify) send(ctx context.Context, n Notifier, a schema.Alert) error {
	bo := pipeline.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	for {
		retry, err := n.Notify(ctx, a)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		h.Log.Warn("notifier failed; retrying", "notifier", n.Name, "alert", a.Event.ID, "err", err)
		if werr := bo.Wait(ctx); werr != nil {
			return werr
		}
	}
}

// LoadSent reads the markers topic from start to its current end and
// returns the keys it holds with when each was sent (tombstones remove).
// Group state records are left out (LoadNotified returns them).
func LoadSent(ctx context.Context, base []kgo.Opt, topic string) (map[string]time.Time, error) {
	sent, _, err := LoadNotified(ctx, base, topic)
	return sent, err
}

// LoadNotified reads the notified topic from start to its current end and
// returns the sent markers (key → when sent) and the grouping notifiers'
// state, by notifier name, keyed as Accept/Flush returned it (a key
// "<notifier>/group/…" holds group state). Tombstones remove.
func LoadNotified(ctx context.Context, base []kgo.Opt, topic string) (map[string]time.Time, map[string]map[string][]byte, error) {
	sent := map[string]time.Time{}
	state := map[string]map[string][]byte{}
	admCl, err := kgo.NewClient(base...)
	if err != nil {
		return nil, nil, err
	}
	defer admCl.Close()
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return sent, state, nil
	}
	offs := map[int32]kgo.Offset{}
	for p := range want {
		offs[p] = kgo.NewOffset().AtStart()
	}
	opts := append([]kgo.Opt{}, base...)
	opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if name, rest, ok := strings.Cut(string(r.Key), "/"); ok && strings.HasPrefix(rest, "group/") {
				if state[name] == nil {
					state[name] = map[string][]byte{}
				}
				if r.Value == nil {
					delete(state[name], rest)
				} else {
					state[name][rest] = r.Value
				}
			} else if r.Value == nil {
				delete(sent, string(r.Key))
			} else if at, err := time.Parse(time.RFC3339, string(r.Value)); err == nil {
				sent[string(r.Key)] = at
			} else {
				sent[string(r.Key)] = r.Timestamp
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return sent, state, nil
}
