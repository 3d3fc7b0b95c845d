package normalize

import (
	"fmt"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Envoy parses Envoy access logs (as Envoy and Istio write them) in two
// shapes, chosen per line unless the spec fixes one: a line starting with
// '{' is a JSON access log, anything else the text format.
//
// The text format is Envoy's default format string
//
//	[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
//
// or Istio's extension of it, which adds %RESPONSE_CODE_DETAILS%
// %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%"
// after the flags and %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%
// %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS%
// %REQUESTED_SERVER_NAME% %ROUTE_NAME% at the end; the two are told apart by
// the quoted fifth field. Further trailing fields are ignored.
//
// JSON logs use the keys of Istio's JSON encoding, which are the operator
// names in lower case: start_time, method, path, protocol, response_code,
// response_flags, bytes_received, bytes_sent, duration,
// upstream_service_time, x_forwarded_for, user_agent, request_id,
// authority, upstream_host, upstream_cluster, upstream_local_address,
// downstream_local_address, downstream_remote_address,
// requested_server_name, route_name, response_code_details,
// connection_termination_details, upstream_transport_failure_reason (and,
// where an operator adds them, authorization and x_api_key, read only for
// a credential fingerprint token).
//
// The mapping follows Elastic's envoyproxy integration: event.dataset
// envoyproxy.log; source.* is %DOWNSTREAM_REMOTE_ADDRESS% (else the first
// X-Forwarded-For address, which also sets client.*); destination.* is the
// upstream host; BYTES_RECEIVED / BYTES_SENT are http.request.body.bytes /
// http.response.body.bytes; DURATION (ms) is event.duration (ns); the
// request id is http.request.id; the authority is url.domain; the SNI is
// tls.client.server_name. trailwatch.extra keys: envoyproxy.response_flags,
// envoyproxy.upstream_service_time, envoyproxy.authority,
// envoyproxy.upstream_cluster, envoyproxy.upstream_local_address,
// envoyproxy.downstream_local_address, envoyproxy.route_name,
// envoyproxy.response_code_details,
// envoyproxy.connection_termination_details,
// envoyproxy.upstream_transport_failure_reason. A response code of 0 (no
// response was sent) has outcome failure when response flags say why, else
// unknown. Envoy is safe for concurrent use.
type Envoy struct {
	format string // "", "text" or "json"
}

// NewEnvoy returns the Envoy normalizer, detecting text or JSON per line.
func NewEnvoy() *Envoy { return &Envoy{} }

// NewEnvoySpec builds the Envoy normalizer: Format "" (detect per line),
// "text" or "json".
func NewEnvoySpec(s Spec) (Normalizer, error) {
	switch s.Format {
	case "", "text", "json":
	default:
		return nil, fmt.Errorf(`format %q: want "", "text" or "json"`, s.Format)
	}
	if err := gwNoOptions(s); err != nil {
		return nil, err
	}
	return &Envoy{format: s.Format}, nil
}

// Normalize appends the one event parsed from rec.Data to dst. On error dst
// is returned unchanged.
func (e *Envoy) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	data := rec.Data
	for k := len(data); k > 0 && (data[k-1] == '\r' || data[k-1] == '\n'); k = len(data) {
		data = data[:k-1]
	}
	isJSON := e.format == "json" || e.format == "" && len(data) > 0 && data[0] == '{'
	dst = append(dst, schema.Event{})
	ev := &dst[len(dst)-1]
	var invalid bool
	var err error
	if isJSON {
		invalid, err = envoyJSON(ev, data)
	} else {
		invalid, err = envoyText(ev, data)
	}
	if err != nil {
		*ev = schema.Event{}
		return dst[:len(dst)-1], err
	}
	gwFinish(ev, rec, "envoy", "envoyproxy.log", "envoyproxy", invalid)
	return dst, nil
}

// envoyFields is one access log entry, from either shape.
// envoyFields holds the operators' values; "-" means absent.
type envoyFields struct {
	StartTime        string
	Method           string
	Path             string
	Protocol         string
	ResponseCode     float64
	ResponseFlags    string
	BytesReceived    float64
	BytesSent        float64
	Duration         float64
	UpstreamSvcTime  string
	XFF              string
	UserAgent        string
	RequestID        string
	Authority        string
	UpstreamHost     string
	UpstreamCluster  string
	UpstreamLocal    string
	DownstreamLocal  string
	DownstreamRemote string
	SNI              string
	RouteName        string
	CodeDetails      string
	TermDetails      string
	TransportFailure string
	Authorization    string
	XAPIKey          string
}

func envoyJSON(ev *schema.Event, data []byte) (invalid bool, err error) {
	data, invalid, err = gwJSONRecord("envoy", data)
	if err != nil {
		return false, err
	}
	var f envoyFields
	seen := false
	err = gwWalk("envoy", data, func(path []byte, v gwVal) error {
		var num *float64
		var str *string
		switch string(path) {
		case "start_time":
			str = &f.StartTime
		case "method":
			str = &f.Method
		case "path":
			str = &f.Path
		case "protocol":
			str = &f.Protocol
		case "response_code":
			num = &f.ResponseCode
		case "response_flags":
			str = &f.ResponseFlags
		case "bytes_received":
			num = &f.BytesReceived
		case "bytes_sent":
			num = &f.BytesSent
		case "duration":
			num = &f.Duration
		case "upstream_service_time":
			str = &f.UpstreamSvcTime
		case "x_forwarded_for":
			str = &f.XFF
		case "user_agent":
			str = &f.UserAgent
		case "request_id":
			str = &f.RequestID
		case "authority":
			str = &f.Authority
		case "upstream_host":
			str = &f.UpstreamHost
		case "upstream_cluster":
			str = &f.UpstreamCluster
		case "upstream_local_address":
			str = &f.UpstreamLocal
		case "downstream_local_address":
			str = &f.DownstreamLocal
		case "downstream_remote_address":
			str = &f.DownstreamRemote
		case "requested_server_name":
			str = &f.SNI
		case "route_name":
			str = &f.RouteName
		case "response_code_details":
			str = &f.CodeDetails
		case "connection_termination_details":
			str = &f.TermDetails
		case "upstream_transport_failure_reason":
			str = &f.TransportFailure
		case "authorization":
			str = &f.Authorization
		case "x_api_key":
			str = &f.XAPIKey
		default:
			return nil
		}
		seen = true
		if num != nil {
			n, ok := v.num()
			if !ok {
				return fmt.Errorf("envoy: JSON field %s: want a number, got %.20q", path, v.raw)
			}
			*num = n
			return nil
		}
		if v.kind == '{' || v.kind == '[' {
			return fmt.Errorf("envoy: JSON field %s: want a string", path)
		}
		*str = v.str()
		return nil
	})
	if err != nil {
		return false, err
	}
	if !seen {
		return false, fmt.Errorf("envoy: JSON record has none of Envoy's access log fields (start_time, method, response_code, ...)")
	}
	return invalid, envoyMap(ev, &f)
}

// envoyMap maps the fields of either shape.
func envoyMap(ev *schema.Event, f *envoyFields) error {
	if st := gwDash(f.StartTime); st != "" {
		t, err := time.Parse(time.RFC3339Nano, st)
		if err != nil {
			return fmt.Errorf("envoy: start_time: invalid time %.40q", st)
		}
		ev.Timestamp = t.UTC()
	}
	if f.ResponseCode < 0 || f.ResponseCode > 999 {
		return fmt.Errorf("envoy: response_code: %v out of range", float64(f.ResponseCode))
	}
	if f.BytesReceived < 0 || f.BytesSent < 0 || f.Duration < 0 || f.Duration > 1e12 || f.BytesReceived > 1e18 || f.BytesSent > 1e18 {
		return fmt.Errorf("envoy: bytes_received, bytes_sent or duration out of range")
	}
	ev.HTTP.Request.Method = gwDash(f.Method)
	gwSetTarget(ev, gwDash(f.Path))
	gwSetProto(ev, f.Protocol)
	ev.HTTP.Response.StatusCode = int(f.ResponseCode)
	ev.HTTP.Request.Body.Bytes = int64(f.BytesReceived)
	ev.HTTP.Response.Body.Bytes = int64(f.BytesSent)
	ev.Event.Duration = int64(float64(f.Duration) * float64(time.Millisecond))
	ev.UserAgent.Original = gwDash(f.UserAgent)
	ev.HTTP.Request.ID = gwDash(f.RequestID)
	if a := gwDash(f.Authority); a != "" {
		host := a
		if c := strings.LastIndexByte(a, ':'); c > strings.LastIndexByte(a, ']') {
			host = a[:c]
		}
		ev.URL.Domain = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		gwExtra(ev, "envoyproxy.authority", a)
	}
	gwSetEndpoint(&ev.Source, f.DownstreamRemote)
	gwSetXFF(ev, f.XFF)
	gwSetEndpoint(&ev.Destination, f.UpstreamHost)
	ev.TLS.Client.ServerName = gwDash(f.SNI)
	flags := gwDash(f.ResponseFlags)
	gwExtra(ev, "envoyproxy.response_flags", flags)
	gwExtra(ev, "envoyproxy.upstream_service_time", f.UpstreamSvcTime)
	gwExtra(ev, "envoyproxy.upstream_cluster", f.UpstreamCluster)
	gwExtra(ev, "envoyproxy.upstream_local_address", f.UpstreamLocal)
	gwExtra(ev, "envoyproxy.downstream_local_address", f.DownstreamLocal)
	gwExtra(ev, "envoyproxy.route_name", f.RouteName)
	gwExtra(ev, "envoyproxy.response_code_details", f.CodeDetails)
	gwExtra(ev, "envoyproxy.connection_termination_details", f.TermDetails)
	gwExtra(ev, "envoyproxy.upstream_transport_failure_reason", f.TransportFailure)
	if ev.HTTP.Response.StatusCode == 0 && flags != "" {
		ev.Event.Outcome = "failure"
	}
	ApplyCredential(ev, gwDash(f.Authorization), gwDash(f.XAPIKey), ev.URL.Query)
	return nil
}

// envoyTok is one field of a text line after the request.
type envoyTok struct {
	v      string
	quoted bool
}

func envoyText(ev *schema.Event, data []byte) (invalid bool, err error) {
	if len(data) > MaxLineBytes {
		return false, fmt.Errorf("envoy: line is %d bytes, over the %d-byte limit", len(data), MaxLineBytes)
	}
	line, invalid := gwValid(string(data))
	if !strings.HasPrefix(line, "[") {
		return false, fmt.Errorf("envoy: byte 0: start_time: expected '['")
	}
	end := strings.IndexByte(line, ']')
	if end < 0 {
		return false, fmt.Errorf("envoy: byte 0: start_time: missing ']'")
	}
	var f envoyFields
	f.StartTime = line[1:end]
	i := end + 1
	if !strings.HasPrefix(line[i:], ` "`) {
		return false, fmt.Errorf("envoy: byte %d: request: expected ' \"'", i)
	}
	i += 2
	q := strings.IndexByte(line[i:], '"')
	if q < 0 {
		return false, fmt.Errorf("envoy: byte %d: request: unterminated quoted field", i-1)
	}
	req := line[i : i+q]
	i += q + 1
	// "METHOD PATH PROTOCOL"; each part may be "-".
	if m, rest, ok := strings.Cut(req, " "); ok {
		f.Method = m
		if sp := strings.LastIndexByte(rest, ' '); sp >= 0 {
			f.Path, f.Protocol = rest[:sp], rest[sp+1:]
		} else {
			f.Path = rest
		}
	} else if req != "-" {
		return false, fmt.Errorf("envoy: byte %d: request: want \"METHOD PATH PROTOCOL\", got %.40q", i-q-1, req)
	}

	var toks [24]envoyTok
	n := 0
	for i < len(line) && n < len(toks) {
		if line[i] != ' ' {
			return false, fmt.Errorf("envoy: byte %d: field %d: expected ' '", i, n+1)
		}
		i++
		if i < len(line) && line[i] == '"' {
			k := strings.IndexByte(line[i+1:], '"')
			if k < 0 {
				return false, fmt.Errorf("envoy: byte %d: field %d: unterminated quoted field", i, n+1)
			}
			toks[n] = envoyTok{v: line[i+1 : i+1+k], quoted: true}
			i += k + 2
		} else {
			k := strings.IndexByte(line[i:], ' ')
			if k < 0 {
				k = len(line) - i
			}
			toks[n] = envoyTok{v: line[i : i+k]}
			i += k
		}
		n++
	}
	tk := toks[:n]
	// want reports whether tk has the given shape (q = quoted, b = bare).
	want := func(shape string) bool {
		if len(tk) < len(shape) {
			return false
		}
		for j := range len(shape) {
			if tk[j].quoted != (shape[j] == 'q') {
				return false
			}
		}
		return true
	}
	var rest []envoyTok
	switch {
	case want("bbbbqbbbbqqqqq"): // Istio
		f.CodeDetails, f.TermDetails, f.TransportFailure = tk[2].v, tk[3].v, tk[4].v
		rest = append(tk[:2:2], tk[5:]...)
	case want("bbbbbbqqqqq"): // Envoy's default
		rest = tk
	default:
		return false, fmt.Errorf("envoy: %d fields after the request do not match Envoy's default or Istio's format", len(tk))
	}
	f.ResponseFlags = rest[1].v
	f.UpstreamSvcTime = rest[5].v
	f.XFF, f.UserAgent, f.RequestID, f.Authority, f.UpstreamHost = rest[6].v, rest[7].v, rest[8].v, rest[9].v, rest[10].v
	if len(rest) >= 17 && !rest[11].quoted {
		f.UpstreamCluster, f.UpstreamLocal, f.DownstreamLocal, f.DownstreamRemote, f.SNI, f.RouteName =
			rest[11].v, rest[12].v, rest[13].v, rest[14].v, rest[15].v, rest[16].v
	}
	for j, dst := range []*float64{&f.ResponseCode, nil, &f.BytesReceived, &f.BytesSent, &f.Duration} {
		if dst == nil {
			continue
		}
		v := rest[j].v
		if v == "-" {
			continue
		}
		num, ok := digits(v)
		if !ok || len(v) > 15 {
			return false, fmt.Errorf("envoy: field %d: invalid number %.20q", j+1, v)
		}
		*dst = float64(num)
	}
	return invalid, envoyMap(ev, &f)
}
