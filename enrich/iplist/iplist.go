// Package iplist marks events whose source or client address is on a named
// list of IP addresses and CIDR networks loaded from files: internal
// ranges, partners, scanners, Tor exits, threat feeds.
//
// A match tags the event "iplist:<name>" and, when the matching line has a
// label (CSV "cidr,label"), sets labels["iplist_<name>"] to it. A list
// marked threat also tags "threat:<name>" and sets trailwatch.extra
// "threat.list" (list names, comma-separated), "threat.indicator.ip" (the
// address matched) and "threat.matched.field" (source.ip or client.ip), the
// parts of ECS threat.enrichments the schema can carry today.
//
// Files are re-read on a schedule when their modification time or size
// changes; a file that fails to read or parse keeps its previous contents,
// and the failure is logged and counted. Lookups are a binary search over
// disjoint sorted address ranges per list, built so that the most specific
// network wins. It deliberately does not fetch lists over the network
// (a cron job or sidecar does that and writes the file).
package iplist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/enrich/internal/mark"
	"github.com/trailwatch/trailwatch/enrich/internal/reload"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// List is one named list file.
type List struct {
	// Name names the list in tags and labels: letters, digits, '_' and '-'.
	Name string `koanf:"name"`
	// File is the path of the list: IPs or CIDRs one per line with
	// optional "# comment", or CSV "cidr,label".
	File string `koanf:"file"`
	// Threat marks a threat-intelligence list (see the package doc).
	Threat bool `koanf:"threat"`
}

// Config lists the files and how often they are re-read.
type Config struct {
	Lists []List `koanf:"lists"`
	// RefreshInterval is how often the files are checked for change;
	// default 5m, 0 never refreshes.
	RefreshInterval time.Duration `koanf:"refresh_interval"`
}

// DefaultConfig returns no lists (disabled) and a 5-minute refresh.
func DefaultConfig() Config { return Config{RefreshInterval: 5 * time.Minute} }

// Enabled reports whether any list is configured.
func (c Config) Enabled() bool { return len(c.Lists) > 0 }

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if len(c.Lists) == 0 {
		errs = append(errs, errors.New("lists: at least one list is required"))
	}
	seen := map[string]bool{}
	for i, l := range c.Lists {
		switch {
		case l.Name == "":
			errs = append(errs, fmt.Errorf("lists[%d].name: required", i))
		case !validName.MatchString(l.Name):
			errs = append(errs, fmt.Errorf("lists[%d].name: %q: only letters, digits, '_' and '-'", i, l.Name))
		case seen[l.Name]:
			errs = append(errs, fmt.Errorf("lists[%d].name: %q: duplicate", i, l.Name))
		}
		seen[l.Name] = true
		if l.File == "" {
			errs = append(errs, fmt.Errorf("lists[%d].file: required", i))
		}
	}
	if c.RefreshInterval < 0 {
		errs = append(errs, errors.New("refresh_interval: must not be negative"))
	}
	return errors.Join(errs...)
}

// ListStats are one list's counters.
type ListStats struct {
	Name    string
	Entries int    // lines loaded in the current version
	Matches uint64 // addresses matched since New
}

// Stats are the enricher's counters since New.
type Stats struct {
	Lists                    []ListStats
	Refreshes, RefreshErrors uint64
}

// Enricher is the IP-list enricher. It is safe for concurrent use.
type Enricher struct {
	cfg     Config
	log     *slog.Logger
	lists   atomic.Pointer[[]*list]
	matches []atomic.Uint64 // by list position, kept across refreshes
	mu      sync.Mutex      // serializes refreshes
	loop    *reload.Loop

	refreshes, refreshErrors atomic.Uint64
}

// list is one loaded version of a list file.
type list struct {
	name, tag, threatTag, labelKey string
	threat                         bool
	stamp                          reload.Stamp
	entries                        []entry
	table                          table
}

// New validates cfg, loads every list and starts the refresh ticker. Close
// stops it.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Enricher{cfg: cfg, log: logger, matches: make([]atomic.Uint64, len(cfg.Lists))}
	ls := make([]*list, len(cfg.Lists))
	var errs []error
	for i, c := range cfg.Lists {
		l, err := load(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("lists[%d].file: %w", i, err))
		}
		ls[i] = l
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e.lists.Store(&ls)
	e.loop = reload.Start(cfg.RefreshInterval, func() {
		if _, err := e.Refresh(); err != nil {
			e.log.Error("iplist refresh failed, keeping the previous contents", "err", err)
		}
	})
	return e, nil
}

func load(c List) (*list, error) {
	st, err := reload.Stat(c.File)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(c.File)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := parseList(c.File, f)
	if err != nil {
		return nil, err
	}
	spans := make([]span, len(entries))
	for i, en := range entries {
		lo, hi := prefixRange(en.prefix)
		spans[i] = span{lo: lo, hi: hi, src: int32(i)}
	}
	return &list{
		name: c.Name, tag: "iplist:" + c.Name, threatTag: "threat:" + c.Name, labelKey: "iplist_" + c.Name,
		threat: c.Threat, stamp: st, entries: entries, table: buildTable(spans),
	}, nil
}

// Refresh re-reads the lists whose files changed and swaps them in; it
// reports whether any changed. A list that fails keeps its old contents;
// the error names each that failed.
func (e *Enricher) Refresh() (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := *e.lists.Load()
	ls := make([]*list, len(old))
	copy(ls, old)
	changed := false
	var errs []error
	for i, c := range e.cfg.Lists {
		st, err := reload.Stat(c.File)
		if err == nil && st == old[i].stamp {
			continue
		}
		l, err := load(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("iplist %s: %w", c.Name, err))
			continue
		}
		ls[i], changed = l, true
	}
	if changed {
		e.lists.Store(&ls)
		e.refreshes.Add(1)
	}
	if err := errors.Join(errs...); err != nil {
		e.refreshErrors.Add(1)
		return changed, err
	}
	return changed, nil
}

// Enrich implements enrich.Enricher. It never fails on an event: an
// address that does not parse is left alone. It returns only ctx's error,
// before touching the batch.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ls := *e.lists.Load()
	for i := range evs {
		ev := &evs[i]
		if ev.Source.IP != "" {
			e.match(ev, ls, ev.Source.IP, "source.ip")
		}
		if ev.Client.IP != "" && ev.Client.IP != ev.Source.IP {
			e.match(ev, ls, ev.Client.IP, "client.ip")
		}
	}
	return nil
}

func (e *Enricher) match(ev *schema.Event, ls []*list, ip, field string) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return
	}
	key := addrU128(a.Unmap())
	for i, l := range ls {
		src := l.table.lookup(key)
		if src < 0 {
			continue
		}
		e.matches[i].Add(1)
		mark.Tag(ev, l.tag)
		if lb := l.entries[src].label; lb != "" {
			mark.Label(ev, l.labelKey, lb)
		}
		if l.threat {
			mark.Tag(ev, l.threatTag)
			prev := ev.Trailwatch.Extra["threat.list"]
			if prev == "" {
				mark.Extra(ev, "threat.list", l.name)
			} else if !containsName(prev, l.name) {
				mark.Extra(ev, "threat.list", prev+","+l.name)
			}
			if _, ok := ev.Trailwatch.Extra["threat.indicator.ip"]; !ok {
				mark.Extra(ev, "threat.indicator.ip", ip)
				mark.Extra(ev, "threat.matched.field", field)
			}
		}
	}
}

func containsName(csv, name string) bool {
	for n := range strings.SplitSeq(csv, ",") {
		if n == name {
			return true
		}
	}
	return false
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	ls := *e.lists.Load()
	st := Stats{Lists: make([]ListStats, len(ls)), Refreshes: e.refreshes.Load(), RefreshErrors: e.refreshErrors.Load()}
	for i, l := range ls {
		st.Lists[i] = ListStats{Name: l.name, Entries: len(l.entries), Matches: e.matches[i].Load()}
	}
	return st
}

// Close stops the refresh ticker, waiting for a refresh in progress or
// ctx. It is idempotent; Enrich keeps working on the last lists after it.
func (e *Enricher) Close(ctx context.Context) error { return e.loop.Stop(ctx) }
