// Package iplist marks events that match a named list of indicators: IP
// addresses and CIDR networks, domains and URLs, loaded from local files
// or downloaded from threat-intelligence feeds. Lists hold internal
// ranges, partners, scanners, Tor exits, blocklists.
//
// Addresses are matched against source.ip and client.ip, domains against
// url.domain and destination.domain (an indicator also matches its
// subdomains), URLs against url.full. A match tags the event
// "iplist:<name>" and, when the indicator has a label (CSV label column,
// STIX name), sets labels["iplist_<name>"] to it. A list marked threat
// also tags "threat:<name>" and appends an ECS threat.enrichments entry
// naming the indicator and the event field that matched (deduplicated, at
// most MaxEnrichments per event).
//
// Formats: plain (IP or CIDR per line, optional ",label"), CSV with a
// chosen column, Tor exit lists, STIX 2.1 bundles and MISP CSV exports
// (see formats.go). A list comes from a file, re-read when its
// modification time or size changes, or from an http(s) URL, downloaded
// by a background refresher on its own schedule with a timeout, a size
// limit and conditional requests. Only these refreshers do network I/O;
// Enrich never does. A list that fails to read, download or parse keeps
// its previous contents (keep-last-good), and the failure is logged and
// counted. A URL list is empty until its first download succeeds: New
// does not wait for the network.
//
// Address lookups are a binary search over disjoint sorted address ranges
// per list, built so that the most specific network wins; domains and URLs
// are map lookups.
package iplist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/enrich/internal/reload"
	"github.com/trailwatch/trailwatch/internal/config"
)

// List is one named list, read from a file or downloaded from a URL.
type List struct {
	// Name names the list in tags, labels and as the threat provider:
	// letters, digits, '_' and '-'.
	Name string `koanf:"name"`
	// File is the path of the list; exactly one of File and URL is set.
	File string `koanf:"file"`
	// URL is an http(s) feed, downloaded in the background every Refresh.
	URL string `koanf:"url"`
	// Format is how the list is written: plain (default), csv, tor, stix
	// or misp.
	Format string `koanf:"format"`
	// Column is, for csv, the header name or 1-based number of the column
	// holding the indicator; LabelColumn optionally names its label.
	Column      string `koanf:"column"`
	LabelColumn string `koanf:"label_column"`
	// IncludeNonIDS keeps MISP attributes whose to_ids flag is off; by
	// default only to_ids attributes are indicators.
	IncludeNonIDS bool `koanf:"include_non_ids"`
	// Threat marks a threat-intelligence list (see the package doc).
	Threat bool `koanf:"threat"`
	// Confidence is the ECS confidence (Low, Medium, High, None, Not
	// Specified) written for indicators whose feed gives none.
	Confidence string `koanf:"confidence"`
	// Refresh is how often this list is checked: for a URL, downloaded
	// (default 1h); for a file, it overrides Config.RefreshInterval.
	Refresh time.Duration `koanf:"refresh"`
	// Headers are sent with every download (e.g. MISP's Authorization,
	// OTX's X-OTX-API-KEY); values are secrets and never logged.
	Headers map[string]config.Secret `koanf:"headers"`
	// Token, or the contents of TokenFile, is sent as "Authorization:
	// Bearer <token>".
	Token     config.Secret `koanf:"token"`
	TokenFile string        `koanf:"token_file"`
	// CAFile is a PEM bundle of CAs trusted for the feed's TLS instead of
	// the system's.
	CAFile string `koanf:"ca_file"`
	// Timeout bounds one download, body included; default 30s.
	Timeout time.Duration `koanf:"timeout"`
	// MaxBytes bounds a download's body; larger fails; default 64 MiB.
	MaxBytes int64 `koanf:"max_bytes"`
}

// Defaults applied to a List's zero fields.
const (
	DefaultFeedRefresh = time.Hour
	DefaultTimeout     = 30 * time.Second
	DefaultMaxBytes    = 64 << 20
)

func (l List) withDefaults() List {
	if l.Format == "" {
		l.Format = FormatPlain
	}
	if l.URL != "" && l.Refresh == 0 {
		l.Refresh = DefaultFeedRefresh
	}
	if l.Timeout == 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l
}

// where names the list's source in errors: its path or redacted URL.
func (l List) where() string {
	if l.URL != "" {
		return redactURL(l.URL)
	}
	return l.File
}

// Config lists the lists and how often files are re-read.
type Config struct {
	Lists []List `koanf:"lists"`
	// RefreshInterval is how often list files are checked for change;
	// default 5m, 0 never refreshes. A list's own refresh overrides it.
	RefreshInterval time.Duration `koanf:"refresh_interval"`
}

// DefaultConfig returns no lists (disabled) and a 5-minute refresh.
func DefaultConfig() Config { return Config{RefreshInterval: 5 * time.Minute} }

// Enabled reports whether any list is configured.
func (c Config) Enabled() bool { return len(c.Lists) > 0 }

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

var confidences = []string{"", "Low", "Medium", "High", "None", "Not Specified"}

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if len(c.Lists) == 0 {
		errs = append(errs, errors.New("lists: at least one list is required"))
	}
	seen := map[string]bool{}
	for i, l := range c.Lists {
		bad := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("lists[%d].%s: %s", i, key, fmt.Sprintf(format, args...)))
		}
		switch {
		case l.Name == "":
			bad("name", "required")
		case !validName.MatchString(l.Name):
			bad("name", "%q: only letters, digits, '_' and '-'", l.Name)
		case seen[l.Name]:
			bad("name", "%q: duplicate", l.Name)
		}
		seen[l.Name] = true
		switch {
		case l.File == "" && l.URL == "":
			bad("file", "required (or url)")
		case l.File != "" && l.URL != "":
			bad("url", "set either file or url, not both")
		case l.URL != "":
			if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("url", "%s: want an http or https URL", redactURL(l.URL))
			}
		default:
			if len(l.Headers) > 0 || l.Token != "" || l.TokenFile != "" || l.CAFile != "" {
				bad("file", "headers, token, token_file and ca_file need a url")
			}
		}
		if l.Token != "" && l.TokenFile != "" {
			bad("token", "set either token or token_file, not both")
		}
		if l.Format != "" && !slices.Contains(formats, l.Format) {
			bad("format", "%q: one of %v", l.Format, formats)
		}
		if l.Format == FormatCSV && l.Column == "" {
			bad("column", "required with format csv")
		}
		if !slices.Contains(confidences, l.Confidence) {
			bad("confidence", "%q: one of Low, Medium, High, None, Not Specified", l.Confidence)
		}
		if l.Refresh < 0 {
			bad("refresh", "must not be negative")
		}
		if l.Timeout < 0 {
			bad("timeout", "must not be negative")
		}
		if l.MaxBytes < 0 {
			bad("max_bytes", "must not be negative")
		}
	}
	if c.RefreshInterval < 0 {
		errs = append(errs, errors.New("refresh_interval: must not be negative"))
	}
	return errors.Join(errs...)
}

// ListStats are one list's counters.
type ListStats struct {
	Name string
	// Entries counts the indicators loaded in the current version;
	// Domains and URLs are the part of them that are not addresses.
	Entries, Domains, URLs int
	// Skipped counts records of the current version understood but not
	// used: other indicator types, expired or revoked STIX indicators,
	// MISP attributes without to_ids.
	Skipped int
	// Matches counts indicators matched since New.
	Matches uint64
	// RefreshErrors counts failed reads, downloads and parses since New.
	RefreshErrors uint64
	// Loaded is when the current version was loaded; zero for a URL list
	// not yet downloaded.
	Loaded time.Time
}

// Stats are the enricher's counters since New.
type Stats struct {
	Lists                    []ListStats
	Refreshes, RefreshErrors uint64
	// Truncated counts threat enrichments not written because an event
	// already had MaxEnrichments.
	Truncated uint64
}

// Enricher is the list enricher. It is safe for concurrent use.
type Enricher struct {
	cfg  Config // lists with defaults applied
	log  *slog.Logger
	now  func() time.Time
	snap atomic.Pointer[snapshot]
	srcs []*source
	mu   sync.Mutex // serializes snapshot swaps

	cancel    context.CancelFunc // stops the refreshers and their downloads
	ctx       context.Context
	wg        sync.WaitGroup
	done      chan struct{} // closed when every refresher has returned
	closeOnce sync.Once

	refreshes, refreshErrors, truncated atomic.Uint64
}

// source is one list's refresh state, kept across versions.
type source struct {
	mu      sync.Mutex // serializes this list's refreshes
	feed    *feed      // nil for a file
	matches atomic.Uint64
	errors  atomic.Uint64
}

// snapshot is the set of lists Enrich reads; refreshes swap in a new one.
type snapshot struct {
	lists         []*list
	domains, urls bool // whether any list holds domains, URLs
}

// list is one loaded version of a list.
type list struct {
	name, tag, threatTag, labelKey, confidence string
	threat                                     bool
	stamp                                      reload.Stamp // files only
	loaded                                     time.Time
	entries                                    []entry
	skipped, nDomains, nURLs                   int
	table                                      table
	domains, urls                              map[string]int32 // value → entry
}

// New validates cfg, loads every list file, and starts the refreshers:
// one per list, which for a URL list downloads it at once and then every
// refresh. New itself does no network I/O. Close stops the refreshers.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	return newEnricher(cfg, logger, time.Now)
}

func newEnricher(cfg Config, logger *slog.Logger, now func() time.Time) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.Lists = slices.Clone(cfg.Lists)
	for i := range cfg.Lists {
		cfg.Lists[i] = cfg.Lists[i].withDefaults()
	}
	e := &Enricher{cfg: cfg, log: logger, now: now, srcs: make([]*source, len(cfg.Lists)), done: make(chan struct{})}
	ls := make([]*list, len(cfg.Lists))
	var errs []error
	for i, c := range cfg.Lists {
		e.srcs[i] = &source{}
		if c.URL != "" {
			f, err := newFeed(c)
			if err != nil {
				errs = append(errs, fmt.Errorf("lists[%d].%w", i, err))
				continue
			}
			e.srcs[i].feed = f
			ls[i] = newList(c, parsed{}, reload.Stamp{}, time.Time{})
			continue
		}
		l, err := e.loadFile(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("lists[%d].file: %w", i, err))
		}
		ls[i] = l
	}
	if err := errors.Join(errs...); err != nil {
		for _, s := range e.srcs {
			if s != nil && s.feed != nil {
				s.feed.close()
			}
		}
		return nil, err
	}
	e.snap.Store(newSnapshot(ls))
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for i, c := range cfg.Lists {
		interval := c.Refresh
		if interval == 0 && c.URL == "" {
			interval = cfg.RefreshInterval
		}
		if c.URL == "" && interval <= 0 {
			continue
		}
		e.wg.Add(1)
		go e.refresher(i, interval)
	}
	go func() { e.wg.Wait(); close(e.done) }()
	return e, nil
}

// refresher refreshes list i every interval until Close; a URL list is
// downloaded once at start, since New does not wait for the network.
func (e *Enricher) refresher(i int, interval time.Duration) {
	defer e.wg.Done()
	run := func() {
		if _, err := e.refreshList(i); err != nil {
			e.log.Error("iplist refresh failed, keeping the previous contents", "list", e.cfg.Lists[i].Name, "err", err)
		}
	}
	if e.srcs[i].feed != nil {
		run()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			if e.ctx.Err() != nil { // Close wins over a tick that arrived with it
				return
			}
			run()
		}
	}
}

func (e *Enricher) loadFile(c List) (*list, error) {
	st, err := reload.Stat(c.File)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(c.File)
	if err != nil {
		return nil, err
	}
	p, err := parse(c.File, data, e.parseOpts(c))
	if err != nil {
		return nil, err
	}
	return newList(c, p, st, e.now()), nil
}

func (e *Enricher) parseOpts(c List) parseOpts {
	return parseOpts{format: c.Format, column: c.Column, labelColumn: c.LabelColumn, includeNonIDS: c.IncludeNonIDS, now: e.now()}
}

func newList(c List, p parsed, st reload.Stamp, loaded time.Time) *list {
	l := &list{
		name: c.Name, tag: "iplist:" + c.Name, threatTag: "threat:" + c.Name, labelKey: "iplist_" + c.Name,
		confidence: c.Confidence, threat: c.Threat, stamp: st, loaded: loaded, entries: p.entries, skipped: p.skipped,
	}
	spans := make([]span, 0, len(p.entries))
	for i, en := range p.entries {
		switch en.kind {
		case kindIP:
			lo, hi := prefixRange(en.prefix)
			spans = append(spans, span{lo: lo, hi: hi, src: int32(i)})
		case kindDomain:
			if l.domains == nil {
				l.domains = map[string]int32{}
			}
			l.domains[en.value] = int32(i) // the later entry wins, as for networks
			l.nDomains++
		case kindURL:
			if l.urls == nil {
				l.urls = map[string]int32{}
			}
			l.urls[en.value] = int32(i)
			l.nURLs++
		}
	}
	l.table = buildTable(spans)
	return l
}

func newSnapshot(ls []*list) *snapshot {
	s := &snapshot{lists: ls}
	for _, l := range ls {
		s.domains = s.domains || len(l.domains) > 0
		s.urls = s.urls || len(l.urls) > 0
	}
	return s
}

// Refresh refreshes every list now: files that changed are re-read, URLs
// downloaded. It reports whether any list changed. A list that fails keeps
// its old contents; the error names each that failed. The background
// refreshers call the same code on their schedules.
func (e *Enricher) Refresh() (bool, error) {
	changed := false
	var errs []error
	for i := range e.cfg.Lists {
		c, err := e.refreshList(i)
		changed = changed || c
		errs = append(errs, err)
	}
	return changed, errors.Join(errs...)
}

// refreshList reloads list i if its source changed and swaps it in.
func (e *Enricher) refreshList(i int) (bool, error) {
	c, src := e.cfg.Lists[i], e.srcs[i]
	src.mu.Lock()
	defer src.mu.Unlock()
	var l *list
	var err error
	if src.feed != nil {
		var body []byte
		body, err = src.feed.fetch(e.ctx)
		if errors.Is(err, errNotModified) {
			return false, nil
		}
		if err == nil {
			var p parsed
			if p, err = parse(src.feed.redacted, body, e.parseOpts(c)); err == nil {
				src.feed.commit()
				l = newList(c, p, reload.Stamp{}, e.now())
			}
		}
	} else {
		st, serr := reload.Stat(c.File)
		if serr == nil && st == e.snap.Load().lists[i].stamp {
			return false, nil
		}
		l, err = e.loadFile(c)
	}
	if err != nil {
		src.errors.Add(1)
		e.refreshErrors.Add(1)
		return false, fmt.Errorf("iplist %s: %w", c.Name, err)
	}
	e.mu.Lock()
	ls := slices.Clone(e.snap.Load().lists)
	ls[i] = l
	e.snap.Store(newSnapshot(ls))
	e.mu.Unlock()
	e.refreshes.Add(1)
	return true, nil
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	ls := e.snap.Load().lists
	st := Stats{Lists: make([]ListStats, len(ls)), Refreshes: e.refreshes.Load(), RefreshErrors: e.refreshErrors.Load(), Truncated: e.truncated.Load()}
	for i, l := range ls {
		st.Lists[i] = ListStats{
			Name: l.name, Entries: len(l.entries), Domains: l.nDomains, URLs: l.nURLs, Skipped: l.skipped,
			Matches: e.srcs[i].matches.Load(), RefreshErrors: e.srcs[i].errors.Load(), Loaded: l.loaded,
		}
	}
	return st
}

// Close stops the refreshers, cancelling downloads in flight, and waits
// for them or ctx. It is idempotent; Enrich keeps working on the last
// lists after it.
func (e *Enricher) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		e.cancel()
		for _, s := range e.srcs {
			if s.feed != nil {
				s.feed.close()
			}
		}
	})
	select {
	case <-e.done:
		return nil
	default:
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
