package geoip

import "net/netip"

// IP scopes written to trailwatch.extra["<endpoint>.ip.scope"] for
// addresses that are not looked up.
const (
	ScopeLoopback = "loopback"
	ScopePrivate  = "private"
	ScopeReserved = "reserved"
)

// sharedAddressSpace is RFC 6598 carrier-grade NAT space: not routable on
// the internet, so treated as private.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// reserved are the IANA special-purpose blocks that are neither private nor
// loopback and never name a host on the public internet (RFC 6890 and its
// updates: "this network", documentation, benchmarking, multicast, the
// future-use class E block, link-local, discard-only).
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"), // includes 255.255.255.255
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// Scope classifies addr: ScopeLoopback, ScopePrivate, ScopeReserved, or ""
// for a public address worth looking up. IPv4-mapped IPv6 addresses are
// classified as the IPv4 address they carry.
func Scope(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case addr.IsLoopback():
		return ScopeLoopback
	case addr.IsPrivate(), sharedAddressSpace.Contains(addr):
		return ScopePrivate
	}
	for _, p := range reserved {
		if p.Contains(addr) {
			return ScopeReserved
		}
	}
	return ""
}
