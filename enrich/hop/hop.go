// Package hop links the events several hops wrote for one request. A
// request that crosses a CDN, a load balancer, an API gateway and the
// service is logged up to four times; hop gives every such event
// trailwatch.hop so the trail shows the request, and its true client,
// once.
//
// Events are linked by http.request.id (X-Request-ID and the like, which
// normalizers fill where logged) and by trace.id (the ALB's or API
// Gateway's X-Amzn-Trace-Id, a GCP trace). Ids are compared in a canonical
// form: the Root of an X-Amzn-Trace-Id ("Self=…;Root=1-…;Parent=…" and
// "Root=1-…" link), the trace id of a W3C traceparent, else the id as
// logged. An event carrying both ids links through either and makes each
// find the other later.
//
// The first event seen for an id gets hop.id, index 0 and client_ip, the
// true client: source.ip when the proxies enricher resolved it through
// trusted proxies, else the first public address of the X-Forwarded-For
// chain (the leftmost, which a client can forge when no proxy is trusted),
// else source.ip. Each later event gets the next index, duplicate true,
// first_event_id = the first event's event.id, and the same client_ip.
// Events without an id are left alone.
//
// State is an LRU of at most max_ids ids, each remembering up to max_hops
// event ids with their answers, so a redelivered event (same event.id)
// gets the same answer as the first time. An id expires window after its
// first hop in event time; an event further than window from the first
// hop starts the id afresh (ids are reused). Evicting an unexpired id to
// make room is counted: its later hops start a new group.
//
// State is process-local and not persisted. The hops of one request carry
// different actors (the CDN saw the client, the service saw a gateway), so
// they can land on different partitions, and so in different detect
// processes: there, or after a restart, a later hop is marked as a first
// hop. That is acceptable because hop only removes double counting; an
// unmarked duplicate is counted as every event was before hop existed, and
// nothing is ever dropped or hidden.
package hop

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/internal/dlist"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Config bounds the correlation state.
type Config struct {
	// Enabled turns hop correlation on; default off.
	Enabled bool `koanf:"enabled"`
	// Window is how long, in event time from its first hop, an id keeps
	// collecting hops; default 2m.
	Window time.Duration `koanf:"window"`
	// MaxIDs bounds the ids remembered (LRU); default 100000, about 300
	// bytes each.
	MaxIDs int `koanf:"max_ids"`
	// MaxHops bounds the event ids remembered per id for redeliveries;
	// default 16. Later hops still get an index, but a redelivery of
	// one gets a new index.
	MaxHops int `koanf:"max_hops"`
	// XFFExtraKeys are the trailwatch.extra keys tried, in order, for the
	// raw X-Forwarded-For value; default http_x_forwarded_for,
	// x_forwarded_for, xff.
	XFFExtraKeys []string `koanf:"xff_extra_keys"`
}

// DefaultConfig returns hop correlation off with its default bounds.
func DefaultConfig() Config {
	return Config{
		Window: 2 * time.Minute, MaxIDs: 100_000, MaxHops: 16,
		XFFExtraKeys: []string{"http_x_forwarded_for", "x_forwarded_for", "xff"},
	}
}

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, errors.New("window: must be positive"))
	}
	if c.MaxIDs < 1 {
		errs = append(errs, errors.New("max_ids: must be at least 1"))
	}
	if c.MaxHops < 1 {
		errs = append(errs, errors.New("max_hops: must be at least 1"))
	}
	return errors.Join(errs...)
}

// Stats are the enricher's counters since New.
type Stats struct {
	First       uint64 // events that were the first hop of their id
	Duplicates  uint64 // events marked duplicate
	Redelivered uint64 // events answered from memory (same event.id)
	NoID        uint64 // events without a request or trace id
	// Evictions counts unexpired ids dropped to stay within max_ids;
	// Expired counts ids dropped after window.
	Evictions, Expired uint64
	IDs                int // ids held now
}

// Enricher is the hop correlator. It is safe for concurrent use; batches
// are serialized by one lock.
type Enricher struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	index  map[string]*slot        // canonical id → its LRU slot
	lru    dlist.List[slot, *slot] // most recently used first
	newest time.Time               // latest event time seen, for expiry

	first, duplicates, redelivered, noID, evictions, expired atomic.Uint64
}

// group is one request: what its first hop decided, and the hops seen.
type group struct {
	id, firstEventID, clientIP string
	first                      time.Time // event time of the first hop
	next                       int       // index the next new hop gets
	seen                       []seenHop
}

type seenHop struct {
	eventID string
	index   int
}

// slot is one id in the LRU; several ids may point at one group.
type slot struct {
	dlist.Links[slot]
	key string
	g   *group
}

// New validates cfg and returns the enricher.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Enricher{cfg: cfg, log: logger, index: make(map[string]*slot, min(cfg.MaxIDs, 4096))}, nil
}

// Enrich implements enrich.Enricher. It never fails on an event; it
// returns only ctx's error, before touching the batch.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range evs {
		e.one(&evs[i])
	}
	return nil
}

func (e *Enricher) one(ev *schema.Event) {
	var keys [2]string
	n := 0
	if k := canonical(ev.HTTP.Request.ID); k != "" {
		keys[n], n = k, n+1
	}
	if k := canonical(ev.Trace.ID); k != "" && (n == 0 || k != keys[0]) {
		keys[n], n = k, n+1
	}
	if n == 0 {
		e.noID.Add(1)
		return
	}
	if ev.Timestamp.After(e.newest) {
		e.newest = ev.Timestamp
	}
	var g *group
	for _, k := range keys[:n] {
		if s := e.index[k]; s != nil {
			if e.within(s.g, ev.Timestamp) {
				g = s.g
				e.lru.MoveToFront(s)
				break
			}
			e.remove(s) // the id was reused after its window
			e.expired.Add(1)
		}
	}
	if g == nil {
		g = &group{id: keys[0], firstEventID: ev.Event.ID, clientIP: e.trueClient(ev), first: ev.Timestamp}
	}
	for _, k := range keys[:n] {
		if e.index[k] == nil {
			e.insert(k, g)
		}
	}
	index := -1
	if ev.Event.ID != "" {
		for _, h := range g.seen {
			if h.eventID == ev.Event.ID {
				index = h.index
				e.redelivered.Add(1)
				break
			}
		}
	}
	if index < 0 {
		index = g.next
		g.next++
		if ev.Event.ID != "" && len(g.seen) < e.cfg.MaxHops {
			g.seen = append(g.seen, seenHop{eventID: ev.Event.ID, index: index})
		}
		if index == 0 {
			e.first.Add(1)
		} else {
			e.duplicates.Add(1)
		}
	}
	ev.Trailwatch.Hop = schema.Hop{ID: g.id, Index: index, ClientIP: g.clientIP}
	if index > 0 {
		ev.Trailwatch.Hop.Duplicate = true
		ev.Trailwatch.Hop.FirstEventID = g.firstEventID
	}
}

// within reports whether t is within the window of g's first hop, either
// side: hops of one request arrive in any order.
func (e *Enricher) within(g *group, t time.Time) bool {
	d := t.Sub(g.first)
	return d <= e.cfg.Window && d >= -e.cfg.Window
}

// trueClient picks the request's client address (see the package doc).
func (e *Enricher) trueClient(ev *schema.Event) string {
	if ev.Trailwatch.Extra["source.proxy.ip"] != "" {
		return ev.Source.IP // the proxies enricher walked a trusted chain
	}
	chain := ""
	for _, k := range e.cfg.XFFExtraKeys {
		if v := ev.Trailwatch.Extra[k]; v != "" && v != "-" {
			chain = v
			break
		}
	}
	if chain == "" {
		chain = ev.Client.IP
	}
	for hop := range strings.SplitSeq(chain, ",") {
		if a, ok := parseHop(strings.TrimSpace(hop)); ok && public(a) {
			return a.String()
		}
	}
	return ev.Source.IP
}

// parseHop reads one X-Forwarded-For entry, with or without a port.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// public reports whether a can be an internet client: not private,
// loopback, link-local, carrier-grade NAT, multicast or unspecified.
func public(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

// canonical returns the form ids are compared in: the Root of an
// X-Amzn-Trace-Id, the trace id of a traceparent, else id trimmed; "" and
// "-" are no id.
func canonical(id string) string {
	id = strings.TrimSpace(id)
	if id == "" || id == "-" {
		return ""
	}
	if i := strings.Index(id, "Root="); i >= 0 && (i == 0 || id[i-1] == ';') {
		root := id[i+len("Root="):]
		if j := strings.IndexByte(root, ';'); j >= 0 {
			root = root[:j]
		}
		return root
	}
	// traceparent: 2 hex version, 32 hex trace id, 16 hex parent, 2 hex flags.
	if len(id) == 55 && id[2] == '-' && id[35] == '-' && id[52] == '-' {
		return id[3:35]
	}
	return id
}

// insert adds key → g, first dropping expired ids from the tail, then the
// least recently used id if the LRU is full.
func (e *Enricher) insert(key string, g *group) {
	for old := e.lru.Back(); old != nil && e.newest.Sub(old.g.first) > e.cfg.Window; old = e.lru.Back() {
		e.remove(old)
		e.expired.Add(1)
	}
	if len(e.index) >= e.cfg.MaxIDs {
		e.remove(e.lru.Back())
		e.evictions.Add(1)
	}
	s := &slot{key: key, g: g}
	e.index[key] = s
	e.lru.PushFront(s)
}

func (e *Enricher) remove(s *slot) {
	e.lru.Remove(s)
	delete(e.index, s.key)
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	e.mu.Lock()
	ids := len(e.index)
	e.mu.Unlock()
	return Stats{
		First: e.first.Load(), Duplicates: e.duplicates.Load(), Redelivered: e.redelivered.Load(), NoID: e.noID.Load(),
		Evictions: e.evictions.Load(), Expired: e.expired.Load(), IDs: ids,
	}
}

// Close implements enrich.Enricher; there is nothing to release.
func (e *Enricher) Close(context.Context) error { return nil }
