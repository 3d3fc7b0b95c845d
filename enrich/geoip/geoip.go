// Package geoip adds location and autonomous-system context to the source
// and client addresses of events from MaxMind-format databases (GeoLite2 /
// GeoIP2 City or Country, and ASN or ISP) that the user supplies.
//
// It fills source.geo.{country_iso_code,country_name,city_name,location}
// and source.as.{number,organization.name}, and the same under client.*
// when client.ip is set. Loopback, private and reserved addresses are not
// looked up; they get trailwatch.extra["source.ip.scope"] (or
// "client.ip.scope") set to loopback, private or reserved instead. Fields a
// normalizer already filled are left alone.
//
// The databases are read into memory whole (not memory-mapped), so a reload
// can swap them while a batch is being enriched without unmapping anything
// under it; that costs the size of the files in heap, twice during a
// reload. A ticker checks the files' modification time and size and swaps
// in a new generation (readers plus an empty cache) atomically; a reload
// that fails keeps the previous generation and is logged and counted.
//
// It deliberately does not download or update databases (that is
// geoipupdate's job) and does not resolve host names.
package geoip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/trailwatch/trailwatch/enrich/internal/lru"
	"github.com/trailwatch/trailwatch/enrich/internal/mark"
	"github.com/trailwatch/trailwatch/enrich/internal/reload"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Config selects the databases and bounds the cache. The enricher is
// enabled when at least one database path is set.
type Config struct {
	// CityDB is the path of a GeoIP2/GeoLite2 City (or Country) database.
	CityDB string `koanf:"city_db"`
	// ASNDB is the path of a GeoIP2/GeoLite2 ASN (or ISP) database.
	ASNDB string `koanf:"asn_db"`
	// ReloadInterval is how often the files' mtime and size are checked;
	// default 1m, 0 never reloads.
	ReloadInterval time.Duration `koanf:"reload_interval"`
	// CacheSize bounds the per-address result cache, in entries; default
	// 100000 (about 20 MB).
	CacheSize int `koanf:"cache_size"`
}

// DefaultConfig returns the defaults: no databases (disabled), reload
// check every minute, 100k cached addresses.
func DefaultConfig() Config {
	return Config{ReloadInterval: time.Minute, CacheSize: 100_000}
}

// Enabled reports whether any database is configured.
func (c Config) Enabled() bool { return c.CityDB != "" || c.ASNDB != "" }

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	var errs []error
	if !c.Enabled() {
		errs = append(errs, errors.New("city_db: one of city_db or asn_db is required"))
	}
	if c.ReloadInterval < 0 {
		errs = append(errs, errors.New("reload_interval: must not be negative"))
	}
	if c.CacheSize < 1 {
		errs = append(errs, errors.New("cache_size: must be at least 1"))
	}
	return errors.Join(errs...)
}

// Stats are the enricher's counters since New.
type Stats struct {
	Hits, Misses, Evictions uint64 // address cache
	CacheLen                int    // addresses cached in the current generation
	NotPublic               uint64 // lookups skipped: loopback, private or reserved
	Invalid                 uint64 // addresses that did not parse
	LookupErrors            uint64 // database reads that failed (corrupt data)
	Reloads, ReloadErrors   uint64
}

// Enricher is the GeoIP enricher. It is safe for concurrent use.
type Enricher struct {
	cfg  Config
	log  *slog.Logger
	gen  atomic.Pointer[generation]
	mu   sync.Mutex // serializes reloads
	loop *reload.Loop

	hits, misses, evictions, notPublic, invalid, lookupErrors, reloads, reloadErrors atomic.Uint64
}

// generation is one loaded version of the databases and its cache: a
// reload replaces all of it at once, so no cached result outlives the data
// it came from.
type generation struct {
	city, asn           *maxminddb.Reader
	cityStamp, asnStamp reload.Stamp
	cache               *lru.Cache[string, result]
}

type result struct {
	invalid bool
	scope   string
	geo     schema.Geo
	as      schema.AS
}

// New validates cfg, loads the databases and starts the reload ticker.
// Close stops it.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Enricher{cfg: cfg, log: logger}
	g, err := e.load(nil)
	if err != nil {
		return nil, err
	}
	e.gen.Store(g)
	e.loop = reload.Start(cfg.ReloadInterval, func() {
		if _, err := e.Reload(); err != nil {
			e.log.Error("geoip reload failed, keeping the previous databases", "err", err)
		}
	})
	return e, nil
}

// Reload loads the databases again if either file changed since the last
// load and swaps them in; it reports whether it swapped. On error the
// previous databases stay in use.
func (e *Enricher) Reload() (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.gen.Load()
	g, err := e.load(old)
	if err != nil {
		e.reloadErrors.Add(1)
		return false, err
	}
	if g == old {
		return false, nil
	}
	e.gen.Store(g)
	e.reloads.Add(1)
	e.log.Info("geoip databases reloaded", "city_db", e.cfg.CityDB, "asn_db", e.cfg.ASNDB)
	return true, nil
}

// load returns a generation with the current files, or old itself when
// neither file changed. A file that did not change keeps its reader.
func (e *Enricher) load(old *generation) (*generation, error) {
	g := &generation{}
	if old != nil {
		*g = *old
	}
	changed := old == nil
	var err error
	if e.cfg.CityDB != "" {
		var c bool
		if g.city, g.cityStamp, c, err = openIfChanged(e.cfg.CityDB, g.city, g.cityStamp); err != nil {
			return nil, fmt.Errorf("geoip city_db: %w", err)
		}
		changed = changed || c
	}
	if e.cfg.ASNDB != "" {
		var c bool
		if g.asn, g.asnStamp, c, err = openIfChanged(e.cfg.ASNDB, g.asn, g.asnStamp); err != nil {
			return nil, fmt.Errorf("geoip asn_db: %w", err)
		}
		changed = changed || c
	}
	if !changed {
		return old, nil
	}
	g.cache = lru.New[string, result](e.cfg.CacheSize)
	return g, nil
}

func openIfChanged(path string, r *maxminddb.Reader, st reload.Stamp) (*maxminddb.Reader, reload.Stamp, bool, error) {
	now, err := reload.Stat(path)
	if err != nil {
		return nil, st, false, err
	}
	if r != nil && now == st {
		return r, st, false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, st, false, err
	}
	nr, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, st, false, err
	}
	// The stamp read before the contents: a write racing the read shows
	// up as a change at the next check rather than being missed.
	return nr, now, true, nil
}

// Enrich implements enrich.Enricher. It never fails on an event: an
// address that does not parse or is not in the databases is left as is.
// It returns only ctx's error, before touching the batch.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g := e.gen.Load()
	for i := range evs {
		ev := &evs[i]
		if ev.Source.IP != "" {
			e.apply(ev, &ev.Source, "source.ip.scope", e.lookup(g, ev.Source.IP))
		}
		if ev.Client.IP != "" {
			e.apply(ev, &ev.Client, "client.ip.scope", e.lookup(g, ev.Client.IP))
		}
	}
	return nil
}

func (e *Enricher) apply(ev *schema.Event, ep *schema.Endpoint, scopeKey string, r result) {
	switch {
	case r.invalid:
	case r.scope != "":
		mark.Extra(ev, scopeKey, r.scope)
	default:
		if ep.Geo == (schema.Geo{}) {
			ep.Geo = r.geo
		}
		if ep.AS == (schema.AS{}) {
			ep.AS = r.as
		}
	}
}

func (e *Enricher) lookup(g *generation, ip string) result {
	if r, ok := g.cache.Get(ip); ok {
		e.hits.Add(1)
		return r
	}
	e.misses.Add(1)
	r := e.resolve(g, ip)
	if g.cache.Add(ip, r) {
		e.evictions.Add(1)
	}
	return r
}

// cityRecord is the part of a City/Country record the event carries; the
// name structs pick English without decoding the whole names map.
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"country"`
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

type asnRecord struct {
	Number       uint32 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

func (e *Enricher) resolve(g *generation, ip string) result {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		e.invalid.Add(1)
		return result{invalid: true}
	}
	addr = addr.Unmap()
	if s := Scope(addr); s != "" {
		e.notPublic.Add(1)
		return result{scope: s}
	}
	var r result
	if g.city != nil {
		var rec cityRecord
		if err := g.city.Lookup(addr).Decode(&rec); err != nil {
			e.lookupErrors.Add(1)
		} else {
			r.geo.CountryISOCode = rec.Country.ISOCode
			r.geo.CountryName = rec.Country.Names.EN
			r.geo.CityName = rec.City.Names.EN
			if rec.Location.Latitude != nil && rec.Location.Longitude != nil {
				r.geo.Location = schema.GeoPoint{Lat: *rec.Location.Latitude, Lon: *rec.Location.Longitude}
			}
		}
	}
	if g.asn != nil {
		var rec asnRecord
		if err := g.asn.Lookup(addr).Decode(&rec); err != nil {
			e.lookupErrors.Add(1)
		} else {
			r.as.Number = int64(rec.Number)
			r.as.Organization.Name = rec.Organization
		}
	}
	return r
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	return Stats{
		Hits: e.hits.Load(), Misses: e.misses.Load(), Evictions: e.evictions.Load(),
		CacheLen:  e.gen.Load().cache.Len(),
		NotPublic: e.notPublic.Load(), Invalid: e.invalid.Load(), LookupErrors: e.lookupErrors.Load(),
		Reloads: e.reloads.Load(), ReloadErrors: e.reloadErrors.Load(),
	}
}

// Close stops the reload ticker, waiting for a reload in progress or ctx.
// It is idempotent; Enrich keeps working on the last databases after it.
func (e *Enricher) Close(ctx context.Context) error {
	return e.loop.Stop(ctx)
}
