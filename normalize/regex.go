package normalize

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Regex is the generic line source: a Go regular expression whose named
// groups are mapped to ECS fields, for logs no built-in parser reads.
//
// Spec.Pattern is compiled once at Build and must have at least one named
// group. Spec.Fields maps a group name to a dotted ECS field from
// RegexFields or to "trailwatch.extra.<key>"; a named group left unmapped
// goes to trailwatch.extra under its own name. A group that did not take
// part in the match, matched "", or matched "-" is absent.
//
// @timestamp is parsed with Spec.TimeLayout (a Go time layout, default
// RFC 3339; a layout without a zone is read as UTC; it must include the
// year, or events land in year 0). Without an @timestamp
// group the record's observed time is used. event.duration takes a Go
// duration ("250ms") or decimal seconds ("0.250"). Values that do not
// convert (a port "abc", a bad time) are errors naming the group; a line
// that does not match is an error. Every captured value is searched for a
// credential fingerprint token (ApplyCredential).
//
// Regex does no ECS categorization beyond event.kind "event" and, when a
// status code is mapped, the web/access category and the outcome Elastic's
// web integrations give. It is safe for concurrent use (regexp.Regexp is).
type Regex struct {
	re     *regexp.Regexp
	set    []rxSetter // by subexpression index; nil for unnamed groups
	key    []string   // trailwatch.extra key for extra targets
	layout string
}

// rxSetter stores one captured value in the event.
type rxSetter func(r *Regex, ev *schema.Event, v string) error

// rxExtraPrefix introduces a trailwatch.extra target in Spec.Fields.
const rxExtraPrefix = "trailwatch.extra."

// rxFields are the ECS fields a group can be mapped to.
var rxFields = map[string]rxSetter{
	"@timestamp": func(r *Regex, ev *schema.Event, v string) error {
		t, err := time.Parse(r.layout, v)
		if err != nil {
			return errors.New("invalid time for layout " + strconv.Quote(r.layout))
		}
		ev.Timestamp = t.UTC()
		return nil
	},
	"source.ip":      rxIP(func(ev *schema.Event) *schema.Endpoint { return &ev.Source }),
	"destination.ip": rxIP(func(ev *schema.Event) *schema.Endpoint { return &ev.Destination }),
	"client.ip":      rxIP(func(ev *schema.Event) *schema.Endpoint { return &ev.Client }),
	"source.port":    rxPort(func(ev *schema.Event) *int { return &ev.Source.Port }),
	"destination.port": rxPort(func(ev *schema.Event) *int {
		return &ev.Destination.Port
	}),
	"source.address":            rxStr(func(ev *schema.Event) *string { return &ev.Source.Address }),
	"user.name":                 rxStr(func(ev *schema.Event) *string { return &ev.User.Name }),
	"user.id":                   rxStr(func(ev *schema.Event) *string { return &ev.User.ID }),
	"user.email":                rxStr(func(ev *schema.Event) *string { return &ev.User.Email }),
	"http.request.method":       rxStr(func(ev *schema.Event) *string { return &ev.HTTP.Request.Method }),
	"http.request.id":           rxStr(func(ev *schema.Event) *string { return &ev.HTTP.Request.ID }),
	"http.request.referrer":     rxStr(func(ev *schema.Event) *string { return &ev.HTTP.Request.Referrer }),
	"http.version":              rxStr(func(ev *schema.Event) *string { return &ev.HTTP.Version }),
	"url.original":              rxStr(func(ev *schema.Event) *string { return &ev.URL.Original }),
	"url.path":                  rxStr(func(ev *schema.Event) *string { return &ev.URL.Path }),
	"url.query":                 rxStr(func(ev *schema.Event) *string { return &ev.URL.Query }),
	"url.domain":                rxStr(func(ev *schema.Event) *string { return &ev.URL.Domain }),
	"user_agent.original":       rxStr(func(ev *schema.Event) *string { return &ev.UserAgent.Original }),
	"event.action":              rxStr(func(ev *schema.Event) *string { return &ev.Event.Action }),
	"trace.id":                  rxStr(func(ev *schema.Event) *string { return &ev.Trace.ID }),
	"service.name":              rxStr(func(ev *schema.Event) *string { return &ev.Service.Name }),
	"error.message":             rxStr(func(ev *schema.Event) *string { return &ev.Error.Message }),
	"http.response.body.bytes":  rxBytes(func(ev *schema.Event) *int64 { return &ev.HTTP.Response.Body.Bytes }),
	"http.request.body.bytes":   rxBytes(func(ev *schema.Event) *int64 { return &ev.HTTP.Request.Body.Bytes }),
	"http.response.status_code": rxStatus,
	"event.duration":            rxDuration,
}

// RegexFields lists the ECS fields a regex group can be mapped to, sorted;
// "trailwatch.extra.<key>" is accepted as well.
func RegexFields() []string {
	fs := make([]string, 0, len(rxFields))
	for k := range rxFields {
		fs = append(fs, k)
	}
	slices.Sort(fs)
	return fs
}

func rxStr(f func(*schema.Event) *string) rxSetter {
	return func(_ *Regex, ev *schema.Event, v string) error { *f(ev) = v; return nil }
}

func rxIP(f func(*schema.Event) *schema.Endpoint) rxSetter {
	return func(_ *Regex, ev *schema.Event, v string) error {
		ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(v, "["), "]"))
		if err != nil {
			return errors.New("invalid IP address")
		}
		ep := f(ev)
		ep.IP = ip.String()
		if ep.Address == "" {
			ep.Address = v
		}
		return nil
	}
}

func rxPort(f func(*schema.Event) *int) rxSetter {
	return func(_ *Regex, ev *schema.Event, v string) error {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return errors.New("invalid port")
		}
		*f(ev) = p
		return nil
	}
}

func rxBytes(f func(*schema.Event) *int64) rxSetter {
	return func(_ *Regex, ev *schema.Event, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errors.New("invalid byte count")
		}
		*f(ev) = n
		return nil
	}
}

func rxStatus(_ *Regex, ev *schema.Event, v string) error {
	sc, ok := digits(v)
	if !ok || len(v) > 3 {
		return errors.New("invalid status")
	}
	ev.HTTP.Response.StatusCode = sc
	return nil
}

func rxDuration(_ *Regex, ev *schema.Event, v string) error {
	if d, ok := parseSeconds(v); ok {
		ev.Event.Duration = d
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("invalid duration (want seconds or a Go duration)")
	}
	ev.Event.Duration = int64(d)
	return nil
}

// NewRegexSpec builds the regex normalizer from Spec.Pattern, Spec.Fields
// and Spec.TimeLayout. All problems are reported at once, each naming its
// key (pattern, fields.<group>, time_layout).
func NewRegexSpec(s Spec) (Normalizer, error) {
	var errs []error
	if s.Format != "" {
		errs = append(errs, errors.New("format: not used by the regex type (use pattern)"))
	}
	layout := s.TimeLayout
	if layout == "" {
		layout = time.RFC3339Nano
	} else if ref := time.Date(2025, 3, 18, 21, 14, 33, 0, time.UTC); func() bool {
		_, err := time.Parse(layout, ref.Format(layout))
		return err != nil || !strings.ContainsAny(layout, "0123456789")
	}() {
		errs = append(errs, fmt.Errorf("time_layout: %q is not a Go time layout (like %q)", layout, time.RFC3339))
	}
	if s.Pattern == "" {
		errs = append(errs, errors.New("pattern: required"))
		return nil, errors.Join(errs...)
	}
	re, err := regexp.Compile(s.Pattern)
	if err != nil {
		errs = append(errs, fmt.Errorf("pattern: %w", err))
		return nil, errors.Join(errs...)
	}
	r := &Regex{re: re, layout: layout}
	names := re.SubexpNames()
	r.set = make([]rxSetter, len(names))
	r.key = make([]string, len(names))
	named := 0
	for i, name := range names {
		if name == "" {
			continue
		}
		named++
		target, mapped := s.Fields[name]
		if !mapped {
			target = rxExtraPrefix + name
		}
		if key, ok := strings.CutPrefix(target, rxExtraPrefix); ok && key != "" {
			r.key[i] = key
			r.set[i] = rxExtra
			continue
		}
		set, ok := rxFields[target]
		if !ok {
			errs = append(errs, fmt.Errorf("fields.%s: unsupported field %q (supported: %s, trailwatch.extra.<key>)",
				name, target, strings.Join(RegexFields(), ", ")))
			continue
		}
		r.set[i] = set
	}
	if named == 0 {
		errs = append(errs, errors.New("pattern: has no named groups ((?P<name>…)) to map"))
	}
	for _, g := range slices.Sorted(maps.Keys(s.Fields)) {
		if !slices.Contains(names, g) {
			errs = append(errs, fmt.Errorf("fields.%s: no such named group in pattern", g))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// rxExtra marks trailwatch.extra targets; Normalize stores the value
// under Regex.key itself.
func rxExtra(_ *Regex, _ *schema.Event, _ string) error { return nil }

// Normalize appends the one event matched in rec.Data to dst. On error dst
// is returned unchanged and the error names the group.
func (r *Regex) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := rec.Data
	if len(data) > MaxLineBytes {
		return dst, fmt.Errorf("regex: line is %d bytes, over the %d-byte limit", len(data), MaxLineBytes)
	}
	if k := len(data); k > 0 && data[k-1] == '\r' {
		data = data[:k-1]
	}
	line, invalid := cloudValid(string(data))
	m := r.re.FindStringSubmatchIndex(line)
	if m == nil {
		return dst, errors.New("regex: line does not match the pattern")
	}
	var ev schema.Event
	names := r.re.SubexpNames()
	for i, set := range r.set {
		if set == nil || m[2*i] < 0 {
			continue
		}
		v := line[m[2*i]:m[2*i+1]]
		if v == "" || v == "-" {
			continue
		}
		if r.key[i] != "" {
			cloudExtra(&ev, 4, r.key[i], v)
		} else if err := set(r, &ev, v); err != nil {
			return dst, fmt.Errorf("regex: group %s: %v: %q", names[i], err, cloudClip(v))
		}
		ApplyCredential(&ev, v)
	}
	if ev.Timestamp.IsZero() {
		if rec.Observed.IsZero() {
			return dst, errors.New("regex: no @timestamp group matched and the record has no observed time")
		}
		ev.Timestamp = rec.Observed.UTC()
	}
	if ev.URL.Original != "" && ev.URL.Path == "" && ev.URL.Query == "" {
		splitTarget(&ev.URL, ev.URL.Original)
	}
	ev.Event.Kind = "event"
	if ev.HTTP.Response.StatusCode != 0 {
		ev.Event.Category = []string{"web"}
		ev.Event.Type = []string{"access"}
		cloudOutcome(&ev)
	}
	if ev.Source.IP != "" {
		cloudRelatedIP(&ev, ev.Source.IP)
	}
	cloudRelatedUser(&ev, ev.User.Name)
	ev.Event.ID = rec.ID()
	// A deployment may declare several regex sources; the record names
	// which one, so events say it too.
	ev.Trailwatch.Source = rec.Source
	if ev.Trailwatch.Source == "" {
		ev.Trailwatch.Source = "regex"
	}
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	if invalid {
		ev.Tags = append(ev.Tags, TagInvalidUTF8)
	}
	ev.Trailwatch.Actor = ev.ActorKey()
	return append(dst, ev), nil
}
