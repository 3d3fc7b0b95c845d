package iplist

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Formats a list may be written in (List.Format).
const (
	FormatPlain = "plain" // IP or CIDR per line, optional ",label"
	FormatCSV   = "csv"   // CSV, indicator in List.Column
	FormatTor   = "tor"   // Tor exit-addresses or the plain bulk exit list
	FormatSTIX  = "stix"  // STIX 2.1 JSON bundle of indicators
	FormatMISP  = "misp"  // MISP CSV export of attributes
)

var formats = []string{FormatPlain, FormatCSV, FormatTor, FormatSTIX, FormatMISP}

// kind is what an indicator matches.
type kind uint8

const (
	kindIP kind = iota
	kindDomain
	kindURL
)

// entry is one indicator of a list: an IP network, a domain or a URL.
type entry struct {
	kind   kind
	prefix netip.Prefix // kindIP
	value  string       // kindDomain, kindURL: normalized (see normDomain, normURL)
	label  string
	// desc and confidence come from feeds that carry them (STIX, MISP);
	// confidence is on the ECS scale (Low, Medium, High, None).
	desc, confidence string
}

// parseOpts are what parsing needs beyond the bytes.
type parseOpts struct {
	format, column, labelColumn string
	includeNonIDS               bool
	now                         time.Time // STIX valid_until is compared with it
}

// parsed is a parse's result: the entries, and how many records were
// understood but skipped (other indicator types, expired, not to_ids).
type parsed struct {
	entries []entry
	skipped int
}

// parse reads data in o.format; name prefixes errors (a path or a
// redacted URL).
func parse(name string, data []byte, o parseOpts) (parsed, error) {
	switch o.format {
	case FormatCSV:
		return parseCSV(name, data, o.column, o.labelColumn)
	case FormatTor:
		return parseTor(name, data)
	case FormatSTIX:
		return parseSTIX(name, data, o.now)
	case FormatMISP:
		return parseMISP(name, data, o.includeNonIDS)
	default:
		es, err := parseList(name, bytes.NewReader(data))
		return parsed{entries: es}, err
	}
}

// classify reads one indicator value of unknown type: an IP or CIDR, an
// absolute http(s) URL, or a domain name.
func classify(s string) (entry, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return entry{}, false
	}
	if p, err := parsePrefix(s); err == nil {
		return entry{kind: kindIP, prefix: p}, true
	}
	if strings.Contains(s, "://") {
		if u, ok := normURL(s); ok {
			return entry{kind: kindURL, value: u}, true
		}
		return entry{}, false
	}
	if d, ok := normDomain(s); ok {
		return entry{kind: kindDomain, value: d}, true
	}
	return entry{}, false
}

// normDomain lower-cases a host name and drops a trailing dot; it refuses
// what cannot be a DNS name (no dot, spaces, slashes, over 253 bytes).
func normDomain(s string) (string, bool) {
	if !utf8.ValidString(s) {
		return "", false // ToLower would turn each bad byte into U+FFFD
	}
	s = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c >= 0x80) {
			return "", false
		}
	}
	return s, true
}

// normURL puts a URL in the form URL indicators are compared in: scheme
// and host lower-cased, the fragment dropped, the rest as written. Only
// http and https URLs with a host are accepted.
func normURL(s string) (string, bool) {
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", false
	}
	lscheme := strings.ToLower(scheme)
	if lscheme != "http" && lscheme != "https" {
		return "", false
	}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	host, path := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if host == "" || strings.ContainsAny(host, " \t") {
		return "", false
	}
	lhost := strings.ToLower(host)
	if lscheme == scheme && lhost == host && path != "" {
		// Already in normal form: no copy (the hot path for event URLs).
		return s[:len(scheme)+3+len(rest)], true
	}
	if path == "" {
		path = "/"
	}
	return lscheme + "://" + lhost + path, true
}

// parseCSV reads a CSV file whose column (a header name, or a 1-based
// number for files without a header) holds the indicator and labelColumn,
// if set, its label. "#" lines are comments.
func parseCSV(name string, data []byte, column, labelColumn string) (parsed, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment, r.FieldsPerRecord, r.LazyQuotes, r.ReuseRecord = '#', -1, true, true
	col, lcol := -1, -1
	if n, err := strconv.Atoi(column); err == nil {
		col = n - 1
		if labelColumn != "" {
			if lcol, err = strconv.Atoi(labelColumn); err != nil {
				return parsed{}, fmt.Errorf("%s: label column %q: a numbered column needs a numbered label column", name, labelColumn)
			}
			lcol--
		}
	}
	var out parsed
	var errs []error
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return parsed{}, fmt.Errorf("%s: %w", name, err)
		}
		if col < 0 { // the header names the columns
			for i, h := range rec {
				h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
				switch h {
				case strings.ToLower(column):
					col = i
				case strings.ToLower(labelColumn):
					lcol = i
				}
			}
			if col < 0 {
				return parsed{}, fmt.Errorf("%s:%d: no column %q in the header", name, line, column)
			}
			continue
		}
		if col >= len(rec) {
			if len(errs) < maxLineErrors {
				errs = append(errs, fmt.Errorf("%s:%d: no column %d", name, line, col+1))
			}
			continue
		}
		en, ok := classify(strings.Trim(rec[col], `"`))
		if !ok {
			if len(errs) < maxLineErrors {
				errs = append(errs, fmt.Errorf("%s:%d: %q is not an IP, CIDR, URL or domain", name, line, rec[col]))
			}
			continue
		}
		if lcol >= 0 && lcol < len(rec) {
			en.label = strings.TrimSpace(rec[lcol])
		}
		out.entries = append(out.entries, en)
	}
	return out, errors.Join(errs...)
}

// parseTor reads check.torproject.org/exit-addresses ("ExitAddress <ip>
// <date>" records among ExitNode, Published and LastStatus lines) or the
// bulk exit list (one address per line). Any other line is an error, so an
// HTML error page served with status 200 does not pass for an empty list.
func parseTor(name string, data []byte) (parsed, error) {
	var out parsed
	var errs []error
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		key, rest, _ := strings.Cut(line, " ")
		switch key {
		case "ExitNode", "Published", "LastStatus":
			continue
		case "ExitAddress":
			line, _, _ = strings.Cut(strings.TrimSpace(rest), " ")
		}
		a, err := netip.ParseAddr(line)
		if err != nil {
			if len(errs) < maxLineErrors {
				errs = append(errs, fmt.Errorf("%s:%d: %w", name, n+1, err))
			}
			continue
		}
		a = a.Unmap().WithZone("")
		out.entries = append(out.entries, entry{kind: kindIP, prefix: netip.PrefixFrom(a, a.BitLen())})
	}
	return out, errors.Join(errs...)
}

// mispColumns are the MISP CSV export's columns when there is no header.
var mispColumns = []string{"uuid", "event_id", "category", "type", "value", "comment", "to_ids", "date"}

// parseMISP reads a MISP CSV export (/attributes/restSearch returnFormat
// csv). Types ip-src, ip-dst (and their "|port" forms), domain, hostname
// and url become indicators; others are skipped, and so are attributes
// without to_ids unless includeNonIDS.
func parseMISP(name string, data []byte, includeNonIDS bool) (parsed, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord, r.LazyQuotes, r.ReuseRecord = -1, true, true
	idx := map[string]int{}
	for i, c := range mispColumns {
		idx[c] = i
	}
	var out parsed
	var errs []error
	first := true
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return parsed{}, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := r.FieldPos(0)
		if first {
			first = false
			if len(rec) > 0 && strings.EqualFold(strings.TrimPrefix(rec[0], "\ufeff"), "uuid") {
				clear(idx)
				for i, h := range rec {
					idx[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
				}
				if _, ok := idx["value"]; !ok {
					return parsed{}, fmt.Errorf("%s:%d: header has no value column", name, line)
				}
				if _, ok := idx["type"]; !ok {
					return parsed{}, fmt.Errorf("%s:%d: header has no type column", name, line)
				}
				continue
			}
		}
		get := func(col string) string {
			if i, ok := idx[col]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		if !includeNonIDS {
			switch strings.ToLower(get("to_ids")) {
			case "1", "true":
			default:
				out.skipped++
				continue
			}
		}
		typ, value := get("type"), get("value")
		var en entry
		ok := false
		switch typ {
		case "ip-src", "ip-dst", "ip-src|port", "ip-dst|port":
			if strings.HasSuffix(typ, "|port") {
				value, _, _ = strings.Cut(value, "|")
			}
			var p netip.Prefix
			if p, err = parsePrefix(value); err == nil {
				en, ok = entry{kind: kindIP, prefix: p}, true
			}
		case "domain", "hostname":
			var d string
			if d, ok = normDomain(value); ok {
				en = entry{kind: kindDomain, value: d}
			}
		case "url":
			var u string
			if u, ok = normURL(value); ok {
				en = entry{kind: kindURL, value: u}
			}
		default:
			out.skipped++
			continue
		}
		if !ok {
			if len(errs) < maxLineErrors {
				errs = append(errs, fmt.Errorf("%s:%d: %s %q does not parse", name, line, typ, value))
			}
			continue
		}
		en.desc = get("comment")
		out.entries = append(out.entries, en)
	}
	return out, errors.Join(errs...)
}

// stixBundle is the part of a STIX 2.1 bundle trailwatch reads.
type stixBundle struct {
	Type    string       `json:"type"`
	Objects []stixObject `json:"objects"`
}

type stixObject struct {
	Type        string   `json:"type"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Pattern     string   `json:"pattern"`
	PatternType string   `json:"pattern_type"`
	ValidUntil  string   `json:"valid_until"`
	Revoked     bool     `json:"revoked"`
	Confidence  *int     `json:"confidence"`
	Labels      []string `json:"labels"`
}

// parseSTIX reads a STIX 2.1 bundle. Each indicator object whose pattern
// is STIX and made only of OR-joined equality comparisons on ipv4-addr,
// ipv6-addr, url or domain-name values becomes one entry per value, with
// the indicator's name as label and its description and confidence.
// Indicators past valid_until (compared with now) or revoked, other
// patterns and other objects are skipped.
func parseSTIX(name string, data []byte, now time.Time) (parsed, error) {
	var b stixBundle
	if err := json.Unmarshal(data, &b); err != nil {
		return parsed{}, fmt.Errorf("%s: %w", name, err)
	}
	if b.Type != "bundle" {
		return parsed{}, fmt.Errorf("%s: not a STIX bundle (type %q)", name, b.Type)
	}
	var out parsed
	for _, o := range b.Objects {
		if o.Type != "indicator" {
			continue
		}
		if o.Revoked || o.PatternType != "" && o.PatternType != "stix" {
			out.skipped++
			continue
		}
		if o.ValidUntil != "" {
			if t, err := time.Parse(time.RFC3339Nano, o.ValidUntil); err == nil && !t.After(now) {
				out.skipped++
				continue
			}
		}
		ens, ok := stixPattern(o.Pattern)
		if !ok {
			out.skipped++
			continue
		}
		conf := ""
		if o.Confidence != nil {
			conf = confidenceScale(*o.Confidence)
		}
		for _, en := range ens {
			en.label, en.desc, en.confidence = o.Name, o.Description, conf
			out.entries = append(out.entries, en)
		}
	}
	return out, nil
}

// confidenceScale maps a STIX 0-100 confidence to the ECS scale, as the
// STIX 2.1 specification's "None/Low/Med/High" table does.
func confidenceScale(c int) string {
	switch {
	case c <= 0:
		return "None"
	case c < 30:
		return "Low"
	case c < 70:
		return "Medium"
	}
	return "High"
}

// stixPattern reads "[a:value = 'x'] OR [b:value = 'y' OR c:value = 'z']".
// Anything else (AND, FOLLOWEDBY, other objects or properties, other
// operators) refuses the whole pattern: an indicator is only usable when
// matching any single value means it matched.
func stixPattern(p string) ([]entry, bool) {
	s := &stixScanner{s: p}
	var out []entry
	for {
		if !s.lit("[") {
			return nil, false
		}
		for {
			en, ok := s.comparison()
			if !ok {
				return nil, false
			}
			out = append(out, en)
			if !s.word("OR") {
				break
			}
		}
		if !s.lit("]") {
			return nil, false
		}
		if s.end() {
			return out, len(out) > 0
		}
		if !s.word("OR") {
			return nil, false
		}
	}
}

type stixScanner struct {
	s string
	i int
}

func (s *stixScanner) skip() {
	for s.i < len(s.s) && (s.s[s.i] == ' ' || s.s[s.i] == '\t' || s.s[s.i] == '\n' || s.s[s.i] == '\r') {
		s.i++
	}
}

func (s *stixScanner) end() bool { s.skip(); return s.i == len(s.s) }

func (s *stixScanner) lit(l string) bool {
	s.skip()
	if strings.HasPrefix(s.s[s.i:], l) {
		s.i += len(l)
		return true
	}
	return false
}

// word matches a keyword followed by a non-letter.
func (s *stixScanner) word(w string) bool {
	s.skip()
	if !strings.HasPrefix(s.s[s.i:], w) {
		return false
	}
	if j := s.i + len(w); j < len(s.s) && (s.s[j] >= 'A' && s.s[j] <= 'Z' || s.s[j] >= 'a' && s.s[j] <= 'z') {
		return false
	}
	s.i += len(w)
	return true
}

func (s *stixScanner) comparison() (entry, bool) {
	s.skip()
	j := s.i
	for j < len(s.s) && s.s[j] != ' ' && s.s[j] != '=' && s.s[j] != ']' {
		j++
	}
	path := s.s[s.i:j]
	s.i = j
	if !s.lit("=") {
		return entry{}, false
	}
	v, ok := s.str()
	if !ok {
		return entry{}, false
	}
	switch path {
	case "ipv4-addr:value", "ipv6-addr:value":
		p, err := parsePrefix(v)
		if err != nil || p.Addr().Is4() != (path == "ipv4-addr:value") {
			return entry{}, false
		}
		return entry{kind: kindIP, prefix: p}, true
	case "domain-name:value":
		d, ok := normDomain(v)
		return entry{kind: kindDomain, value: d}, ok
	case "url:value":
		u, ok := normURL(v)
		return entry{kind: kindURL, value: u}, ok
	}
	return entry{}, false
}

// str reads a single-quoted STIX string, where \' and \\ are escapes.
func (s *stixScanner) str() (string, bool) {
	if !s.lit("'") {
		return "", false
	}
	var b strings.Builder
	for s.i < len(s.s) {
		c := s.s[s.i]
		s.i++
		switch c {
		case '\'':
			return b.String(), true
		case '\\':
			if s.i == len(s.s) {
				return "", false
			}
			b.WriteByte(s.s[s.i])
			s.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}
