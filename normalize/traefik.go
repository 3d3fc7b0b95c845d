package normalize

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Traefik parses Traefik (v2, v3) access logs, in its common log format or
// as JSON, chosen per line unless the spec fixes one ('{' starts JSON).
//
// The common format is CLF with Traefik's three extra fields:
//
//	192.0.2.1 - alice [10/Oct/2025:13:55:36 +0000] "GET /api HTTP/1.1" 200 512 "-" "curl/8" 42 "api@docker" "http://10.0.0.5:8080" 7ms
//
// request count, router (v1: frontend) name, backend URL and duration.
// JSON logs use Traefik's field names: StartUTC, ClientHost, ClientPort,
// ClientUsername, RequestMethod, RequestPath, RequestProtocol, RequestHost,
// RequestPort, RequestScheme, RequestContentSize, DownstreamStatus,
// DownstreamContentSize, Duration (ns), RouterName, ServiceName,
// ServiceAddr, ServiceURL, entryPointName, RetryAttempts, OriginStatus,
// TLSVersion, TLSCipher, and the kept headers request_<Name> (User-Agent,
// Referer, X-Forwarded-For, X-Request-Id; Authorization, X-Api-Key and
// Cookie are read for a credential fingerprint token only).
//
// The mapping follows Elastic's traefik integration (event.dataset
// traefik.access). ServiceName is service.name; the backend is
// destination.*; what ECS lacks goes to trailwatch.extra:
// traefik.access.request_count, traefik.access.router.name,
// traefik.access.backend_url, traefik.access.entry_point,
// traefik.access.retry_attempts, traefik.access.origin_status.
// Traefik is safe for concurrent use.
type Traefik struct {
	format string // "", "common" or "json"
	clf    *Nginx
}

// NewTraefik returns the Traefik normalizer, detecting the format per line.
func NewTraefik() *Traefik { return &Traefik{clf: NewNginx()} }

// NewTraefikSpec builds the Traefik normalizer: Format "" (detect per
// line), "common" or "json".
func NewTraefikSpec(s Spec) (Normalizer, error) {
	switch s.Format {
	case "", "common", "json":
	default:
		return nil, fmt.Errorf(`format %q: want "", "common" or "json"`, s.Format)
	}
	if err := gwNoOptions(s); err != nil {
		return nil, err
	}
	return &Traefik{format: s.Format, clf: NewNginx()}, nil
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged.
func (t *Traefik) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := rec.Data
	for k := len(data); k > 0 && (data[k-1] == '\r' || data[k-1] == '\n'); k = len(data) {
		data = data[:k-1]
	}
	if t.format == "json" || t.format == "" && len(data) > 0 && data[0] == '{' {
		return t.json(dst, rec, data)
	}
	return t.common(dst, rec, data)
}

// common parses a common-format line: commonFast handles what Traefik
// writes; anything else (an error, a credential token outside the query
// string, key=value fields) takes commonSlow, which defines the result.
func (t *Traefik) common(dst []schema.Event, rec *ingest.Record, data []byte) ([]schema.Event, error) {
	if out, ok := t.commonFast(dst, rec, data); ok {
		return out, nil
	}
	return t.commonSlow(dst, rec, data)
}

// commonFast is commonSlow's result without its detours (the nginx parser's
// field_N map, its classification, id and actor key computed twice): it
// runs the nginx combined scanner and reads Traefik's four fields itself.
// It reports false, with dst unchanged, for any line it does not handle.
func (t *Traefik) commonFast(dst []schema.Event, rec *ingest.Record, data []byte) ([]schema.Event, bool) {
	if len(data) > MaxLineBytes {
		return dst, false
	}
	line, invalid := gwValid(string(data))
	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	p := parser{ev: ev, s: line, invalid: invalid}
	var tail [4]string // request count, router, backend URL, duration
	if !traefikParse(&p, &tail) ||
		strings.Contains(line, FingerprintPrefix) && !ApplyCredential(ev, ev.URL.Query) {
		*ev = schema.Event{}
		return dst[:len(dst)-1], false
	}
	count, router, backend, dur := tail[0], tail[1], tail[2], tail[3]
	if n := traefikCount(count, router, backend); n > 0 {
		x := make(map[string]string, n)
		if count != "" {
			x["traefik.access.request_count"] = count
		}
		if router != "" {
			x["traefik.access.router.name"] = router
		}
		if backend != "" {
			x["traefik.access.backend_url"] = backend
			if _, hp, ok := strings.Cut(backend, "://"); ok {
				hp, _, _ = strings.Cut(hp, "/")
				pxSetEndpoint(&ev.Destination, hp)
			}
		}
		ev.Trailwatch.Extra = x
	}
	if d, ok := strings.CutSuffix(dur, "ms"); ok {
		if ms, err := strconv.ParseInt(d, 10, 64); err == nil && ms >= 0 && ms < 1<<40 {
			ev.Event.Duration = ms * int64(time.Millisecond)
		}
	}
	pxFinish(ev, rec, "traefik", "traefik.access", "traefik", "web", "access", p.invalid)
	return dst, true
}

// traefikCount counts the non-empty values.
func traefikCount(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

// traefikParse is the nginx combined parser (parser.parse) with Traefik's
// fields read into tail instead of a field_N map. It reports false where
// commonSlow could differ: a parse error, or a key=value field.
func traefikParse(p *parser, tail *[4]string) bool {
	ev := p.ev
	addr, err := p.bare(fRemoteAddr)
	if err != nil {
		return false
	}
	if _, err := p.bare(fIdent); err != nil {
		return false
	}
	user, err := p.remoteUser()
	if err != nil || p.timeLocal() != nil {
		return false
	}
	if more, err := p.space(fRequest); err != nil || !more {
		return false
	}
	req, reqEsc, err := p.quoted(fRequest)
	if err != nil {
		return false
	}
	if more, err := p.space(fStatus); err != nil || !more {
		return false
	}
	status, err := p.bare(fStatus)
	if err != nil {
		return false
	}
	n, ok := digits(status)
	if !ok || len(status) > 3 {
		return false
	}
	ev.HTTP.Response.StatusCode = n
	bytesEnd := strings.IndexByte(p.s[p.i:], ' ')
	if bytesEnd < 0 {
		bytesEnd = len(p.s) - p.i
	}
	bytesStr := p.s[p.i : p.i+bytesEnd]
	p.i += bytesEnd
	if bytesStr != "-" {
		b, ok := digits64(bytesStr)
		if !ok {
			return false
		}
		ev.HTTP.Response.Body.Bytes = b
	}
	if more, err := p.space(fReferer); err != nil {
		return false
	} else if more {
		ref, refEsc, err := p.quoted(fReferer)
		if err != nil {
			return false
		}
		if _, err := p.space(fUserAgent); err != nil {
			return false
		}
		ua, uaEsc, err := p.quoted(fUserAgent)
		if err != nil {
			return false
		}
		if ref != "-" {
			ev.HTTP.Request.Referrer = p.decode(ref, refEsc)
		}
		if ua != "-" {
			ev.UserAgent.Original = p.decode(ua, uaEsc)
		}
		if !traefikTail(p, tail) {
			return false
		}
	}
	p.request(req, reqEsc)
	// nginx's outcome, which commonSlow keeps: status 0 is a success.
	if ev.HTTP.Response.StatusCode < 400 {
		ev.Event.Outcome = "success"
	} else {
		ev.Event.Outcome = "failure"
	}
	ev.Source.Address = addr
	if pxMaybeIP(addr) {
		if _, err := netip.ParseAddr(addr); err == nil {
			ev.Source.IP = addr
		}
	}
	if user != "" {
		ev.User.Name = user
	}
	return true
}

// traefikTail reads the fields after the user agent the way parser.extras
// does, keeping fields 10 to 13 (later ones are dropped, as commonSlow
// does). A key=value field makes it report false.
func traefikTail(p *parser, tail *[4]string) bool {
	for field := fUserAgent + 1; p.i < len(p.s); field++ {
		for p.i < len(p.s) && p.s[p.i] == ' ' {
			p.i++
		}
		if p.i == len(p.s) {
			break
		}
		var val string
		if p.s[p.i] == '"' {
			raw, esc, err := p.quoted(fUserAgent)
			if err != nil {
				return false
			}
			val = p.decode(raw, esc)
		} else {
			end := strings.IndexByte(p.s[p.i:], ' ')
			if end < 0 {
				end = len(p.s) - p.i
			}
			val = p.s[p.i : p.i+end]
			if eq := strings.IndexByte(val, '='); eq > 0 && isWord(val[:eq]) {
				return false
			}
			p.i += end
		}
		if val == "-" {
			val = ""
		}
		if k := field - fUserAgent - 1; k < len(tail) {
			tail[k] = val
		}
	}
	return true
}

// commonSlow parses the CLF line with the nginx combined parser, whose
// trailing-field handling yields Traefik's extras as field_10..field_13.
func (t *Traefik) commonSlow(dst []schema.Event, rec *ingest.Record, data []byte) ([]schema.Event, error) {
	r := *rec
	r.Data = data
	out, err := t.clf.Normalize(dst, &r)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "nginx: ")
		msg = strings.Replace(msg, "combined format", "Traefik's common log format", 1)
		return dst, fmt.Errorf("traefik: %s", msg)
	}
	ev := &out[len(out)-1]
	// Traefik's fields arrive as the nginx parser's field_10..field_13;
	// they are renamed in the same map, which saves an allocation.
	x := ev.Trailwatch.Extra
	ev.Event.Category, ev.Event.Type, ev.Related = nil, nil, schema.Related{}
	invalid := false
	if k := len(ev.Tags); k > 0 && ev.Tags[k-1] == TagInvalidUTF8 {
		ev.Tags, invalid = nil, true
	}
	if x != nil {
		count, router, backend, dur := x["field_10"], x["field_11"], x["field_12"], x["field_13"]
		clear(x)
		if count != "" {
			x["traefik.access.request_count"] = count
		}
		if router != "" {
			x["traefik.access.router.name"] = router
		}
		if backend != "" {
			x["traefik.access.backend_url"] = backend
			if _, hp, ok := strings.Cut(backend, "://"); ok {
				hp, _, _ = strings.Cut(hp, "/")
				gwSetEndpoint(&ev.Destination, hp)
			}
		}
		if d, ok := strings.CutSuffix(dur, "ms"); ok {
			if ms, err := strconv.ParseInt(d, 10, 64); err == nil && ms >= 0 && ms < 1<<40 {
				ev.Event.Duration = ms * int64(time.Millisecond)
			}
		}
		if len(x) == 0 {
			ev.Trailwatch.Extra = nil
		}
	}
	ApplyCredential(ev, ev.URL.Query)
	gwFinish(ev, rec, "traefik", "traefik.access", "traefik", invalid)
	return out, nil
}

// traefikFields holds the JSON fields Traefik's mapping uses.
type traefikFields struct {
	start, clientHost, clientPort, clientAddr, user          string
	method, path, proto, host, port, scheme                  string
	router, service, serviceAddr, serviceURLHost, entryPoint string
	tlsVersion, tlsCipher, ua, referer, xff, reqID           string
	auth, apiKey, cookie, retries, originStatus              string
	status, reqSize, respSize, duration                      float64
}

func (t *Traefik) json(dst []schema.Event, rec *ingest.Record, data []byte) ([]schema.Event, error) {
	data, invalid, err := gwJSONRecord("traefik", data)
	if err != nil {
		return dst, err
	}
	var f traefikFields
	seen := false
	err = gwWalk("traefik", data, func(path []byte, v gwVal) error {
		var s *string
		var num *float64
		switch string(path) {
		case "StartUTC":
			s = &f.start
		case "ClientHost":
			s = &f.clientHost
		case "ClientPort":
			s = &f.clientPort
		case "ClientAddr":
			s = &f.clientAddr
		case "ClientUsername":
			s = &f.user
		case "RequestMethod":
			s = &f.method
		case "RequestPath":
			s = &f.path
		case "RequestProtocol":
			s = &f.proto
		case "RequestHost":
			s = &f.host
		case "RequestPort":
			s = &f.port
		case "RequestScheme":
			s = &f.scheme
		case "RouterName":
			s = &f.router
		case "ServiceName":
			s = &f.service
		case "ServiceAddr":
			s = &f.serviceAddr
		case "ServiceURL.Host":
			s = &f.serviceURLHost
		case "entryPointName":
			s = &f.entryPoint
		case "TLSVersion":
			s = &f.tlsVersion
		case "TLSCipher":
			s = &f.tlsCipher
		case "RetryAttempts":
			s = &f.retries
		case "OriginStatus":
			s = &f.originStatus
		case "DownstreamStatus":
			num = &f.status
		case "RequestContentSize":
			num = &f.reqSize
		case "DownstreamContentSize":
			num = &f.respSize
		case "Duration":
			num = &f.duration
		default:
			if h, ok := bytes.CutPrefix(path, []byte("request_")); ok {
				switch strings.ToLower(string(h)) {
				case "user-agent":
					s = &f.ua
				case "referer":
					s = &f.referer
				case "x-forwarded-for":
					s = &f.xff
				case "x-request-id":
					s = &f.reqID
				case "authorization":
					s = &f.auth
				case "x-api-key", "apikey":
					s = &f.apiKey
				case "cookie":
					s = &f.cookie
				}
			}
			if s == nil {
				return nil
			}
		}
		seen = true
		if num != nil {
			n, ok := v.num()
			if !ok {
				return fmt.Errorf("traefik: JSON field %s: want a number, got %.20q", path, v.raw)
			}
			*num = n
			return nil
		}
		*s = v.str()
		return nil
	})
	if err != nil {
		return dst, err
	}
	if !seen {
		return dst, fmt.Errorf("traefik: JSON record has none of Traefik's access log fields (StartUTC, RequestMethod, DownstreamStatus, ...)")
	}
	if f.status < 0 || f.status > 999 || f.duration < 0 || f.duration > 1e18 || f.reqSize < 0 || f.respSize < 0 || f.reqSize > 1e18 || f.respSize > 1e18 {
		return dst, fmt.Errorf("traefik: DownstreamStatus, Duration or a content size out of range")
	}
	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	if f.start != "" {
		ts, err := time.Parse(time.RFC3339Nano, f.start)
		if err != nil {
			*ev = schema.Event{}
			return dst[:len(dst)-1], fmt.Errorf("traefik: StartUTC: invalid time %.40q", f.start)
		}
		ev.Timestamp = ts.UTC()
	}
	if f.clientHost != "" {
		pxSetEndpoint(&ev.Source, f.clientHost)
		if p, err := strconv.Atoi(f.clientPort); err == nil && p > 0 && p < 65536 {
			ev.Source.Port = p
		}
	} else {
		pxSetEndpoint(&ev.Source, f.clientAddr)
	}
	ev.User.Name = gwDash(f.user)
	ev.HTTP.Request.Method = f.method
	gwSetTarget(ev, f.path)
	gwSetProto(ev, f.proto)
	ev.URL.Domain = f.host
	if p, err := strconv.Atoi(f.port); err == nil && p > 0 && p < 65536 {
		ev.URL.Port = p
	}
	ev.URL.Scheme = f.scheme
	ev.HTTP.Response.StatusCode = int(f.status)
	ev.HTTP.Request.Body.Bytes = int64(f.reqSize)
	ev.HTTP.Response.Body.Bytes = int64(f.respSize)
	ev.Event.Duration = int64(f.duration)
	ev.Service.Name = f.service
	if f.serviceAddr != "" {
		pxSetEndpoint(&ev.Destination, f.serviceAddr)
	} else {
		pxSetEndpoint(&ev.Destination, f.serviceURLHost)
	}
	ev.TLS.Version, ev.TLS.Cipher = f.tlsVersion, f.tlsCipher
	if f.tlsVersion != "" {
		ev.TLS.VersionProtocol = "tls"
	}
	ev.UserAgent.Original = gwDash(f.ua)
	ev.HTTP.Request.Referrer = gwDash(f.referer)
	gwSetXFF(ev, f.xff)
	ev.HTTP.Request.ID = f.reqID
	gwExtra(ev, "traefik.access.router.name", f.router)
	gwExtra(ev, "traefik.access.entry_point", f.entryPoint)
	if f.retries != "0" {
		gwExtra(ev, "traefik.access.retry_attempts", f.retries)
	}
	gwExtra(ev, "traefik.access.origin_status", f.originStatus)
	ApplyCredential(ev, f.auth, f.apiKey, f.cookie, ev.URL.Query)
	pxFinish(ev, rec, "traefik", "traefik.access", "traefik", "web", "access", invalid)
	return dst, nil
}
