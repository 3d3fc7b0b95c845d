package normalize

import (
	"fmt"
	"strings"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// ApacheFormats are the LogFormat presets Apache httpd and Debian ship,
// selectable by name in Spec.Format.
var ApacheFormats = map[string]string{
	"common":         `%h %l %u %t "%r" %>s %b`,
	"combined":       `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`,
	"combinedio":     `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %I %O`,
	"vhost_combined": `%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`,
}

// Apache parses Apache httpd access logs (mod_log_config) in a preset
// format (common, combined, combinedio, vhost_combined) or any custom
// LogFormat string, compiled once into a scanner like NginxFormat's.
// Values are decoded from Apache's escaping (\xhh, \" \\ \n \t …); "-"
// means absent. The mapping follows Elastic's apache integration
// (apache.access): %h/%a source.*, %u user.name, %t or %{strftime}t
// @timestamp, %r the request line, %>s status, %b/%B body bytes, %O/%I
// http.response/request.bytes, %D/%T event.duration, %v/%V
// destination.domain, %p destination.port, %A destination.ip, %H
// http.version, %m method, %U url.path, %q url.query, %{Referer}i,
// %{User-Agent}i, %{X-Forwarded-For}i (client.ip), %{X-Request-Id}i,
// %{SSL_PROTOCOL}x and %{SSL_CIPHER}x tls.*. Credential headers
// (%{Authorization}i, %{X-API-Key}i, %{Cookie}i, %{name}C) only set
// trailwatch.credential. Everything else goes to trailwatch.extra under an
// nginx-style name (http_<header>, sent_http_<header>, env_<var>,
// note_<name>, keepalive_requests, log_id, filename, connection_status,
// handler, pid, connection_ip, ident, bytes_transferred).
// %{format}t without a zone (%z) is read as UTC.
//
// Apache is stateless after construction and safe for concurrent use.
type Apache struct {
	f *logFormat
}

var apacheMeta = lfMeta{source: "apache", dataset: "apache.access", module: "apache"}

// NewApache compiles an Apache LogFormat: a preset name from ApacheFormats
// or a format string containing '%' directives ("" is "combined").
func NewApache(format string) (*Apache, error) {
	if format == "" {
		format = "combined"
	}
	if p, ok := ApacheFormats[format]; ok {
		format = p
	} else if !strings.Contains(format, "%") {
		return nil, fmt.Errorf("format %q is neither a preset (%s) nor a LogFormat string", clip(format), strings.Join(lfSortedKeys(ApacheFormats), ", "))
	}
	f, err := compileApacheFormat(format)
	if err != nil {
		return nil, err
	}
	return &Apache{f: f}, nil
}

// NewApacheSpec builds the apache normalizer a Spec describes: Format is a
// preset name or a LogFormat string; Pattern and Fields are refused.
func NewApacheSpec(s Spec) (Normalizer, error) {
	if s.Pattern != "" || len(s.Fields) > 0 || s.TimeLayout != "" {
		return nil, fmt.Errorf("pattern, fields and time_layout are not options of apache: set format")
	}
	return NewApache(s.Format)
}

// Normalize appends the one event parsed from rec.Data to dst. On error
// dst is returned unchanged and the error names the field and byte.
func (a *Apache) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	return lfNormalize(dst, rec, &apacheMeta, a.f)
}

// compileApacheFormat splits a LogFormat string into literals and
// directives.
func compileApacheFormat(s string) (*logFormat, error) {
	var lits []string
	var fields []lfField
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			switch n := s[i+1]; n {
			case 't':
				lit.WriteByte('\t')
			case 'n':
				lit.WriteByte('\n')
			default:
				lit.WriteByte(n)
			}
			i += 2
			continue
		}
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		start := i
		i++
		if i < len(s) && s[i] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		// Modifiers: < > and status conditions like 400,501 or !200.
		for i < len(s) && (s[i] == '<' || s[i] == '>' || s[i] == '!' || s[i] == ',' || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		arg := ""
		if i < len(s) && s[i] == '{' {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("LogFormat: byte %d: unterminated %%{", start)
			}
			arg = s[i+1 : i+end]
			i += end + 1
		}
		if i >= len(s) {
			return nil, fmt.Errorf("LogFormat: byte %d: directive without a letter", start)
		}
		letter := s[i : i+1]
		i++
		if letter == "^" && i+1 < len(s) {
			letter = s[i-1 : i+2]
			i += 2
		}
		f, err := apacheDirective(letter, arg)
		if err != nil {
			return nil, fmt.Errorf("LogFormat: byte %d: %w", start, err)
		}
		f.name = s[start:i]
		lits = append(lits, lit.String())
		lit.Reset()
		fields = append(fields, f)
	}
	lits = append(lits, lit.String())
	f, err := newLogFormat("apache", lits, fields)
	if err != nil {
		return nil, fmt.Errorf("LogFormat: %w", err)
	}
	return f, nil
}

// apacheDirective maps one %directive (letter and {argument}) to a field.
func apacheDirective(letter, arg string) (lfField, error) {
	var f lfField
	extra := func(key string) lfField { return lfField{kind: lfExtra, key: key} }
	switch letter {
	case "h":
		f.kind = lfRemoteAddr
	case "a":
		if arg == "c" {
			return extra("connection_ip"), nil
		}
		f.kind = lfRemoteAddr
	case "A":
		f.kind = lfServerAddr
	case "b", "B":
		f.kind = lfBodyBytes
	case "D":
		f.kind, f.scale = lfDuration, int64(time.Microsecond)
	case "T":
		f.kind, f.scale = lfDuration, int64(time.Second)
		switch arg {
		case "ms":
			f.scale = int64(time.Millisecond)
		case "us":
			f.scale = int64(time.Microsecond)
		}
	case "f":
		return extra("filename"), nil
	case "H":
		f.kind = lfProtocol
	case "I":
		f.kind = lfRequestLength
	case "O":
		f.kind = lfBytesSent
	case "S":
		return extra("bytes_transferred"), nil
	case "k":
		return extra("keepalive_requests"), nil
	case "l":
		return extra("ident"), nil
	case "L":
		return extra("log_id"), nil
	case "m":
		f.kind = lfMethod
	case "p":
		if arg == "remote" {
			f.kind = lfRemotePort
		} else {
			f.kind = lfServerPort
		}
	case "P":
		if arg == "tid" || arg == "hextid" {
			return extra("tid"), nil
		}
		return extra("pid"), nil
	case "q":
		f.kind = lfQueryString
	case "r":
		f.kind = lfRequest
	case "R":
		return extra("handler"), nil
	case "s":
		f.kind = lfStatus
	case "t":
		return apacheTime(arg)
	case "u":
		f.kind = lfRemoteUser
	case "U":
		f.kind = lfURI
	case "v", "V":
		f.kind = lfServerName
	case "X":
		return extra("connection_status"), nil
	case "i", "o", "C", "e", "x", "n", "^ti", "^to":
		if arg == "" {
			return f, fmt.Errorf("%%%s needs a {name}", letter)
		}
		return apacheNamed(letter, arg), nil
	default:
		return f, fmt.Errorf("unknown directive %%%s", letter)
	}
	return f, nil
}

// apacheNamed maps %{name}i and the other named directives.
func apacheNamed(letter, arg string) lfField {
	low := strings.ReplaceAll(strings.ToLower(arg), "-", "_")
	switch letter {
	case "i":
		f := nginxVarField("http_" + low)
		if low == "host" {
			f.kind = lfHost
		}
		return f
	case "o":
		if low == "content_type" {
			return lfField{kind: lfRespMime}
		}
		return lfField{kind: lfExtra, key: "sent_http_" + low}
	case "C":
		return lfField{kind: lfCredential}
	case "e", "x":
		switch arg {
		case "SSL_PROTOCOL":
			return lfField{kind: lfTLSProtocol, key: "ssl_protocol"}
		case "SSL_CIPHER":
			return lfField{kind: lfTLSCipher}
		case "SSL_TLS_SNI":
			return lfField{kind: lfTLSServerName}
		case "UNIQUE_ID":
			return lfField{kind: lfRequestID}
		}
		return lfField{kind: lfExtra, key: "env_" + low}
	case "n":
		return lfField{kind: lfExtra, key: "note_" + low}
	case "^ti":
		return lfField{kind: lfExtra, key: "trailer_in_" + low}
	}
	return lfField{kind: lfExtra, key: "trailer_out_" + low}
}

// apacheTime maps %t and %{format}t: a strftime format, or sec, msec,
// usec, msec_frac, usec_frac, each optionally prefixed begin: or end:.
func apacheTime(arg string) (lfField, error) {
	arg = strings.TrimPrefix(strings.TrimPrefix(arg, "begin:"), "end:")
	switch arg {
	case "":
		return lfField{kind: lfTimeBracket}, nil
	case "sec":
		return lfField{kind: lfTimeEpoch, scale: int64(time.Second)}, nil
	case "msec":
		return lfField{kind: lfTimeEpoch, scale: int64(time.Millisecond)}, nil
	case "usec":
		return lfField{kind: lfTimeEpoch, scale: int64(time.Microsecond)}, nil
	case "msec_frac":
		return lfField{kind: lfTimeFrac, scale: int64(time.Millisecond)}, nil
	case "usec_frac":
		return lfField{kind: lfTimeFrac, scale: int64(time.Microsecond)}, nil
	}
	layout, err := strftimeLayout(arg)
	if err != nil {
		return lfField{}, err
	}
	return lfField{kind: lfTimeLayout, layout: layout}, nil
}

// strftimeLayout converts the strftime conversions people use in log
// formats to a Go time layout.
func strftimeLayout(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("time format %q ends in '%%'", s)
		}
		i++
		var rep string
		switch s[i] {
		case 'Y':
			rep = "2006"
		case 'y':
			rep = "06"
		case 'm':
			rep = "01"
		case 'd':
			rep = "02"
		case 'e':
			rep = "_2"
		case 'H':
			rep = "15"
		case 'I':
			rep = "03"
		case 'M':
			rep = "04"
		case 'S':
			rep = "05"
		case 'p':
			rep = "PM"
		case 'z':
			rep = "-0700"
		case 'Z':
			rep = "MST"
		case 'b', 'h':
			rep = "Jan"
		case 'B':
			rep = "January"
		case 'a':
			rep = "Mon"
		case 'A':
			rep = "Monday"
		case 'j':
			rep = "002"
		case 'T':
			rep = "15:04:05"
		case 'F':
			rep = "2006-01-02"
		case 'D':
			rep = "01/02/06"
		case 'R':
			rep = "15:04"
		case '%':
			rep = "%"
		default:
			return "", fmt.Errorf("time format %q: unsupported conversion %%%c", s, s[i])
		}
		b.WriteString(rep)
	}
	return b.String(), nil
}
