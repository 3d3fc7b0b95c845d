// Package proxies recovers the real client address of requests that reached
// the logging gateway through trusted reverse proxies or load balancers.
//
// It follows nginx's realip module with real_ip_recursive on (and Elastic's
// guidance that source.* is the far end as best known): only when the
// direct peer (source.ip) is inside trusted_proxies is X-Forwarded-For
// believed. The chain is walked from the right, skipping trusted hops; the
// first untrusted address is the client. If every hop is trusted, the
// leftmost is taken, as nginx does. A hop that is not an address ends the
// walk without a result, since what lies left of it cannot be trusted.
//
// On success source.ip and source.address become the client (source.port
// is cleared, being the proxy's connection port), client.ip and
// client.address too (normalizers set client.ip from the leftmost,
// spoofable, X-Forwarded-For entry; after this it is the trusted answer),
// and the proxy that was source.ip is kept in trailwatch.extra
// "source.proxy.ip" and in related.ip. The proxy is not written to
// destination.*: destination is the server the request was for, which a
// proxy in front of the gateway is not. An actor key that was the proxy's
// address ("ip:<proxy>") becomes the client's.
//
// The chain comes from the first trailwatch.extra key in xff_extra_keys
// holding one (normalizers keep the raw header there), else from
// client.ip alone. It deliberately does not read the Forwarded (RFC 7239)
// header and does nothing for a peer that is not trusted: then
// X-Forwarded-For is whatever the client sent.
package proxies

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/trailwatch/trailwatch/enrich/internal/mark"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Config names the trusted proxies and where the X-Forwarded-For chain is.
type Config struct {
	// TrustedProxies are the CIDRs or addresses of proxies whose
	// X-Forwarded-For is believed, e.g. [10.0.0.0/8]. Empty disables.
	TrustedProxies []string `koanf:"trusted_proxies"`
	// XFFExtraKeys are the trailwatch.extra keys tried, in order, for the
	// raw X-Forwarded-For value; default http_x_forwarded_for,
	// x_forwarded_for, xff.
	XFFExtraKeys []string `koanf:"xff_extra_keys"`
}

// DefaultConfig trusts nothing and knows the normalizers' XFF keys.
func DefaultConfig() Config {
	return Config{XFFExtraKeys: []string{"http_x_forwarded_for", "x_forwarded_for", "xff"}}
}

// Enabled reports whether any proxy is trusted.
func (c Config) Enabled() bool { return len(c.TrustedProxies) > 0 }

// Validate reports every problem with c, each naming its key.
func (c Config) Validate() error {
	_, err := c.prefixes()
	return err
}

func (c Config) prefixes() ([]netip.Prefix, error) {
	var errs []error
	if len(c.TrustedProxies) == 0 {
		errs = append(errs, errors.New("trusted_proxies: at least one network is required"))
	}
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for i, s := range c.TrustedProxies {
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("trusted_proxies[%d]: %q: not an address or CIDR", i, s))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

// Stats are the enricher's counters since New.
type Stats struct {
	Rewritten uint64 // events whose source was replaced by the real client
	NoChain   uint64 // trusted peer but no X-Forwarded-For to read
	BadChain  uint64 // a hop that is not an address ended the walk
}

// Enricher is the trusted-proxy enricher. It holds no mutable state beyond
// counters and is safe for concurrent use.
type Enricher struct {
	trusted []netip.Prefix
	keys    []string
	log     *slog.Logger

	rewritten, noChain, badChain atomic.Uint64
}

// New validates cfg and returns the enricher.
func New(cfg Config, logger *slog.Logger) (*Enricher, error) {
	ps, err := cfg.prefixes()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Enricher{trusted: ps, keys: cfg.XFFExtraKeys, log: logger}, nil
}

func (e *Enricher) isTrusted(a netip.Addr) bool {
	for _, p := range e.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Enrich implements enrich.Enricher. It never fails on an event; it
// returns only ctx's error, before touching the batch.
func (e *Enricher) Enrich(ctx context.Context, evs []schema.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range evs {
		e.one(&evs[i])
	}
	return nil
}

func (e *Enricher) one(ev *schema.Event) {
	if ev.Source.IP == "" {
		return
	}
	peer, err := netip.ParseAddr(ev.Source.IP)
	if err != nil || !e.isTrusted(peer.Unmap()) {
		return
	}
	chain := ""
	for _, k := range e.keys {
		if v := ev.Trailwatch.Extra[k]; v != "" && v != "-" {
			chain = v
			break
		}
	}
	if chain == "" {
		chain = ev.Client.IP
	}
	if chain == "" {
		e.noChain.Add(1)
		return
	}
	real, ok := e.walk(chain)
	if !ok {
		e.badChain.Add(1)
		return
	}
	proxy := ev.Source.IP
	if real == proxy {
		return
	}
	ev.Source.IP, ev.Source.Address, ev.Source.Port, ev.Source.Domain = real, real, 0, ""
	ev.Client.IP, ev.Client.Address = real, real
	mark.Extra(ev, "source.proxy.ip", proxy)
	mark.RelatedIP(ev, proxy)
	mark.RelatedIP(ev, real)
	if ev.Trailwatch.Actor == "ip:"+proxy {
		ev.Trailwatch.Actor = "ip:" + real
	}
	e.rewritten.Add(1)
}

// walk returns the client address in an X-Forwarded-For chain: the
// rightmost untrusted hop, else the leftmost hop.
func (e *Enricher) walk(chain string) (string, bool) {
	var leftmost string
	for chain != "" {
		var hop string
		if i := strings.LastIndexByte(chain, ','); i >= 0 {
			hop, chain = chain[i+1:], chain[:i]
		} else {
			hop, chain = chain, ""
		}
		hop = strings.TrimSpace(hop)
		if hop == "" {
			continue
		}
		a, ok := parseHop(hop)
		if !ok {
			return "", false
		}
		s := a.String()
		if !e.isTrusted(a) {
			return s, true
		}
		leftmost = s
	}
	return leftmost, leftmost != ""
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port ("1.2.3.4:5678", "[2001:db8::1]:443"), IPv4-mapped form unmapped.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// Stats returns the counters.
func (e *Enricher) Stats() Stats {
	return Stats{Rewritten: e.rewritten.Load(), NoChain: e.noChain.Load(), BadChain: e.badChain.Load()}
}

// Close implements enrich.Enricher; there is nothing to release.
func (e *Enricher) Close(context.Context) error { return nil }
