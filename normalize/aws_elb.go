package normalize

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// AWSELB parses Classic Load Balancer access log lines:
//
//	timestamp elb client:port backend:port request_processing_time backend_processing_time response_processing_time elb_status_code backend_status_code received_bytes sent_bytes "request" "user_agent" ssl_cipher ssl_protocol
//
// Lines written before user_agent and ssl_* were added (ending after
// "request") are accepted, and fields after ssl_protocol are kept as
// trailwatch.extra "aws.elb.field_N" (N the 1-based position). TCP and SSL
// listeners log "- - - " as the request and "-" as status codes: such lines
// give an event without http.* request fields. "-" is absent throughout,
// and a processing time of -1 (the balancer could not dispatch) is kept in
// trailwatch.extra but sets no event.duration.
//
// The mapping follows Elastic's aws integration (elb_logs data stream):
// ECS fields where ECS has them, the rest under trailwatch.extra with
// Elastic's aws.elb.* names (documented in docs/sources.md). AWSELB is
// stateless and safe for concurrent use.
type AWSELB struct{}

// NewAWSELB returns the Classic Load Balancer access log normalizer.
func NewAWSELB() *AWSELB { return &AWSELB{} }

// NewAWSELBSpec builds the aws_elb normalizer from a spec; it takes no
// options.
func NewAWSELBSpec(s Spec) (Normalizer, error) {
	if s.Format != "" || s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, errNoOptions
	}
	return NewAWSELB(), nil
}

// elbClassicNames names the classic fields for errors, 0-based.
var elbClassicNames = [...]string{
	"timestamp", "elb", "client:port", "backend:port", "request_processing_time",
	"backend_processing_time", "response_processing_time", "elb_status_code",
	"backend_status_code", "received_bytes", "sent_bytes", "request", "user_agent",
	"ssl_cipher", "ssl_protocol",
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged and the error names the field.
func (n *AWSELB) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	return elbNormalize(dst, rec, "aws_elb", elbClassicNames[:], 0)
}

// elbNormalize is the shared body of the classic and application load
// balancer parsers; off is the index of the classic "timestamp" field in
// the line (the ALB line starts with its type).
func elbNormalize(dst []schema.Event, rec *ingest.Record, src string, names []string, off int) ([]schema.Event, error) {
	data := rec.Data
	if len(data) > MaxLineBytes {
		return dst, fmt.Errorf("%s: line is %d bytes, over the %d-byte limit", src, len(data), MaxLineBytes)
	}
	if k := len(data); k > 0 && data[k-1] == '\r' {
		data = data[:k-1]
	}
	line, invalid := cloudValid(string(data))
	var f elbFields
	if err := f.split(src, line); err != nil {
		return dst, err
	}
	if want := off + 12; f.n < want {
		return dst, fmt.Errorf("%s: line has %d fields, want at least %d (through %q)", src, f.n, want, names[want-1])
	}
	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	if err := elbMap(ev, &f, src, names, off); err != nil {
		*ev = schema.Event{}
		return dst[:len(dst)-1], err
	}
	ev.Event.ID = rec.ID()
	ev.Trailwatch.Source = src
	ev.Trailwatch.Raw = schema.RawRef{Origin: rec.Origin, Offset: rec.Offset, Collector: rec.Collector}
	if invalid {
		ev.Tags = append(ev.Tags, TagInvalidUTF8)
	}
	ev.Trailwatch.Actor = ev.ActorKey()
	return dst, nil
}

// elbMaxFields bounds the fields of one line; ALB writes 33 today.
const elbMaxFields = 64

// elbFields holds one line split into fields: bare fields end at a space,
// quoted ones at an unescaped '"'. Values are substrings of the line, or
// decoded copies when a quoted field held \" or \\.
type elbFields struct {
	v [elbMaxFields]string
	n int
}

func (f *elbFields) split(src, line string) error {
	for i := 0; i < len(line); {
		if f.n == elbMaxFields {
			return fmt.Errorf("%s: line has more than %d fields", src, elbMaxFields)
		}
		if line[i] == '"' {
			start := i + 1
			j := start
			for {
				k := strings.IndexByte(line[j:], '"')
				if k < 0 {
					return fmt.Errorf("%s: field %d: unterminated quoted field at byte %d", src, f.n+1, i)
				}
				j += k
				bs := 0
				for b := j - 1; b >= start && line[b] == '\\'; b-- {
					bs++
				}
				if bs%2 == 0 {
					break
				}
				j++
			}
			f.v[f.n] = elbUnescape(line[start:j])
			i = j + 1
		} else {
			k := strings.IndexByte(line[i:], ' ')
			if k < 0 {
				k = len(line) - i
			}
			f.v[f.n] = line[i : i+k]
			i += k
		}
		f.n++
		if i < len(line) {
			if line[i] != ' ' {
				return fmt.Errorf("%s: field %d: expected ' ' at byte %d", src, f.n, i)
			}
			i++
		}
	}
	return nil
}

// elbUnescape undoes \" and \\ in a quoted field.
func elbUnescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

// elbMap maps the fields shared by classic and application load balancers;
// v[off] is the timestamp.
func elbMap(ev *schema.Event, f *elbFields, src string, names []string, off int) error {
	v := f.v[off:f.n]
	var x cloudKV
	field := func(i int) string {
		if i < len(v) && v[i] != "-" {
			return v[i]
		}
		return ""
	}
	bad := func(i int, what string) error {
		return fmt.Errorf("%s: field %d (%s): %s %q", src, off+i+1, names[off+i], what, cloudClip(v[i]))
	}
	t, ok := cloudTime(v[0])
	if !ok {
		return bad(0, "invalid time")
	}
	ev.Timestamp = t
	x.add("aws.elb.name", field(1))
	if c := field(2); c != "" {
		ip, port := elbHostPort(c)
		ev.Source.Address = ip
		if _, err := netip.ParseAddr(ip); err == nil {
			ev.Source.IP = ip
		}
		ev.Source.Port = port
	}
	if b := field(3); b != "" {
		ip, port := elbHostPort(b)
		x.add("aws.elb.backend.ip", ip)
		if port != 0 {
			x.add("aws.elb.backend.port", b[len(b)-elbDigits(port):])
		}
	}
	// Processing times: kept as logged; event.duration is their sum when
	// all three are known (-1 means the request was not dispatched).
	backendKey := "aws.elb.backend_processing_time.sec"
	var total int64
	known := true
	for i, key := range [3]string{"aws.elb.request_processing_time.sec", backendKey, "aws.elb.response_processing_time.sec"} {
		s := field(4 + i)
		x.add(key, s)
		d, ok := parseSeconds(s)
		known = known && ok
		total += d
	}
	if known {
		ev.Event.Duration = total
	}
	if s := field(7); s != "" {
		sc, ok := digits(s)
		if !ok || len(s) > 3 {
			return bad(7, "invalid status")
		}
		ev.HTTP.Response.StatusCode = sc
	}
	x.add("aws.elb.backend.http.response.status_code", field(8))
	for i, dst := range [2]*int64{&ev.HTTP.Request.Body.Bytes, &ev.HTTP.Response.Body.Bytes} {
		s := field(9 + i)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return bad(9+i, "invalid byte count")
		}
		*dst = n
	}
	elbRequest(ev, v[11])
	if ua := field(12); ua != "" {
		ev.UserAgent.Original = ua
	}
	cloudTLS(ev, field(14), field(13))
	proto := "http"
	if ev.HTTP.Request.Method == "" && off == 0 {
		proto = "tcp" // a classic TCP/SSL listener logs no request
	}
	x.add("aws.elb.protocol", proto)

	// The fixed arrays share one allocation; capacities are clipped so an
	// append by a later stage copies instead of overwriting a neighbour.
	arr := &[4]string{"web", "access", ev.Source.IP, ev.URL.Domain}
	ev.Event.Kind = "event"
	ev.Event.Category = arr[0:1:1]
	ev.Event.Type = arr[1:2:2]
	if arr[2] != "" {
		ev.Related.IP = arr[2:3:3]
	}
	if arr[3] != "" {
		ev.Related.Hosts = arr[3:4:4]
	}
	ev.Event.Dataset = "aws.elb_logs"
	ev.Event.Module = "aws"
	cloudOutcome(ev)
	ev.Cloud.Provider = "aws"
	ev.Observer.Vendor = "AWS"
	if off == 0 {
		ev.Observer.Product = "Classic Load Balancer"
		for i := 15; i < len(v); i++ {
			x.add("aws.elb.field_"+strconv.Itoa(i+1), v[i])
		}
	}
	if off == 1 {
		albTail(ev, f.v[:f.n], &x)
	}
	x.flush(ev)
	ApplyCredential(ev, ev.URL.Query)
	return nil
}

// elbRequest splits "METHOD URL HTTP/x" into http.* and url.*; a TCP
// listener's "- - - " and anything malformed keep only url.original.
func elbRequest(ev *schema.Event, req string) {
	if req == "" || req == "- - - " || req == "-" {
		return
	}
	sp1 := strings.IndexByte(req, ' ')
	sp2 := strings.LastIndexByte(req, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 || !isWord(req[:sp1]) {
		ev.URL.Original = req
		return
	}
	ver := cloudHTTPVersion(req[sp2+1:])
	if ver == "" && req[sp2+1:] != "-" {
		ev.URL.Original = req
		return
	}
	ev.HTTP.Request.Method = req[:sp1]
	ev.HTTP.Version = ver
	target := req[sp1+1 : sp2]
	ev.URL.Original = target
	splitTarget(&ev.URL, target)
}

// elbHostPort splits "ip:port", "[v6]:port" or a bare address.
func elbHostPort(s string) (string, int) {
	if strings.HasPrefix(s, "[") {
		if end := strings.IndexByte(s, ']'); end > 0 {
			port, _ := strconv.Atoi(strings.TrimPrefix(s[end+1:], ":"))
			return s[1:end], elbPort(port)
		}
	}
	c := strings.LastIndexByte(s, ':')
	if c < 0 {
		return s, 0
	}
	port, err := strconv.Atoi(s[c+1:])
	if err != nil {
		return s, 0
	}
	return s[:c], elbPort(port)
}

// elbDigits returns the number of decimal digits of a port.
func elbDigits(p int) int {
	n := 1
	for ; p >= 10; p /= 10 {
		n++
	}
	return n
}

func elbPort(p int) int {
	if p <= 0 || p > 65535 {
		return 0
	}
	return p
}
