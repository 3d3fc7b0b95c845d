package normalize

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Caddy parses Caddy 2's JSON access log (`log { format json }`, logger
// http.log.access*), one object per line:
//
//	{"level":"info","ts":1732093200.123,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"192.0.2.1","remote_port":"41342","client_ip":"192.0.2.1","proto":"HTTP/2.0","method":"GET","host":"api.example.com","uri":"/v1?x=1","headers":{"User-Agent":["curl/8"]},"tls":{"version":772,"cipher_suite":4865,"server_name":"api.example.com"}},"bytes_read":0,"user_id":"","duration":0.0012,"size":512,"status":200,"resp_headers":{"Content-Type":["application/json"]}}
//
// Records of other loggers (Caddy's own messages in the same file) are
// rejected as not access logs. ts is Unix seconds (a float) or, with
// `time_format`, an RFC 3339 string; duration is seconds (a float, or a Go
// duration string with `duration_format string`).
//
// Mapping (event.dataset caddy.access; Elastic ships no Caddy
// integration, so the fields follow the nginx one): request.remote_ip /
// remote_port → source.*, client_ip (Caddy ≥ 2.7; else the first
// X-Forwarded-For address) → client.*, method/uri/proto/host → http.* and
// url.*, status / size / bytes_read → http.response.status_code /
// http.response.body.bytes / http.request.body.bytes, user_id → user.name,
// request.tls → tls.* (version and cipher names decoded), headers
// User-Agent, Referer, X-Request-Id → user_agent.original,
// http.request.referrer, http.request.id; Authorization,
// Proxy-Authorization, X-Api-Key, Apikey and Cookie (which Caddy logs as
// "REDACTED" unless log_credentials is on) and the query string are read
// for a credential fingerprint token; resp_headers Content-Type →
// http.response.mime_type. trailwatch.extra: caddy.logger, caddy.tls.proto
// (the ALPN protocol). Caddy is safe for concurrent use.
type Caddy struct{}

// NewCaddy returns the Caddy access log normalizer.
func NewCaddy() *Caddy { return &Caddy{} }

// NewCaddySpec builds the Caddy normalizer; Format must be "" or "json".
func NewCaddySpec(s Spec) (Normalizer, error) {
	if s.Format != "" && s.Format != "json" {
		return nil, fmt.Errorf(`format %q: want "" or "json"`, s.Format)
	}
	if err := gwNoOptions(s); err != nil {
		return nil, err
	}
	return NewCaddy(), nil
}

// caddyFields holds the JSON fields Caddy's mapping uses.
type caddyFields struct {
	ts, logger, remoteIP, remotePort, clientIP, proto, method, host, uri string
	ua, referer, xff, reqID, auth, apiKey, cookie, userID, ctype         string
	tlsSNI, tlsProto, duration                                           string
	tlsVersion, tlsCipher, status, size, bytesRead                       float64
	tsNum                                                                bool
}

// caddyHeader appends a header value, joining repeated values with ", ".
func caddyHeader(dst *string, v string) {
	if *dst == "" {
		*dst = v
	} else {
		*dst += ", " + v
	}
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged.
func (c *Caddy) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := bytes.TrimRight(rec.Data, "\r\n")
	data, invalid, err := gwJSONRecord("caddy", data)
	if err != nil {
		return dst, err
	}
	var f caddyFields
	err = gwWalk("caddy", data, func(path []byte, v gwVal) error {
		var s *string
		var num *float64
		switch string(path) {
		case "ts":
			s, f.tsNum = &f.ts, v.kind == '0'
		case "logger":
			s = &f.logger
		case "request.remote_ip", "request.remote_addr":
			s = &f.remoteIP
		case "request.remote_port":
			s = &f.remotePort
		case "request.client_ip":
			s = &f.clientIP
		case "request.proto":
			s = &f.proto
		case "request.method":
			s = &f.method
		case "request.host":
			s = &f.host
		case "request.uri":
			s = &f.uri
		case "request.tls.server_name":
			s = &f.tlsSNI
		case "request.tls.proto":
			s = &f.tlsProto
		case "request.tls.version":
			num = &f.tlsVersion
		case "request.tls.cipher_suite":
			num = &f.tlsCipher
		case "user_id":
			s = &f.userID
		case "duration":
			if v.kind == '"' {
				s = &f.duration
			} else {
				d, ok := v.num()
				if !ok || d < 0 || d > 1e9 {
					return fmt.Errorf("caddy: JSON field duration: want seconds, got %.20q", v.raw)
				}
				f.duration = strconv.FormatFloat(d, 'f', -1, 64)
				return nil
			}
		case "status":
			num = &f.status
		case "size":
			num = &f.size
		case "bytes_read":
			num = &f.bytesRead
		default:
			if h, ok := bytes.CutPrefix(path, []byte("request.headers.")); ok {
				var hs *string
				switch strings.ToLower(string(h)) {
				case "user-agent":
					hs = &f.ua
				case "referer":
					hs = &f.referer
				case "x-forwarded-for":
					hs = &f.xff
				case "x-request-id":
					hs = &f.reqID
				case "authorization", "proxy-authorization":
					hs = &f.auth
				case "x-api-key", "apikey", "api-key":
					hs = &f.apiKey
				case "cookie":
					hs = &f.cookie
				default:
					return nil
				}
				caddyHeader(hs, v.str())
				return nil
			}
			if h, ok := bytes.CutPrefix(path, []byte("resp_headers.")); ok && strings.EqualFold(string(h), "content-type") {
				f.ctype = v.str()
			}
			return nil
		}
		if num != nil {
			n, ok := v.num()
			if !ok {
				return fmt.Errorf("caddy: JSON field %s: want a number, got %.20q", path, v.raw)
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
	if !strings.HasPrefix(f.logger, "http.log.access") {
		return dst, fmt.Errorf("caddy: record of logger %.60q is not an access log (want http.log.access*)", f.logger)
	}
	if f.status < 0 || f.status > 999 || f.size < 0 || f.size > 1e18 || f.bytesRead < 0 || f.bytesRead > 1e18 {
		return dst, fmt.Errorf("caddy: status, size or bytes_read out of range")
	}
	ts, err := caddyTime(f.ts, f.tsNum)
	if err != nil {
		return dst, err
	}
	dur, err := caddyDuration(f.duration)
	if err != nil {
		return dst, err
	}

	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	ev.Timestamp = ts
	ev.Event.Duration = dur
	gwSetEndpoint(&ev.Source, f.remoteIP)
	if p, err := strconv.Atoi(f.remotePort); err == nil && p > 0 && p < 65536 {
		ev.Source.Port = p
	}
	if f.clientIP != "" {
		if f.clientIP != ev.Source.IP {
			gwSetEndpoint(&ev.Client, f.clientIP)
		}
	} else {
		gwSetXFF(ev, f.xff)
	}
	ev.HTTP.Request.Method = f.method
	gwSetTarget(ev, f.uri)
	gwSetProto(ev, f.proto)
	if f.host != "" {
		host := f.host
		if c := strings.LastIndexByte(host, ':'); c > strings.LastIndexByte(host, ']') {
			if p, err := strconv.Atoi(host[c+1:]); err == nil && p > 0 && p < 65536 {
				ev.URL.Port = p
			}
			host = host[:c]
		}
		ev.URL.Domain = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	ev.HTTP.Response.StatusCode = int(f.status)
	ev.HTTP.Response.Body.Bytes = int64(f.size)
	ev.HTTP.Request.Body.Bytes = int64(f.bytesRead)
	ev.User.Name = f.userID
	ev.UserAgent.Original = f.ua
	ev.HTTP.Request.Referrer = f.referer
	ev.HTTP.Request.ID = f.reqID
	if mt, _, _ := strings.Cut(f.ctype, ";"); mt != "" {
		ev.HTTP.Response.MimeType = strings.TrimSpace(mt)
	}
	if f.tlsVersion > 0 || f.tlsSNI != "" {
		ev.TLS.Client.ServerName = f.tlsSNI
		if v := caddyTLSVersion(f.tlsVersion); v != "" {
			ev.TLS.Version, ev.TLS.VersionProtocol = v, "tls"
		}
		if f.tlsCipher > 0 && f.tlsCipher < 65536 {
			ev.TLS.Cipher = tls.CipherSuiteName(uint16(f.tlsCipher))
		}
	}
	gwExtra(ev, "caddy.logger", f.logger)
	gwExtra(ev, "caddy.tls.proto", f.tlsProto)
	ApplyCredential(ev, f.auth, f.apiKey, f.cookie, ev.URL.Query)
	gwFinish(ev, rec, "caddy", "caddy.access", "caddy", invalid)
	return dst, nil
}

// caddyTime reads ts: Unix seconds, or a formatted time string.
func caddyTime(v string, isNum bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("caddy: JSON field ts: missing")
	}
	if isNum {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1e11 {
			return time.Time{}, fmt.Errorf("caddy: JSON field ts: invalid Unix time %.30q", v)
		}
		sec, frac := math.Modf(f)
		// Microsecond rounding: a float64 of today's Unix time holds no more.
		usec := math.Round(frac * 1e6)
		return time.Unix(int64(sec), int64(usec)*1000).UTC(), nil
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006/01/02 15:04:05.000", "02/Jan/2006:15:04:05 -0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("caddy: JSON field ts: invalid time %.40q", v)
}

// caddyDuration reads duration: seconds, or a Go duration string.
func caddyDuration(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e9 {
		return int64(math.Round(f * 1e9)), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return int64(d), nil
	}
	return 0, fmt.Errorf("caddy: JSON field duration: invalid duration %.30q", v)
}

// caddyTLSVersion names a TLS protocol version number the ECS way ("1.3").
func caddyTLSVersion(v float64) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return ""
}
