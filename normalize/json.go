package normalize

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// AppendEvent appends the JSON encoding of ev to dst and returns the
// extended slice. It is a hand-written equivalent of json.Marshal(ev): the
// output decodes with encoding/json to exactly what json.Marshal's output
// decodes to, field order is the struct's, and map keys are sorted. It
// differs from json.Marshal only in ways that do not change the decoded
// value:
//   - times are written in UTC ("Z"), so a decoded time may differ from the
//     original in Location but not in instant;
//   - an object whose fields are all empty is left out even where
//     json.Marshal writes "{}" (a struct holding an empty non-nil slice);
//   - <, >, & and U+2028/U+2029 are not escaped;
//   - where json.Marshal fails (a NaN or infinite float, a year outside
//     0..9999) AppendEvent writes 0 or the out-of-range time as formatted.
//
// TestAppendEventEveryField fails when a field is added to schema.Event
// and not here.
func AppendEvent(dst []byte, ev *schema.Event) []byte {
	b := append(dst, `{"@timestamp":`...)
	b = appendTime(b, ev.Timestamp)

	b, o := openObj(b, `"event":`)
	m := &ev.Event
	b = strField(b, `"id":`, m.ID)
	b = strField(b, `"kind":`, m.Kind)
	b = strsField(b, `"category":`, m.Category)
	b = strsField(b, `"type":`, m.Type)
	b = strField(b, `"action":`, m.Action)
	b = strField(b, `"outcome":`, m.Outcome)
	b = strField(b, `"dataset":`, m.Dataset)
	b = strField(b, `"module":`, m.Module)
	b = strField(b, `"provider":`, m.Provider)
	b = intField(b, `"severity":`, int64(m.Severity))
	b = intField(b, `"duration":`, m.Duration)
	b = timeField(b, `"created":`, m.Created)
	b = timeField(b, `"ingested":`, m.Ingested)
	b = closeObj(b, o)

	b = appendEndpoint(b, `"source":`, &ev.Source)
	b = appendEndpoint(b, `"client":`, &ev.Client)
	b = appendEndpoint(b, `"destination":`, &ev.Destination)

	b, o = openObj(b, `"user":`)
	b = strField(b, `"id":`, ev.User.ID)
	b = strField(b, `"name":`, ev.User.Name)
	b = strField(b, `"email":`, ev.User.Email)
	b = strField(b, `"domain":`, ev.User.Domain)
	b = closeObj(b, o)

	b, o = openObj(b, `"user_agent":`)
	b = strField(b, `"original":`, ev.UserAgent.Original)
	b = strField(b, `"name":`, ev.UserAgent.Name)
	b = strField(b, `"version":`, ev.UserAgent.Version)
	b, o2 := openObj(b, `"os":`)
	b = strField(b, `"name":`, ev.UserAgent.OS.Name)
	b = strField(b, `"version":`, ev.UserAgent.OS.Version)
	b = strField(b, `"full":`, ev.UserAgent.OS.Full)
	b = closeObj(b, o2)
	b, o2 = openObj(b, `"device":`)
	b = strField(b, `"name":`, ev.UserAgent.Device.Name)
	b = closeObj(b, o2)
	b = closeObj(b, o)

	b, o = openObj(b, `"http":`)
	h := &ev.HTTP
	b = strField(b, `"version":`, h.Version)
	b, o2 = openObj(b, `"request":`)
	b = strField(b, `"id":`, h.Request.ID)
	b = strField(b, `"method":`, h.Request.Method)
	b = strField(b, `"referrer":`, h.Request.Referrer)
	b = strField(b, `"mime_type":`, h.Request.MimeType)
	b = intField(b, `"bytes":`, h.Request.Bytes)
	b = bodyField(b, h.Request.Body)
	b = closeObj(b, o2)
	b, o2 = openObj(b, `"response":`)
	b = intField(b, `"status_code":`, int64(h.Response.StatusCode))
	b = strField(b, `"mime_type":`, h.Response.MimeType)
	b = intField(b, `"bytes":`, h.Response.Bytes)
	b = bodyField(b, h.Response.Body)
	b = closeObj(b, o2)
	b = closeObj(b, o)

	b, o = openObj(b, `"url":`)
	u := &ev.URL
	b = strField(b, `"original":`, u.Original)
	b = strField(b, `"scheme":`, u.Scheme)
	b = strField(b, `"domain":`, u.Domain)
	b = intField(b, `"port":`, int64(u.Port))
	b = strField(b, `"path":`, u.Path)
	b = strField(b, `"query":`, u.Query)
	b = strField(b, `"full":`, u.Full)
	b = closeObj(b, o)

	b, o = openObj(b, `"cloud":`)
	c := &ev.Cloud
	b = strField(b, `"provider":`, c.Provider)
	b = strField(b, `"region":`, c.Region)
	b, o2 = openObj(b, `"account":`)
	b = strField(b, `"id":`, c.Account.ID)
	b = closeObj(b, o2)
	b, o2 = openObj(b, `"service":`)
	b = strField(b, `"name":`, c.Service.Name)
	b = closeObj(b, o2)
	b = closeObj(b, o)

	b, o = openObj(b, `"observer":`)
	ob := &ev.Observer
	b = strField(b, `"name":`, ob.Name)
	b = strField(b, `"hostname":`, ob.Hostname)
	b = strField(b, `"type":`, ob.Type)
	b = strField(b, `"vendor":`, ob.Vendor)
	b = strField(b, `"product":`, ob.Product)
	b = closeObj(b, o)

	b, o = openObj(b, `"related":`)
	b = strsField(b, `"ip":`, ev.Related.IP)
	b = strsField(b, `"user":`, ev.Related.User)
	b = strsField(b, `"hosts":`, ev.Related.Hosts)
	b = closeObj(b, o)

	b, o = openObj(b, `"tls":`)
	b = strField(b, `"version":`, ev.TLS.Version)
	b = strField(b, `"version_protocol":`, ev.TLS.VersionProtocol)
	b = strField(b, `"cipher":`, ev.TLS.Cipher)
	b, o2 = openObj(b, `"client":`)
	b = strField(b, `"server_name":`, ev.TLS.Client.ServerName)
	b = closeObj(b, o2)
	b = closeObj(b, o)

	b, o = openObj(b, `"service":`)
	b = strField(b, `"id":`, ev.Service.ID)
	b = strField(b, `"name":`, ev.Service.Name)
	b = strField(b, `"type":`, ev.Service.Type)
	b = closeObj(b, o)

	b, o = openObj(b, `"trace":`)
	b = strField(b, `"id":`, ev.Trace.ID)
	b = closeObj(b, o)

	b, o = openObj(b, `"error":`)
	b = strField(b, `"code":`, ev.Error.Code)
	b = strField(b, `"message":`, ev.Error.Message)
	b = strField(b, `"type":`, ev.Error.Type)
	b = closeObj(b, o)

	b = appendThreat(b, ev.Threat.Enrichments)
	b = mapField(b, `"labels":`, ev.Labels)
	b = strsField(b, `"tags":`, ev.Tags)

	b, o = openObj(b, `"trailwatch":`)
	tw := &ev.Trailwatch
	b = strField(b, `"actor":`, tw.Actor)
	b = strField(b, `"source":`, tw.Source)
	b, o2 = openObj(b, `"credential":`)
	b = strField(b, `"fingerprint":`, tw.Credential.Fingerprint)
	b = strField(b, `"type":`, tw.Credential.Type)
	b = strField(b, `"id":`, tw.Credential.ID)
	b = strField(b, `"issuer":`, tw.Credential.Issuer)
	b = strField(b, `"subject":`, tw.Credential.Subject)
	b = strField(b, `"client_id":`, tw.Credential.ClientID)
	b = closeObj(b, o2)
	b, o2 = openObj(b, `"identity":`)
	b = strField(b, `"owner":`, tw.Identity.Owner)
	b = strField(b, `"team":`, tw.Identity.Team)
	b = strField(b, `"service":`, tw.Identity.Service)
	b = boolField(b, `"known":`, tw.Identity.Known)
	b = closeObj(b, o2)
	if tw.Raw != (schema.RawRef{}) {
		b, o2 = openObj(b, `"raw":`)
		b = strField(b, `"origin":`, tw.Raw.Origin)
		b = appendKey(b, `"offset":`)
		b = strconv.AppendInt(b, tw.Raw.Offset, 10)
		b = strField(b, `"hash":`, tw.Raw.Hash)
		b = strField(b, `"collector":`, tw.Raw.Collector)
		if tw.Raw.Hash != "" {
			// From the raw topic: the position is stated, 0 included
			// (schema.RawRef.MarshalJSON).
			b = strconv.AppendInt(appendKey(b, `"partition":`), int64(tw.Raw.Partition), 10)
			b = strconv.AppendInt(appendKey(b, `"kafka_offset":`), tw.Raw.KafkaOffset, 10)
		} else {
			b = intField(b, `"partition":`, int64(tw.Raw.Partition))
			b = intField(b, `"kafka_offset":`, tw.Raw.KafkaOffset)
		}
		b = closeObj(b, o2)
	}
	b = appendSession(b, &tw.Session)
	b = appendSignals(b, &tw.Signals)
	b, o2 = openObj(b, `"hop":`)
	b = strField(b, `"id":`, tw.Hop.ID)
	b = intField(b, `"index":`, int64(tw.Hop.Index))
	b = boolField(b, `"duplicate":`, tw.Hop.Duplicate)
	b = strField(b, `"first_event_id":`, tw.Hop.FirstEventID)
	b = strField(b, `"client_ip":`, tw.Hop.ClientIP)
	b = closeObj(b, o2)
	b = mapField(b, `"extra":`, tw.Extra)
	b = closeObj(b, o)

	return append(b, '}')
}

func appendThreat(b []byte, es []schema.ThreatEnrichment) []byte {
	if len(es) == 0 {
		return b
	}
	b, o := openObj(b, `"threat":`)
	b = append(appendKey(b, `"enrichments":`), '[')
	for i := range es {
		e := &es[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		var o2 int
		b, o2 = openObj(b, `"indicator":`)
		b = strField(b, `"type":`, e.Indicator.Type)
		b = strField(b, `"ip":`, e.Indicator.IP)
		b = strField(b, `"url":`, e.Indicator.URL)
		b = strField(b, `"domain":`, e.Indicator.Domain)
		b = strField(b, `"provider":`, e.Indicator.Provider)
		b = strField(b, `"description":`, e.Indicator.Description)
		b = strField(b, `"confidence":`, e.Indicator.Confidence)
		b = closeObj(b, o2)
		b, o2 = openObj(b, `"matched":`)
		b = strField(b, `"atomic":`, e.Matched.Atomic)
		b = strField(b, `"field":`, e.Matched.Field)
		b = strField(b, `"type":`, e.Matched.Type)
		b = closeObj(b, o2)
		b = append(b, '}')
	}
	b = append(b, ']')
	return closeObj(b, o)
}

func appendSession(b []byte, s *schema.Session) []byte {
	b, o := openObj(b, `"session":`)
	b = strField(b, `"id":`, s.ID)
	b = timeField(b, `"start":`, s.Start)
	b = intField(b, `"requests":`, s.Requests)
	b = intField(b, `"bytes":`, s.Bytes)
	return closeObj(b, o)
}

func appendSignals(b []byte, s *schema.Signals) []byte {
	b, o := openObj(b, `"signals":`)
	b, o2 := openObj(b, `"first_seen":`)
	b = boolField(b, `"ip":`, s.FirstSeen.IP)
	b = boolField(b, `"asn":`, s.FirstSeen.ASN)
	b = boolField(b, `"country":`, s.FirstSeen.Country)
	b = boolField(b, `"user_agent":`, s.FirstSeen.UserAgent)
	b = closeObj(b, o2)
	b = intField(b, `"distinct_ips":`, s.DistinctIPs)
	b = intField(b, `"distinct_actors":`, s.DistinctActors)
	b, o2 = openObj(b, `"travel":`)
	t := &s.Travel
	b = strField(b, `"from_ip":`, t.FromIP)
	b = strField(b, `"from_country":`, t.FromCountry)
	b = floatField(b, `"distance_km":`, t.DistanceKM)
	b = intField(b, `"seconds":`, t.Seconds)
	b = floatField(b, `"speed_kmh":`, t.SpeedKMH)
	b = boolField(b, `"impossible":`, t.Impossible)
	b = closeObj(b, o2)
	return closeObj(b, o)
}

func boolField(b []byte, key string, v bool) []byte {
	if !v {
		return b
	}
	return append(appendKey(b, key), "true"...)
}

func floatField(b []byte, key string, v float64) []byte {
	if v == 0 {
		return b
	}
	return appendFloat(appendKey(b, key), v)
}

func appendEndpoint(b []byte, key string, e *schema.Endpoint) []byte {
	b, o := openObj(b, key)
	b = strField(b, `"ip":`, e.IP)
	b = intField(b, `"port":`, int64(e.Port))
	b = strField(b, `"address":`, e.Address)
	b = strField(b, `"domain":`, e.Domain)
	b = intField(b, `"bytes":`, e.Bytes)
	b, o2 := openObj(b, `"geo":`)
	b = strField(b, `"country_iso_code":`, e.Geo.CountryISOCode)
	b = strField(b, `"country_name":`, e.Geo.CountryName)
	b = strField(b, `"city_name":`, e.Geo.CityName)
	// GeoPoint's fields have no omitempty: json.Marshal omits the point
	// only when it is the zero value, and then writes both coordinates.
	if loc := e.Geo.Location; math.Float64bits(loc.Lat) != 0 || math.Float64bits(loc.Lon) != 0 {
		b = appendKey(b, `"location":`)
		b = append(b, `{"lat":`...)
		b = appendFloat(b, loc.Lat)
		b = append(b, `,"lon":`...)
		b = appendFloat(b, loc.Lon)
		b = append(b, '}')
	}
	b = closeObj(b, o2)
	b, o2 = openObj(b, `"as":`)
	b = intField(b, `"number":`, e.AS.Number)
	b, o3 := openObj(b, `"organization":`)
	b = strField(b, `"name":`, e.AS.Organization.Name)
	b = closeObj(b, o3)
	b = closeObj(b, o2)
	return closeObj(b, o)
}

// appendKey writes key, preceded by a comma unless it opens an object.
// Keys are field names from this file, written quoted and with their colon
// (`"name":`) so that each is one copy of a constant; every key parameter
// in this file takes that form.
func appendKey(b []byte, key string) []byte {
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	return append(b, key...)
}

// openObj starts key`{` and returns where it began, for closeObj.
func openObj(b []byte, key string) ([]byte, int) {
	start := len(b)
	return append(appendKey(b, key), '{'), start
}

// closeObj ends an object, or removes it (key and comma too) if nothing was
// written into it: that is omitzero for structs of omitempty fields.
func closeObj(b []byte, start int) []byte {
	if b[len(b)-1] == '{' {
		return b[:start]
	}
	return append(b, '}')
}

func strField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(appendKey(b, key), v)
}

func intField(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(appendKey(b, key), v, 10)
}

func timeField(b []byte, key string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return appendTime(appendKey(b, key), t)
}

func bodyField(b []byte, body schema.HTTPBody) []byte {
	if body.Bytes == 0 {
		return b
	}
	b = appendKey(b, `"body":`)
	b = append(b, `{"bytes":`...)
	b = strconv.AppendInt(b, body.Bytes, 10)
	return append(b, '}')
}

func strsField(b []byte, key string, vs []string) []byte {
	if len(vs) == 0 {
		return b
	}
	b = append(appendKey(b, key), '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

func mapField(b []byte, key string, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(appendKey(b, key), '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendTime writes t as an RFC 3339 string in UTC with the fractional
// seconds trimmed, as time.Time.MarshalJSON does for a UTC time.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	b = append(b, '"')
	b = append4(b, year)
	b = append(b, '-')
	b = append2(b, int(month))
	b = append(b, '-')
	b = append2(b, day)
	b = append(b, 'T')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z', '"')
}

func append2(b []byte, v int) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}

func append4(b []byte, v int) []byte {
	return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// appendFloat formats like encoding/json: the shortest representation,
// exponent form only for very small or very large magnitudes.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Shorten a two-digit negative exponent: 1e-07 -> 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// jsonSafe marks the ASCII bytes that go into a JSON string unescaped.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// SkipJSONSpace returns the index of the first byte of b at or after i
// that is not JSON white space (space, tab, newline, carriage return).
func SkipJSONSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// PlainJSONPrefix returns how many leading bytes of s a JSON string holds
// as they are: ASCII, no quote, backslash or control character. It tests
// eight bytes at a time with the carry tricks for "has a byte below n /
// equal to v", which answer "any?" exactly.
func PlainJSONPrefix[T ~string | ~[]byte](s T) int {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		q := x ^ (lsb * '"')
		bs := x ^ (lsb * '\\')
		if ((x-lsb*0x20)&^x|(q-lsb)&^q|(bs-lsb)&^bs|x)&msb != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !jsonSafe[c] {
			break
		}
	}
	return i
}

// AppendJSONString appends s as a JSON string; invalid UTF-8 becomes \ufffd.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

// appendString writes s as a JSON string. Invalid UTF-8 becomes \ufffd, as
// encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; ; {
		i += PlainJSONPrefix(s[i:])
		if i >= len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				start = i + 1
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
