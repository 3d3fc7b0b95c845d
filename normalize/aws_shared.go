package normalize

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Helpers shared by the cloud and generic sources (aws_*, cloudtrail,
// gcp_audit, ecs, regex). Names carry a "cloud" prefix so they never clash
// with another source's file in this package.

// MaxJSONRecordBytes bounds one JSON record of a single-event source
// (aws_apigateway, gcp_audit, ecs, a single CloudTrail event). A Cloud Audit
// Logs entry is at most 256 KiB and a CloudTrail event at most 256 KiB, so
// 1 MiB leaves room for wrapping without letting one record pin memory.
const MaxJSONRecordBytes = 1 << 20

// cloudExtra sets trailwatch.extra[k] = v, allocating the map with room for
// hint entries on first use. Empty values and "-" are not stored.
func cloudExtra(ev *schema.Event, hint int, k, v string) {
	if v == "" || v == "-" {
		return
	}
	if ev.Trailwatch.Extra == nil {
		ev.Trailwatch.Extra = make(map[string]string, hint)
	}
	ev.Trailwatch.Extra[k] = v
}

// cloudKV collects trailwatch.extra entries of a line-format event so the
// map is allocated once at its final size: a map sized for 24 entries but
// holding 8 costs more than the parsing around it.
type cloudKV struct {
	k [48]string
	v [48]string
	n int
}

// add records k=v unless v is empty or "-"; entries past capacity are
// dropped (the line formats using it have fewer fields).
func (c *cloudKV) add(k, v string) {
	if v == "" || v == "-" || c.n == len(c.k) {
		return
	}
	c.k[c.n], c.v[c.n] = k, v
	c.n++
}

// flush stores the collected entries in ev's trailwatch.extra.
func (c *cloudKV) flush(ev *schema.Event) {
	if c.n == 0 {
		return
	}
	if ev.Trailwatch.Extra == nil {
		ev.Trailwatch.Extra = make(map[string]string, c.n)
	}
	for i := range c.n {
		ev.Trailwatch.Extra[c.k[i]] = c.v[i]
	}
}

// cloudSource sets source.address to addr and, when addr is an IP address,
// source.ip (and related.ip); otherwise source.domain, since what cloud
// control planes log in place of an IP is a service host name
// ("ec2.amazonaws.com").
func cloudSource(ev *schema.Event, addr string) {
	if addr == "" {
		return
	}
	ev.Source.Address = addr
	if ip, err := netip.ParseAddr(addr); err == nil {
		ev.Source.IP = ip.String()
		cloudRelatedIP(ev, ev.Source.IP)
		return
	}
	ev.Source.Domain = addr
}

// cloudRelatedIP appends ip to related.ip unless present.
func cloudRelatedIP(ev *schema.Event, ip string) {
	if ip == "" {
		return
	}
	for _, v := range ev.Related.IP {
		if v == ip {
			return
		}
	}
	ev.Related.IP = append(ev.Related.IP, ip)
}

// cloudRelatedUser appends u to related.user unless present.
func cloudRelatedUser(ev *schema.Event, u string) {
	if u == "" {
		return
	}
	for _, v := range ev.Related.User {
		if v == u {
			return
		}
	}
	ev.Related.User = append(ev.Related.User, u)
}

// cloudTLS splits a protocol name as AWS logs it ("TLSv1.2", "TLSv1.3",
// "SSLv3") into ECS tls.version_protocol and tls.version.
func cloudTLS(ev *schema.Event, proto, cipher string) {
	if cipher != "" && cipher != "-" {
		ev.TLS.Cipher = cipher
	}
	if proto == "" || proto == "-" {
		return
	}
	for _, p := range [...]string{"tls", "ssl"} {
		if len(proto) > len(p) && strings.EqualFold(proto[:len(p)], p) {
			v := proto[len(p):]
			v = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(v, "v"), "V"), " ")
			if v != "" {
				if !strings.Contains(v, ".") {
					v += ".0"
				}
				ev.TLS.Version = v
				ev.TLS.VersionProtocol = p
				return
			}
		}
	}
	ev.TLS.Version = proto
}

// cloudTime parses an RFC 3339 timestamp (fractional seconds optional) and
// returns it in UTC.
func cloudTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// cloudEpoch reads a Unix epoch in seconds, milliseconds or microseconds,
// told apart by magnitude (what API Gateway and friends log).
func cloudEpoch(s string) (time.Time, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	switch {
	case n >= 1e17:
		return time.Unix(0, n).UTC(), true
	case n >= 1e14:
		return time.UnixMicro(n).UTC(), true
	case n >= 1e11:
		return time.UnixMilli(n).UTC(), true
	}
	ns := int64(0)
	if frac != "" {
		if d, ok := parseSeconds("0." + frac); ok {
			ns = d
		}
	}
	return time.Unix(n, ns).UTC(), true
}

// cloudOutcome sets event.outcome from an HTTP status the way Elastic's
// integrations do: failure from 400 up, success below, nothing when absent.
func cloudOutcome(ev *schema.Event) {
	switch sc := ev.HTTP.Response.StatusCode; {
	case sc == 0:
	case sc < 400:
		ev.Event.Outcome = "success"
	default:
		ev.Event.Outcome = "failure"
	}
}

// cloudClip shortens a value quoted in an error message.
func cloudClip(s string) string {
	const maxShown = 64
	if len(s) > maxShown {
		s = s[:maxShown] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// cloudValid returns s as valid UTF-8, reporting whether bytes were replaced.
func cloudValid(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	return strings.ToValidUTF8(s, "\uFFFD"), true
}

// cloudHTTPVersion returns "1.1" for "HTTP/1.1" and "" for anything else.
func cloudHTTPVersion(proto string) string {
	if isHTTPProto(proto) {
		return proto[len("HTTP/"):]
	}
	return ""
}

// cloudARN splits an ARN ("arn:partition:service:region:account:resource")
// into its region and account; empty when s is not an ARN.
func cloudARN(s string) (region, account string) {
	rest, ok := strings.CutPrefix(s, "arn:")
	if !ok {
		return "", ""
	}
	var parts [4]string
	for i := range parts {
		c := strings.IndexByte(rest, ':')
		if c < 0 {
			return "", ""
		}
		parts[i], rest = rest[:c], rest[c+1:]
	}
	return parts[2], parts[3]
}
