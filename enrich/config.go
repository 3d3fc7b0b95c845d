package enrich

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/trailwatch/trailwatch/enrich/actor"
	"github.com/trailwatch/trailwatch/enrich/geoip"
	"github.com/trailwatch/trailwatch/enrich/hop"
	"github.com/trailwatch/trailwatch/enrich/identity"
	"github.com/trailwatch/trailwatch/enrich/iplist"
	"github.com/trailwatch/trailwatch/enrich/proxies"
	"github.com/trailwatch/trailwatch/enrich/useragent"
)

// Config configures every enricher. Each is on when configured: proxies
// when trusted_proxies is set, iplist when it has lists, geoip when a
// database path is set, user_agent unless user_agent.enabled is false,
// identity when an inventory file is set, actor unless actor.enabled is
// false, hop when hop.enabled is true.
type Config struct {
	Proxies   proxies.Config   `koanf:"proxies"`
	Hop       hop.Config       `koanf:"hop"`
	IPList    iplist.Config    `koanf:"iplist"`
	GeoIP     geoip.Config     `koanf:"geoip"`
	UserAgent useragent.Config `koanf:"user_agent"`
	Identity  identity.Config  `koanf:"identity"`
	Actor     actor.Config     `koanf:"actor"`
}

// DefaultConfig returns each enricher's defaults: only user-agent parsing
// and actor correlation are on until proxies, lists or databases are
// configured.
func DefaultConfig() Config {
	return Config{
		Proxies:   proxies.DefaultConfig(),
		Hop:       hop.DefaultConfig(),
		IPList:    iplist.DefaultConfig(),
		GeoIP:     geoip.DefaultConfig(),
		UserAgent: useragent.DefaultConfig(),
		Identity:  identity.DefaultConfig(),
		Actor:     actor.DefaultConfig(),
	}
}

// Validate reports every problem with the enrichers that are on, each
// prefixed by its key (e.g. "geoip.cache_size: must be at least 1").
func (c Config) Validate() error {
	var errs []error
	add := func(prefix string, err error) {
		if err == nil {
			return
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			errs = append(errs, fmt.Errorf("%s.%s", prefix, line))
		}
	}
	if c.Proxies.Enabled() {
		add("proxies", c.Proxies.Validate())
	}
	if c.Hop.Enabled {
		add("hop", c.Hop.Validate())
	}
	if c.IPList.Enabled() {
		add("iplist", c.IPList.Validate())
	}
	if c.GeoIP.Enabled() {
		add("geoip", c.GeoIP.Validate())
	}
	if c.UserAgent.Enabled {
		add("user_agent", c.UserAgent.Validate())
	}
	if c.Identity.Enabled() {
		add("identity", c.Identity.Validate())
	}
	if c.Actor.Enabled {
		add("actor", c.Actor.Validate())
	}
	return errors.Join(errs...)
}

// Stats gathers the counters of the enrichers that are on; a nil field is
// an enricher that is off.
type Stats struct {
	Proxies   *proxies.Stats
	Hop       *hop.Stats
	IPList    *iplist.Stats
	GeoIP     *geoip.Stats
	UserAgent *useragent.Stats
	Identity  *identity.Stats
	Actor     *actor.Stats
}

// Enrichment is the chain built from Config, with typed access to its
// members' counters.
type Enrichment struct {
	*Chain
	proxies   *proxies.Enricher
	hop       *hop.Enricher
	iplist    *iplist.Enricher
	geoip     *geoip.Enricher
	useragent *useragent.Enricher
	identity  *identity.Enricher
	actor     *actor.Enricher
}

// New validates cfg and builds the chain proxies → hop → iplist → geoip →
// user_agent → identity → actor from the enrichers that are on, loading lists and databases
// and starting their reload tickers. Close stops them.
func New(cfg Config, logger *slog.Logger) (*Enrichment, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Enrichment{Chain: NewChain()}
	fail := func(prefix string, err error) (*Enrichment, error) {
		_ = e.Close(context.Background()) // stop the tickers already started
		return nil, fmt.Errorf("enrich %s: %w", prefix, err)
	}
	var err error
	if cfg.Proxies.Enabled() {
		if e.proxies, err = proxies.New(cfg.Proxies, logger.With("enricher", "proxies")); err != nil {
			return fail("proxies", err)
		}
		e.steps = append(e.steps, e.proxies)
	}
	// Hop correlation runs after proxies so that the true client it
	// records is the one proxies resolved.
	if cfg.Hop.Enabled {
		if e.hop, err = hop.New(cfg.Hop, logger.With("enricher", "hop")); err != nil {
			return fail("hop", err)
		}
		e.steps = append(e.steps, e.hop)
	}
	if cfg.IPList.Enabled() {
		if e.iplist, err = iplist.New(cfg.IPList, logger.With("enricher", "iplist")); err != nil {
			return fail("iplist", err)
		}
		e.steps = append(e.steps, e.iplist)
	}
	if cfg.GeoIP.Enabled() {
		if e.geoip, err = geoip.New(cfg.GeoIP, logger.With("enricher", "geoip")); err != nil {
			return fail("geoip", err)
		}
		e.steps = append(e.steps, e.geoip)
	}
	if cfg.UserAgent.Enabled {
		if e.useragent, err = useragent.New(cfg.UserAgent, logger.With("enricher", "user_agent")); err != nil {
			return fail("user_agent", err)
		}
		e.steps = append(e.steps, e.useragent)
	}
	if cfg.Identity.Enabled() {
		if e.identity, err = identity.New(cfg.Identity, logger.With("enricher", "identity")); err != nil {
			return fail("identity", err)
		}
		e.steps = append(e.steps, e.identity)
	}
	// Actor correlation reads source.geo, source.as and user_agent, so it
	// runs after geoip and user_agent.
	if cfg.Actor.Enabled {
		if e.actor, err = actor.New(cfg.Actor, logger.With("enricher", "actor")); err != nil {
			return fail("actor", err)
		}
		e.steps = append(e.steps, e.actor)
	}
	return e, nil
}

// Stats returns the counters of the enrichers that are on.
func (e *Enrichment) Stats() Stats {
	var st Stats
	if e.proxies != nil {
		s := e.proxies.Stats()
		st.Proxies = &s
	}
	if e.hop != nil {
		s := e.hop.Stats()
		st.Hop = &s
	}
	if e.iplist != nil {
		s := e.iplist.Stats()
		st.IPList = &s
	}
	if e.geoip != nil {
		s := e.geoip.Stats()
		st.GeoIP = &s
	}
	if e.useragent != nil {
		s := e.useragent.Stats()
		st.UserAgent = &s
	}
	if e.identity != nil {
		s := e.identity.Stats()
		st.Identity = &s
	}
	if e.actor != nil {
		s := e.actor.Stats()
		st.Actor = &s
	}
	return st
}
