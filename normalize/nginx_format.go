package normalize

import (
	"fmt"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// NginxFormat parses nginx access logs written with a custom log_format,
// given as the directive's own string:
//
//	$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time
//
// The format is compiled once into a scanner: the text between variables
// must appear as written, and a variable's value ends where the following
// text starts. Values are decoded from nginx's escaping (\xHH by default;
// \" \\ \uXXXX under escape=json), "-" means absent. Well-known variables
// map to ECS the way Elastic's nginx integration does (see nginxVarField
// and docs/sources.md); any other variable goes to trailwatch.extra under
// its name without the "$" (upstream_addr, upstream_status, …). Credential
// headers ($http_authorization, $http_x_api_key, $http_cookie, $cookie_*)
// only set trailwatch.credential from the fingerprint token the collector
// wrote. The format must contain a time variable ($time_local,
// $time_iso8601 or $msec) and text between any two variables.
//
// NginxFormat is stateless after construction and safe for concurrent use.
type NginxFormat struct {
	f *logFormat
}

// NewNginxFormat compiles an nginx log_format string. A leading
// "escape=json" / "escape=default" / "escape=none" parameter is accepted
// and ignored (every escaping is decoded). Backslash escapes of nginx's
// configuration syntax (\" \' \\ \t \n) are undone in the literal text.
func NewNginxFormat(format string) (*NginxFormat, error) {
	f, err := compileNginxFormat(format)
	if err != nil {
		return nil, err
	}
	return &NginxFormat{f: f}, nil
}

var nginxMeta = lfMeta{source: "nginx", dataset: "nginx.access", module: "nginx"}

// Normalize appends the one event parsed from rec.Data to dst. On error
// dst is returned unchanged and the error names the field and byte.
func (n *NginxFormat) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	return lfNormalize(dst, rec, &nginxMeta, n.f)
}

// compileNginxFormat splits a log_format string into literals and
// variables.
func compileNginxFormat(format string) (*logFormat, error) {
	s := strings.TrimSpace(format)
	for _, p := range []string{"escape=json", "escape=default", "escape=none"} {
		if rest, ok := strings.CutPrefix(s, p); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			s = strings.TrimLeft(rest, " \t")
		}
	}
	var lits []string
	var fields []lfField
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			n := s[i+1]
			switch n {
			case 't':
				lit.WriteByte('\t')
			case 'n':
				lit.WriteByte('\n')
			case 'r':
				lit.WriteByte('\r')
			default:
				lit.WriteByte(n)
			}
			i += 2
		case c == '$':
			name, adv := nginxVarName(s[i+1:])
			if name == "" {
				return nil, fmt.Errorf("log_format: byte %d: '$' not followed by a variable name", i)
			}
			lits = append(lits, lit.String())
			lit.Reset()
			f := nginxVarField(name)
			f.name = "$" + name
			fields = append(fields, f)
			i += 1 + adv
		default:
			lit.WriteByte(c)
			i++
		}
	}
	lits = append(lits, lit.String())
	f, err := newLogFormat("nginx", lits, fields)
	if err != nil {
		return nil, fmt.Errorf("log_format: %w", err)
	}
	return f, nil
}

// nginxVarName reads "name" or "{name}" at the start of s and returns the
// name and the bytes consumed.
func nginxVarName(s string) (string, int) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 2 || !isWord(s[1:end]) {
			return "", 0
		}
		return s[1:end], end + 1
	}
	n := 0
	for n < len(s) && isWord(s[n:n+1]) {
		n++
	}
	return s[:n], n
}

// nginxKnownVars lists the variables nginxVarField maps to ECS.
var nginxKnownVars = []string{
	"remote_addr", "remote_port", "remote_user", "time_local", "time_iso8601", "msec",
	"request", "request_method", "request_uri", "uri", "document_uri", "args", "query_string",
	"server_protocol", "status", "body_bytes_sent", "bytes_sent", "request_length", "request_time",
	"http_referer", "http_user_agent", "http_x_forwarded_for", "http_x_request_id", "request_id",
	"host", "http_host", "server_name", "server_addr", "server_port", "scheme",
	"ssl_protocol", "ssl_cipher", "ssl_server_name", "content_type", "http_content_type",
	"sent_http_content_type", "http_authorization", "http_proxy_authorization", "http_x_api_key",
	"http_api_key", "http_x_auth_token", "http_cookie",
}

// nginxVarField maps an nginx variable name to its field. Names not listed
// land in trailwatch.extra under the name.
func nginxVarField(name string) lfField {
	f := lfField{name: name, key: name}
	switch name {
	case "remote_addr":
		f.kind = lfRemoteAddr
	case "remote_port":
		f.kind = lfRemotePort
	case "remote_user":
		f.kind = lfRemoteUser
	case "time_local":
		f.kind = lfTimeLocal
	case "time_iso8601":
		f.kind = lfTimeISO
	case "msec":
		f.kind, f.scale = lfTimeEpoch, int64(time.Second)
	case "request":
		f.kind = lfRequest
	case "request_method":
		f.kind = lfMethod
	case "request_uri":
		f.kind = lfRequestURI
	case "uri", "document_uri":
		f.kind = lfURI
	case "args", "query_string":
		f.kind = lfArgs
	case "server_protocol":
		f.kind = lfProtocol
	case "status":
		f.kind = lfStatus
	case "body_bytes_sent":
		f.kind = lfBodyBytes
	case "bytes_sent":
		f.kind = lfBytesSent
	case "request_length":
		f.kind = lfRequestLength
	case "request_time":
		f.kind, f.scale = lfDuration, int64(time.Second)
	case "http_referer":
		f.kind = lfReferer
	case "http_user_agent":
		f.kind = lfUserAgent
	case "http_x_forwarded_for":
		f.kind = lfForwardedFor
	case "http_x_request_id", "request_id":
		f.kind = lfRequestID
	case "host", "http_host":
		f.kind = lfHost
	case "server_name":
		f.kind = lfServerName
	case "server_addr":
		f.kind = lfServerAddr
	case "server_port":
		f.kind = lfServerPort
	case "scheme":
		f.kind = lfScheme
	case "ssl_protocol":
		f.kind = lfTLSProtocol
	case "ssl_cipher":
		f.kind = lfTLSCipher
	case "ssl_server_name":
		f.kind = lfTLSServerName
	case "content_type", "http_content_type":
		f.kind = lfReqMime
	case "sent_http_content_type":
		f.kind = lfRespMime
	case "http_authorization", "http_proxy_authorization", "http_x_api_key", "http_api_key",
		"http_x_auth_token", "http_cookie":
		f.kind = lfCredential
	default:
		if strings.HasPrefix(name, "cookie_") {
			f.kind = lfCredential
		}
	}
	return f
}
