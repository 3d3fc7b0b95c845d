package normalize

// Helpers shared by the proxy and gateway normalizers (haproxy, envoy,
// traefik, caddy, kong). Names start with gw so they cannot collide with
// other sources' helpers in this package.

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// gwMaxJSONBytes bounds one JSON access-log record. Gateways that log
// request and response headers (Kong, Caddy) write a few KiB per request;
// a record past 256 KiB is damage or an attack.
const gwMaxJSONBytes = 256 << 10

// gwMaxDepth bounds the nesting of a JSON record: access logs nest three or
// four levels, so gwWalk rejects anything deeper.
const gwMaxDepth = 32

// gwCheckJSON rejects records the JSON walker should never see: oversized,
// or not starting with an object. It reports whether the bytes are valid
// UTF-8; when they are not the caller replaces the bad bytes and tags the
// event TagInvalidUTF8.
func gwCheckJSON(source string, data []byte) (validUTF8 bool, err error) {
	if len(data) > gwMaxJSONBytes {
		return false, fmt.Errorf("%s: record is %d bytes, over the %d-byte limit", source, len(data), gwMaxJSONBytes)
	}
	i := 0
	for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	if i == len(data) || data[i] != '{' {
		return false, fmt.Errorf("%s: record is not a JSON object (byte %d)", source, i)
	}
	return utf8.Valid(data), nil
}

// gwDash returns s, or "" for the "-" placeholder proxies log for absent
// values.
func gwDash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// gwSetTarget fills url.original/path/query from a request target.
func gwSetTarget(ev *schema.Event, target string) {
	if target == "" {
		return
	}
	ev.URL.Original = target
	splitTarget(&ev.URL, target)
}

// gwSetProto fills http.version from "HTTP/1.1" (or a bare "1.1").
func gwSetProto(ev *schema.Event, proto string) {
	if v, ok := strings.CutPrefix(proto, "HTTP/"); ok {
		ev.HTTP.Version = v
	} else if v, ok := strings.CutPrefix(proto, "http/"); ok {
		ev.HTTP.Version = v
	}
}

// gwSetEndpoint fills an endpoint from "ip", "ip:port" or "[v6]:port".
func gwSetEndpoint(e *schema.Endpoint, addr string) {
	addr = gwDash(addr)
	if addr == "" {
		return
	}
	e.Address = addr
	if ip, err := netip.ParseAddr(addr); err == nil {
		e.IP = ip.Unmap().String()
		return
	}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		e.IP = ap.Addr().Unmap().String()
		e.Port = int(ap.Port())
		e.Address = e.IP
		return
	}
	// HAProxy logs an IPv6 peer without brackets: "2001:db8::1:43210".
	if c := strings.LastIndexByte(addr, ':'); c > 0 {
		if ip, err := netip.ParseAddr(addr[:c]); err == nil {
			if p, err := strconv.Atoi(addr[c+1:]); err == nil && p >= 0 && p < 65536 {
				e.IP, e.Port, e.Address = ip.Unmap().String(), p, ip.Unmap().String()
			}
		}
	}
}

// gwSetXFF sets client.* from the first address of an X-Forwarded-For
// value, the original client as the first proxy saw it; when the record
// names no direct peer, source.* gets it too (ECS: source is the other end
// of the connection, which for these formats is all that is known).
func gwSetXFF(ev *schema.Event, xff string) {
	xff = gwDash(xff)
	if xff == "" {
		return
	}
	first, _, _ := strings.Cut(xff, ",")
	first = strings.TrimSpace(first)
	ip, err := netip.ParseAddr(first)
	if err != nil {
		return
	}
	s := ip.Unmap().String()
	ev.Client.IP, ev.Client.Address = s, s
	if ev.Source.IP == "" && ev.Source.Address == "" {
		ev.Source.IP, ev.Source.Address = s, s
	}
}

// gwFinish sets what every proxy event shares: classification, outcome
// from the status, identity, provenance, related.* and the actor key.
func gwFinish(ev *schema.Event, rec *ingest.Record, source, dataset, module string, invalid bool) {
	ev.Event.Kind = "event"
	if ev.Event.Category == nil {
		ev.Event.Category = []string{"web"}
		ev.Event.Type = []string{"access"}
	}
	ev.Event.Dataset = dataset
	ev.Event.Module = module
	if ev.Event.Outcome == "" {
		switch st := ev.HTTP.Response.StatusCode; {
		case st == 0:
			ev.Event.Outcome = "unknown"
		case st < 400:
			ev.Event.Outcome = "success"
		default:
			ev.Event.Outcome = "failure"
		}
	}
	ev.Event.ID = rec.ID()
	ev.Trailwatch.Source = source
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	var ips []string
	for _, ip := range [...]string{ev.Source.IP, ev.Client.IP, ev.Destination.IP} {
		if ip != "" && !containsStr(ips, ip) {
			ips = append(ips, ip)
		}
	}
	if len(ips) > 0 {
		ev.Related.IP = ips[:len(ips):len(ips)]
	}
	if ev.User.Name != "" {
		ev.Related.User = []string{ev.User.Name}
	}
	if invalid {
		ev.Tags = append(ev.Tags, TagInvalidUTF8)
	}
	ev.Trailwatch.Actor = ev.ActorKey()
}

func containsStr(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// gwExtra stores v under key in trailwatch.extra unless v is empty or "-".
func gwExtra(ev *schema.Event, key, v string) {
	if v == "" || v == "-" {
		return
	}
	if ev.Trailwatch.Extra == nil {
		ev.Trailwatch.Extra = make(map[string]string, 8)
	}
	ev.Trailwatch.Extra[key] = v
}

// gwValid returns s as valid UTF-8, reporting whether it had to replace
// bytes.
func gwValid(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	return strings.ToValidUTF8(s, "\uFFFD"), true
}

// gwNoOptions rejects a spec that sets what a JSON source does not take.
func gwNoOptions(s Spec) error {
	if s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return errNoOptions
	}
	return nil
}
