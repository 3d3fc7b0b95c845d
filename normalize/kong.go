package normalize

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Kong parses the JSON that Kong Gateway's logging plugins (file-log,
// http-log, tcp-log, udp-log, syslog's JSON) write per request, one object
// per record. An http-log batch (a JSON array) must be split into objects
// by the collector.
//
// Mapping (event.dataset kong.access; Elastic ships no Kong integration):
// started_at (Unix ms) → @timestamp; client_ip → source.*; request.method,
// request.uri → url.original/path/query, request.url → url.full and
// scheme/domain/port; request.size / response.size →
// http.request.bytes / http.response.bytes; response.status; request.id
// (else the X-Request-Id or Kong-Request-Id header) → http.request.id;
// request.tls.version / cipher → tls.*; latencies.request (ms) →
// event.duration; service.name / id → service.*; the last of tries (ip,
// port) → destination.*, else service.host → destination.domain;
// consumer.username / id → user.name / user.id; authenticated_entity.id
// (the credential entity) → trailwatch.credential.id; headers user-agent,
// referer, x-forwarded-for → user_agent.original, http.request.referrer,
// client.*; authorization, proxy-authorization, apikey, x-api-key and
// cookie headers, and the query string, are read for the credential
// fingerprint token the collector wrote in place of the secret.
// trailwatch.extra keys: kong.route.name, kong.route.id, kong.route.paths
// (comma-joined), kong.service.host, kong.upstream_uri,
// kong.upstream_status, kong.latencies.kong, kong.latencies.proxy,
// kong.tries (count), kong.consumer.custom_id, kong.workspace,
// kong.source (who answered: kong or upstream). Kong is safe for
// concurrent use.
type Kong struct{}

// NewKong returns the Kong log plugin normalizer.
func NewKong() *Kong { return &Kong{} }

// NewKongSpec builds the Kong normalizer; Format must be "" or "json".
func NewKongSpec(s Spec) (Normalizer, error) {
	if s.Format != "" && s.Format != "json" {
		return nil, fmt.Errorf(`format %q: want "" or "json"`, s.Format)
	}
	if err := gwNoOptions(s); err != nil {
		return nil, err
	}
	return NewKong(), nil
}

// kongFields holds the JSON fields Kong's mapping uses.
type kongFields struct {
	method, uri, url, reqID, hdrReqID, tlsVersion, tlsCipher        string
	ua, referer, xff, auth, apiKey, cookie, clientIP, upstreamURI   string
	upstreamStatus, serviceName, serviceID, serviceHost, routeName  string
	routeID, routePaths, user, userID, customID, entityID, tryIP    string
	tryPort, workspace, source                                      string
	startedAt, status, reqSize, respSize, latReq, latKong, latProxy float64
	tries                                                           int
	seen                                                            bool
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged.
func (k *Kong) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := bytes.TrimRight(rec.Data, "\r\n")
	data, invalid, err := gwJSONRecord("kong", data)
	if err != nil {
		return dst, err
	}
	var f kongFields
	err = gwWalk("kong", data, func(path []byte, v gwVal) error {
		var s *string
		var num *float64
		switch string(path) {
		case "started_at":
			num = &f.startedAt
		case "client_ip":
			s = &f.clientIP
		case "request.method":
			s = &f.method
		case "request.uri":
			s = &f.uri
		case "request.url":
			s = &f.url
		case "request.id":
			s = &f.reqID
		case "request.size":
			num = &f.reqSize
		case "request.tls.version":
			s = &f.tlsVersion
		case "request.tls.cipher":
			s = &f.tlsCipher
		case "response.status":
			num = &f.status
		case "response.size":
			num = &f.respSize
		case "latencies.request":
			num = &f.latReq
		case "latencies.kong":
			num = &f.latKong
		case "latencies.proxy":
			num = &f.latProxy
		case "upstream_uri":
			s = &f.upstreamURI
		case "upstream_status":
			s = &f.upstreamStatus
		case "service.name":
			s = &f.serviceName
		case "service.id":
			s = &f.serviceID
		case "service.host":
			s = &f.serviceHost
		case "route.name":
			s = &f.routeName
		case "route.id":
			s = &f.routeID
		case "route.paths":
			caddyHeader(&f.routePaths, v.str())
			return nil
		case "consumer.username":
			s = &f.user
		case "consumer.id":
			s = &f.userID
		case "consumer.custom_id":
			s = &f.customID
		case "authenticated_entity.id":
			s = &f.entityID
		case "tries.ip":
			f.tries++
			s = &f.tryIP
		case "tries.port":
			s = &f.tryPort
		case "workspace_name":
			s = &f.workspace
		case "source":
			s = &f.source
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
				case "x-request-id", "kong-request-id":
					hs = &f.hdrReqID
				case "authorization", "proxy-authorization":
					hs = &f.auth
				case "apikey", "x-api-key", "api-key":
					hs = &f.apiKey
				case "cookie":
					hs = &f.cookie
				default:
					return nil
				}
				caddyHeader(hs, v.str())
			}
			return nil
		}
		f.seen = true
		if num != nil {
			n, ok := v.num()
			if !ok {
				return fmt.Errorf("kong: JSON field %s: want a number, got %.20q", path, v.raw)
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
	switch {
	case !f.seen:
		return dst, fmt.Errorf("kong: JSON record has none of Kong's log fields (started_at, request, response, ...)")
	case f.startedAt <= 0 || f.startedAt > 1e14:
		return dst, fmt.Errorf("kong: JSON field started_at: missing or not Unix milliseconds (%v)", f.startedAt)
	case f.status < 0 || f.status > 999 || f.reqSize < 0 || f.respSize < 0 || f.reqSize > 1e18 || f.respSize > 1e18:
		return dst, fmt.Errorf("kong: response.status, request.size or response.size out of range")
	case f.latReq < 0 || f.latReq > 1e12:
		return dst, fmt.Errorf("kong: JSON field latencies.request: %v out of range", f.latReq)
	}

	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	ms := int64(f.startedAt)
	ev.Timestamp = time.UnixMilli(ms).UTC()
	gwSetEndpoint(&ev.Source, f.clientIP)
	gwSetXFF(ev, f.xff)
	ev.HTTP.Request.Method = f.method
	gwSetTarget(ev, f.uri)
	if f.url != "" {
		ev.URL.Full = f.url
		var u schema.URL
		splitTarget(&u, f.url)
		ev.URL.Scheme, ev.URL.Domain, ev.URL.Port = u.Scheme, u.Domain, u.Port
		if ev.URL.Original == "" {
			ev.URL.Path, ev.URL.Query = u.Path, u.Query
		}
	}
	ev.HTTP.Request.Bytes = int64(f.reqSize)
	ev.HTTP.Response.Bytes = int64(f.respSize)
	ev.HTTP.Response.StatusCode = int(f.status)
	ev.HTTP.Request.ID = f.reqID
	if ev.HTTP.Request.ID == "" {
		ev.HTTP.Request.ID = f.hdrReqID
	}
	if v, ok := strings.CutPrefix(f.tlsVersion, "TLSv"); ok {
		ev.TLS.Version, ev.TLS.VersionProtocol = v, "tls"
	}
	ev.TLS.Cipher = f.tlsCipher
	ev.Event.Duration = int64(math.Round(f.latReq * float64(time.Millisecond)))
	ev.Service.Name, ev.Service.ID = f.serviceName, f.serviceID
	if f.tryIP != "" {
		gwSetEndpoint(&ev.Destination, f.tryIP)
		if p, err := strconv.Atoi(f.tryPort); err == nil && p > 0 && p < 65536 {
			ev.Destination.Port = p
		}
	} else if f.serviceHost != "" {
		ev.Destination.Domain = f.serviceHost
	}
	ev.User.Name, ev.User.ID = f.user, f.userID
	ev.UserAgent.Original = f.ua
	ev.HTTP.Request.Referrer = f.referer
	ev.Trailwatch.Credential.ID = f.entityID
	ApplyCredential(ev, f.auth, f.apiKey, f.cookie, ev.URL.Query)

	gwExtra(ev, "kong.route.name", f.routeName)
	gwExtra(ev, "kong.route.id", f.routeID)
	gwExtra(ev, "kong.route.paths", f.routePaths)
	gwExtra(ev, "kong.service.host", f.serviceHost)
	gwExtra(ev, "kong.upstream_uri", f.upstreamURI)
	gwExtra(ev, "kong.upstream_status", f.upstreamStatus)
	if f.latKong != 0 || f.latProxy != 0 {
		gwExtra(ev, "kong.latencies.kong", strconv.FormatFloat(f.latKong, 'f', -1, 64))
		gwExtra(ev, "kong.latencies.proxy", strconv.FormatFloat(f.latProxy, 'f', -1, 64))
	}
	if f.tries > 0 {
		gwExtra(ev, "kong.tries", strconv.Itoa(f.tries))
	}
	gwExtra(ev, "kong.consumer.custom_id", f.customID)
	gwExtra(ev, "kong.workspace", f.workspace)
	gwExtra(ev, "kong.source", f.source)
	gwFinish(ev, rec, "kong", "kong.access", "kong", invalid)
	if ev.User.ID != "" && ev.User.Name == "" {
		// related.user takes the consumer id when no username is known.
		ev.Related.User = []string{ev.User.ID}
	}
	return dst, nil
}
