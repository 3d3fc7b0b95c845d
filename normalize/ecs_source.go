package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// ECS reads events that are already in the Elastic Common Schema: one JSON
// object per record, as Filebeat, Elastic Agent, Logstash or another
// trailwatch write them. Field names may be nested ({"source":{"ip":…}}),
// dotted ({"source.ip":…}) or both, as Elasticsearch accepts.
//
// It decodes into schema.Event and validates what Elasticsearch would
// otherwise reject or what later stages rely on: @timestamp must be
// present (RFC 3339 or epoch milliseconds); IP fields must be IP
// addresses, ports 0–65535, a status code 0–999, event.kind and
// event.outcome ECS values, geo points in range. A value of the wrong JSON
// type is an error naming the field. Fields where ECS allows one value or
// an array (event.category, event.type, related.*, tags) take either.
//
// Fields outside schema.Event (host.*, process.*, ecs.version) are
// ignored; the raw topic keeps them. When
// missing, event.id is set to rec.ID() (a given id is kept, so events
// keep the identity their producer gave them), trailwatch.source to "ecs",
// trailwatch.raw to the record's provenance and trailwatch.actor to
// ActorKey. ECS is stateless and safe for concurrent use.
type ECS struct{}

// NewECS returns the normalizer of ready-made ECS events.
func NewECS() *ECS { return &ECS{} }

// NewECSSpec builds the ecs normalizer from a spec; it takes no options.
func NewECSSpec(s Spec) (Normalizer, error) {
	if s.Format != "" || s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, errNoOptions
	}
	return NewECS(), nil
}

// ecsField is where a dotted JSON path lands in schema.Event.
type ecsField struct {
	index []int
	typ   reflect.Type
}

// ecsPaths maps every leaf path of schema.Event ("source.port") to its
// field, and ecsObjects every object path ("source", "source.geo"); both
// are built once from the struct's json tags, so a field added to the
// schema is decoded without touching this file.
var ecsPaths, ecsObjects = ecsBuildPaths()

// ecsMapPrefixes are the map[string]string fields: their keys may hold dots.
var ecsMapPrefixes = [...]string{"labels.", "trailwatch.extra."}

var ecsTimeType = reflect.TypeFor[time.Time]()

func ecsBuildPaths() (map[string]ecsField, map[string]bool) {
	paths, objects := map[string]ecsField{}, map[string]bool{"": true}
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			path := prefix + name
			idx := append(slices.Clip(index), i)
			if f.Type.Kind() == reflect.Struct && f.Type != ecsTimeType {
				objects[path] = true
				walk(f.Type, path+".", idx)
				continue
			}
			if f.Type.Kind() == reflect.Map {
				objects[path] = true
			}
			paths[path] = ecsField{index: idx, typ: f.Type}
		}
	}
	walk(reflect.TypeFor[schema.Event](), "", nil)
	return paths, objects
}

// ecsDecoder fills an event from walker callbacks.
type ecsDecoder struct {
	ev  reflect.Value // *schema.Event, elem
	err error
}

func ecsJSONKind(k byte, object bool) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	if object {
		return "object"
	}
	return "array"
}

func ecsGoKind(t reflect.Type) string {
	switch {
	case t == ecsTimeType:
		return "time"
	case t.Kind() == reflect.Slice:
		return "array"
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return "object"
	}
	return t.Kind().String()
}

func (d *ecsDecoder) fail(path []byte, got string, want string) bool {
	if d.err == nil {
		d.err = fmt.Errorf("field %s: cannot use JSON %s as %s", path, got, want)
	}
	return false
}

func (d *ecsDecoder) enter(path []byte, object bool) bool {
	p := string(path)
	if ecsObjects[p] {
		if !object {
			return d.fail(path, "array", "object")
		}
		return true
	}
	if f, ok := ecsPaths[p]; ok {
		if f.typ.Kind() == reflect.Slice && !object {
			return true
		}
		return d.fail(path, ecsJSONKind(0, object), ecsGoKind(f.typ))
	}
	for _, m := range ecsMapPrefixes {
		if strings.HasPrefix(p, m) {
			return d.fail(path, ecsJSONKind(0, object), "string")
		}
	}
	return false // outside the schema: skipped
}

func (d *ecsDecoder) leaf(path []byte, v cjVal) error {
	if d.err != nil || v.kind == 'n' {
		return nil
	}
	p := string(path)
	f, ok := ecsPaths[p]
	if !ok {
		for _, m := range ecsMapPrefixes {
			if key, ok := strings.CutPrefix(p, m); ok && key != "" {
				if v.kind != '"' {
					d.fail(path, ecsJSONKind(v.kind, false), "string")
					return nil
				}
				mv := d.ev.FieldByIndex(ecsPaths[m[:len(m)-1]].index)
				if mv.IsNil() {
					mv.Set(reflect.MakeMap(mv.Type()))
				}
				mv.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(v.str()))
				return nil
			}
		}
		return nil
	}
	fv := d.ev.FieldByIndex(f.index)
	switch {
	case p == "@timestamp":
		// RFC 3339 text, or epoch milliseconds as a number or digits
		// (Elasticsearch's default date format).
		t, ok := time.Time{}, false
		if v.kind == '"' {
			t, ok = cloudTime(v.str())
		}
		if !ok && (v.kind == '0' || v.kind == '"') && len(v.raw) >= 10 {
			if ms, err := strconv.ParseInt(string(v.raw), 10, 64); err == nil && ms > 0 {
				t, ok = time.UnixMilli(ms).UTC(), true
			}
		}
		if !ok {
			d.err = fmt.Errorf("@timestamp: invalid time %q (want RFC 3339 or epoch milliseconds)", cloudClip(v.str()))
			return nil
		}
		fv.Set(reflect.ValueOf(t))
	case f.typ == ecsTimeType:
		if v.kind != '"' {
			d.fail(path, ecsJSONKind(v.kind, false), "time")
			return nil
		}
		t, ok := cloudTime(v.str())
		if !ok {
			d.err = fmt.Errorf("%s: invalid time %q", path, cloudClip(v.str()))
			return nil
		}
		fv.Set(reflect.ValueOf(t))
	case f.typ.Kind() == reflect.String:
		if v.kind != '"' {
			d.fail(path, ecsJSONKind(v.kind, false), "string")
			return nil
		}
		fv.SetString(v.str())
	case f.typ.Kind() == reflect.Slice: // []string: one value or an array
		if v.kind != '"' {
			d.fail(path, ecsJSONKind(v.kind, false), "string")
			return nil
		}
		fv.Set(reflect.Append(fv, reflect.ValueOf(v.str())))
	case f.typ.Kind() == reflect.Int || f.typ.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(string(v.raw), 10, 64)
		if v.kind != '0' || err != nil {
			got := ecsJSONKind(v.kind, false)
			if v.kind == '0' {
				got = "number " + cloudClip(string(v.raw))
			}
			d.fail(path, got, f.typ.Kind().String())
			return nil
		}
		fv.SetInt(n)
	case f.typ.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(string(v.raw), 64)
		if v.kind != '0' || err != nil {
			d.fail(path, ecsJSONKind(v.kind, false), "float64")
			return nil
		}
		fv.SetFloat(x)
	case f.typ.Kind() == reflect.Map:
		if v.kind != '"' {
			d.fail(path, ecsJSONKind(v.kind, false), "object")
		}
	}
	return nil
}

// Normalize appends the one event decoded from rec.Data to dst. On error
// dst is returned unchanged and the error names the field.
func (n *ECS) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := bytes.TrimSpace(rec.Data)
	if len(data) > MaxJSONRecordBytes {
		return dst, fmt.Errorf("ecs: record is %d bytes, over the %d-byte limit", len(data), MaxJSONRecordBytes)
	}
	if len(data) == 0 || data[0] != '{' {
		return dst, errors.New("ecs: record is not a JSON object")
	}
	var ev schema.Event
	d := ecsDecoder{ev: reflect.ValueOf(&ev).Elem()}
	var path [96]byte
	w := cjWalker{data: data, path: path[:0], enter: d.enter, leaf: d.leaf}
	if err := w.walkAll(); err != nil {
		return dst, fmt.Errorf("ecs: %w", err)
	}
	if d.err != nil {
		return dst, fmt.Errorf("ecs: %w", d.err)
	}
	if err := ecsValidate(&ev); err != nil {
		return dst, fmt.Errorf("ecs: %w", err)
	}
	if ev.Event.ID == "" {
		ev.Event.ID = rec.ID()
	}
	if ev.Trailwatch.Source == "" {
		ev.Trailwatch.Source = "ecs"
	}
	if ev.Trailwatch.Raw == (schema.RawRef{}) {
		ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	}
	ApplyCredential(&ev, ev.URL.Query)
	if ev.Trailwatch.Actor == "" {
		ev.Trailwatch.Actor = ev.ActorKey()
	}
	return append(dst, ev), nil
}

// ecsKinds are the ECS event.kind values.
var ecsKinds = map[string]bool{
	"alert": true, "asset": true, "enrichment": true, "event": true, "metric": true,
	"state": true, "pipeline_error": true, "signal": true,
}

// ecsValidate checks what Elasticsearch's ECS mapping or later stages
// would trip on.
func ecsValidate(ev *schema.Event) error {
	if ev.Timestamp.IsZero() {
		return fmt.Errorf("@timestamp: missing")
	}
	for _, tt := range [...]struct {
		name string
		t    time.Time
	}{{"@timestamp", ev.Timestamp}, {"event.created", ev.Event.Created}, {"event.ingested", ev.Event.Ingested}} {
		if y := tt.t.Year(); !tt.t.IsZero() && (y < 1 || y > 9999) {
			return fmt.Errorf("%s: year %d out of range", tt.name, y)
		}
	}
	if k := ev.Event.Kind; k != "" && !ecsKinds[k] {
		return fmt.Errorf("event.kind: %q is not an ECS kind", cloudClip(k))
	}
	switch o := ev.Event.Outcome; o {
	case "", "success", "failure", "unknown":
	default:
		return fmt.Errorf("event.outcome: %q is not success, failure or unknown", cloudClip(o))
	}
	if ev.Event.Duration < 0 {
		return fmt.Errorf("event.duration: negative (%d)", ev.Event.Duration)
	}
	for _, e := range [...]struct {
		name string
		ep   *schema.Endpoint
	}{{"source", &ev.Source}, {"client", &ev.Client}, {"destination", &ev.Destination}} {
		if ip := e.ep.IP; ip != "" {
			if _, err := netip.ParseAddr(ip); err != nil {
				return fmt.Errorf("%s.ip: invalid IP address %q", e.name, cloudClip(ip))
			}
		}
		if p := e.ep.Port; p < 0 || p > 65535 {
			return fmt.Errorf("%s.port: %d out of range", e.name, p)
		}
		if l := e.ep.Geo.Location; l.Lat < -90 || l.Lat > 90 || l.Lon < -180 || l.Lon > 180 {
			return fmt.Errorf("%s.geo.location: %v,%v out of range", e.name, l.Lat, l.Lon)
		}
	}
	for i, ip := range ev.Related.IP {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("related.ip[%d]: invalid IP address %q", i, cloudClip(ip))
		}
	}
	if sc := ev.HTTP.Response.StatusCode; sc < 0 || sc > 999 {
		return fmt.Errorf("http.response.status_code: %d out of range", sc)
	}
	if p := ev.URL.Port; p < 0 || p > 65535 {
		return fmt.Errorf("url.port: %d out of range", p)
	}
	return nil
}
