package normalize

import (
	"fmt"
	"strings"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// NginxJSON parses nginx access logs written with a JSON log_format, the
// kind people write with escape=json:
//
//	log_format trail escape=json '{"time":"$time_iso8601","remote_addr":"$remote_addr",'
//	    '"request":"$request","status":$status,"request_time":$request_time}';
//
// Keys are nginx variable names (with or without the "$") mapped as
// NginxFormat maps them, plus a few common aliases (time, timestamp,
// @timestamp, client_ip, method, path, user_agent, referer, status_code and
// the ECS names source.ip, url.original, http.request.method,
// http.response.status_code, user_agent.original, user.name). Any other key
// goes to trailwatch.extra under the key. A nested object is flattened with
// dotted keys; an array is kept as its JSON text. Strings, numbers, true
// and false are accepted as values; null and "-" mean absent. A line
// written without escape=json (\xHH escapes, invalid JSON strictly
// speaking) is decoded too. Any time key accepts $time_iso8601,
// $time_local or $msec values.
//
// NginxJSON is stateless and safe for concurrent use.
type NginxJSON struct{}

// NewNginxJSON returns the nginx JSON access log normalizer.
func NewNginxJSON() *NginxJSON { return &NginxJSON{} }

// nginxJSONMaxDepth bounds object and array nesting: nginx writes flat
// objects, so a deep line is damage or an attack.
const nginxJSONMaxDepth = 8

// Normalize appends the one event parsed from rec.Data to dst. On error
// dst is returned unchanged and the error names the key or byte.
func (n *NginxJSON) Normalize(dst []schema.Event, rec *ingest.Record) ([]schema.Event, error) {
	return lfNormalize(dst, rec, &nginxMeta, nginxJSONParser{})
}

type nginxJSONParser struct{}

func (nginxJSONParser) parse(st *lfState) error {
	s := st.line
	i := jsonWS(s, 0)
	if i == len(s) || s[i] != '{' {
		return fmt.Errorf("nginx: JSON line does not start with '{' at byte %d", i)
	}
	i, err := nginxJSONObject(st, i, "", 1)
	if err != nil {
		return err
	}
	if i = jsonWS(s, i); i != len(s) {
		return fmt.Errorf("nginx: JSON: unexpected text after the object at byte %d", i)
	}
	return nil
}

// nginxJSONObject reads the object at s[i] == '{' and applies its members;
// it returns the index after the closing brace.
func nginxJSONObject(st *lfState, i int, prefix string, depth int) (int, error) {
	s := st.line
	if depth > nginxJSONMaxDepth {
		return 0, fmt.Errorf("nginx: JSON: nesting deeper than %d at byte %d", nginxJSONMaxDepth, i)
	}
	i = jsonWS(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(s) || s[i] != '"' {
			return 0, fmt.Errorf("nginx: JSON: expected a key at byte %d", i)
		}
		end := jsonStrEnd(s, i+1)
		if end < 0 {
			return 0, fmt.Errorf("nginx: JSON: unterminated key at byte %d", i)
		}
		key := st.text(s[i+1 : end])
		if prefix != "" {
			key = prefix + "." + key
		}
		i = jsonWS(s, end+1)
		if i >= len(s) || s[i] != ':' {
			return 0, fmt.Errorf("nginx: JSON: expected ':' after key %q at byte %d", clip(key), i)
		}
		i = jsonWS(s, i+1)
		if i >= len(s) {
			return 0, fmt.Errorf("nginx: JSON: missing value of key %q at byte %d", clip(key), i)
		}
		var raw string
		switch c := s[i]; {
		case c == '"':
			end := jsonStrEnd(s, i+1)
			if end < 0 {
				return 0, fmt.Errorf("nginx: JSON: unterminated string value of key %q at byte %d", clip(key), i)
			}
			raw, i = s[i+1:end], end+1
		case c == '{':
			var err error
			if i, err = nginxJSONObject(st, i, key, depth+1); err != nil {
				return 0, err
			}
		case c == '[':
			end, err := jsonSkipComposite(s, i, depth)
			if err != nil {
				return 0, err
			}
			st.extra(key, st.text(s[i:end]))
			i = end
		default:
			end := i
			for end < len(s) && jsonScalarByte(s[end]) {
				end++
			}
			raw = s[i:end]
			switch {
			case raw == "null":
				raw = ""
			case raw == "true" || raw == "false":
			case raw == "" || !jsonNumberish(raw):
				return 0, fmt.Errorf("nginx: JSON: invalid value of key %q at byte %d", clip(key), i)
			}
			i = end
		}
		if raw != "" {
			f := nginxJSONField(key)
			if what := st.apply(&f, raw); what != "" {
				return 0, fmt.Errorf("nginx: JSON key %q: %s %q", clip(key), what, clip(raw))
			}
		}
		i = jsonWS(s, i)
		if i < len(s) && s[i] == ',' {
			i = jsonWS(s, i+1)
			continue
		}
		if i < len(s) && s[i] == '}' {
			return i + 1, nil
		}
		return 0, fmt.Errorf("nginx: JSON: expected ',' or '}' at byte %d", i)
	}
}

// nginxJSONFields holds the field of every known key, built once: a map
// lookup costs less per key than the switches behind it.
var nginxJSONFields = func() map[string]lfField {
	aliases := map[string]string{
		"remote_ip": "remote_addr", "client_ip": "remote_addr", "ip": "remote_addr",
		"source.ip": "remote_addr", "source.address": "remote_addr",
		"time": "time_iso8601", "timestamp": "time_iso8601", "@timestamp": "time_iso8601", "ts": "time_iso8601",
		"method": "request_method", "http.request.method": "request_method",
		"path": "uri", "url.path": "uri", "url.original": "request_uri",
		"query": "args", "url.query": "args",
		"referer": "http_referer", "referrer": "http_referer", "http_referrer": "http_referer",
		"user_agent": "http_user_agent", "useragent": "http_user_agent", "user_agent.original": "http_user_agent",
		"status_code": "status", "http.response.status_code": "status",
		"user": "remote_user", "user.name": "remote_user",
		"x_forwarded_for": "http_x_forwarded_for", "xff": "http_x_forwarded_for",
	}
	m := make(map[string]lfField, len(nginxKnownVars)+len(aliases))
	add := func(key, name string) {
		f := nginxVarField(name)
		if f.kind.isTime() {
			f.kind = lfTimeAny
		}
		m[key] = f
	}
	for _, name := range nginxKnownVars {
		add(name, name)
	}
	for k, name := range aliases {
		add(k, name)
	}
	return m
}()

// nginxJSONField maps a JSON key to its field: known names and aliases,
// case-insensitively and with '-' for '_', with or without a "$".
func nginxJSONField(key string) lfField {
	name := strings.TrimPrefix(key, "$")
	f, ok := nginxJSONFields[name]
	if !ok {
		for i := 0; i < len(name); i++ {
			if c := name[i]; 'A' <= c && c <= 'Z' || c == '-' {
				name = strings.ReplaceAll(strings.ToLower(name), "-", "_")
				f, ok = nginxJSONFields[name]
				break
			}
		}
	}
	if !ok {
		f = nginxVarField(name) // cookie_*, or an extra
	}
	f.name, f.key = key, key
	return f
}

// jsonWS skips JSON whitespace.
func jsonWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// jsonStrEnd returns the index of the quote closing a string whose content
// starts at i, or -1.
func jsonStrEnd(s string, i int) int {
	for j := i; j < len(s); {
		k := strings.IndexByte(s[j:], '"')
		if k < 0 {
			return -1
		}
		k += j
		bs := 0
		for b := k - 1; b >= i && s[b] == '\\'; b-- {
			bs++
		}
		if bs%2 == 0 {
			return k
		}
		j = k + 1
	}
	return -1
}

// jsonSkipComposite returns the index after the array or object at s[i],
// refusing nesting past nginxJSONMaxDepth.
func jsonSkipComposite(s string, i, depth int) (int, error) {
	start, d := i, 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '"':
			end := jsonStrEnd(s, i+1)
			if end < 0 {
				return 0, fmt.Errorf("nginx: JSON: unterminated string at byte %d", i)
			}
			i = end
		case '[', '{':
			if d++; depth+d > nginxJSONMaxDepth {
				return 0, fmt.Errorf("nginx: JSON: nesting deeper than %d at byte %d", nginxJSONMaxDepth, i)
			}
		case ']', '}':
			if d--; d == 0 {
				return i + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("nginx: JSON: unterminated array at byte %d", start)
}

func jsonScalarByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// jsonNumberish reports whether s looks like a JSON number.
func jsonNumberish(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			return false
		}
	}
	return true
}
