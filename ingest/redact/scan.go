package redact

import (
	"bytes"
	"encoding/base64"
)

// maxName bounds the length of a parameter, header or field name looked at.
const maxName = 64

// class says what a name's value is.
type class uint8

const (
	clNone   class = iota
	clValue        // the value is a secret of the returned type
	clAuthz        // an Authorization header: "scheme credential" or a raw token
	clCookie       // a cookie string; its session cookies are found by '='
)

// sep is the separator between a name and its value.
type sep uint8

const (
	sepEq    sep = iota // name=value: query strings, cookies, logfmt
	sepColon            // name: value, "name":"value": headers, JSON
)

// Byte classes, one table lookup per byte on the scanning paths.
const (
	bName  = 1 << iota // may be part of a parameter or field name
	bB64U              // base64url alphabet
	bB64               // standard base64 alphabet, with '='
	bStop              // ends an unquoted value
	bAlpha             // ASCII letter or digit
)

var tbl = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if alnum {
			t[c] |= bName | bB64U | bB64 | bAlpha
		}
		switch b {
		case '_', '-':
			t[c] |= bName | bB64U
		case '.', '[', ']':
			t[c] |= bName
		case '+', '/', '=':
			t[c] |= bB64
		}
		if b <= ' ' || b == 0x7f {
			t[c] |= bStop
		}
		switch b {
		case '"', '\'', '\\', '&', ';', ',', '|', '{', '}', '[', ']', '<', '>', '#', '(', ')':
			t[c] |= bStop
		}
	}
	return t
}()

// Redact returns line with every secret it finds replaced by its token, and
// how many it replaced. When it finds none it returns line itself (no copy),
// which is the common case and the fast path. line is never modified.
func (r *Redactor) Redact(line []byte) (out []byte, n int) {
	s := scanner{r: r, in: line}
	s.scan()
	if s.out == nil {
		return line, 0
	}
	return append(s.out, line[s.last:]...), s.n
}

// schemeAt returns "bearer" or "basic" if one of them, in any case,
// followed by a space, starts at i.
func schemeAt(line []byte, i int) string {
	rest := line[i:]
	if len(rest) >= 7 && rest[6] == ' ' && eqFold(rest[:6], "bearer") {
		return "bearer"
	}
	if len(rest) >= 6 && rest[5] == ' ' && eqFold(rest[:5], "basic") {
		return "basic"
	}
	return ""
}

// eqFold compares b to the lower-case ASCII s, ignoring case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if b[i]|0x20 != s[i] {
			return false
		}
	}
	return true
}

// scanner is one pass of the slow path over a line that may hold secrets.
type scanner struct {
	r    *Redactor
	in   []byte
	out  []byte // nil until the first replacement
	last int    // in[last:] is not yet copied to out
	n    int
}

// replace writes the token for in[start:end] in place of it.
func (s *scanner) replace(start, end int, typ string) {
	if s.out == nil {
		s.out = make([]byte, 0, len(s.in)+64)
	}
	s.out = append(s.out, s.in[s.last:start]...)
	s.out = s.r.appendToken(s.out, typ, s.in[start:end])
	s.last = end
	s.n++
}

// anchors are the bytes everything the scanner handles is found by. Each
// is searched with the vectorised bytes.IndexByte, so a line costs a few
// such searches plus a look at each hit (the ':' of a timestamp, the '='
// of a query parameter), not a loop over every byte.
var anchors = [...]byte{'=', ':', 'J', 'B', 'b'}

func (s *scanner) scan() {
	in := s.in
	var next [len(anchors)]int // next position of each anchor at or after i
	for k := range next {
		next[k] = -1
	}
	for i := 0; i < len(in); {
		at, which := len(in), -1
		for k, c := range anchors {
			if next[k] < i {
				if j := bytes.IndexByte(in[i:], c); j >= 0 {
					next[k] = i + j
				} else {
					next[k] = len(in)
				}
			}
			if next[k] < at {
				at, which = next[k], k
			}
		}
		if which < 0 {
			return
		}
		switch anchors[which] {
		case 'J':
			i = s.jwt(at-2, i)
		case 'B', 'b':
			i = s.scheme(at)
		case '=':
			i = s.named(at, sepEq)
		case ':':
			if j := s.userinfo(at); j > at {
				i = j
			} else {
				i = s.named(at, sepColon)
			}
		}
	}
}

// tokenLen returns the length of the token b starts with, or 0.
func tokenLen(b []byte) int {
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return 0
	}
	j := len(prefix)
	for j < len(b) && 'a' <= b[j] && b[j] <= 'z' {
		j++
	}
	if j == len(prefix) || j+1+hexLen > len(b) || b[j] != '_' {
		return 0
	}
	j++
	for _, c := range b[j : j+hexLen] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0
		}
	}
	j += hexLen
	if j+1 < len(b) && b[j] == '.' && tbl[b[j+1]]&bB64U != 0 {
		j++
		for j < len(b) && tbl[b[j]]&bB64U != 0 {
			j++
		}
	}
	return j
}

// isToken reports whether v is exactly one token.
func isToken(v []byte) bool { return len(v) > 0 && tokenLen(v) == len(v) }

// jwt redacts a JWT starting at i ("eyJ…", found by its 'J'); min is
// where scanning stands.
func (s *scanner) jwt(i, min int) int {
	in := s.in
	if i < min || in[i] != 'e' || in[i+1] != 'y' {
		return i + 3
	}
	if i > 0 && (tbl[in[i-1]]&bB64U != 0 || in[i-1] == '.' && inToken(in, i-1)) {
		return i + 3
	}
	end, ok := jwtEnd(in, i)
	if !ok {
		return i + 3
	}
	s.replace(i, end, TypeJWT)
	return end
}

// inToken reports whether the '.' at dot ends the fingerprint part of a
// jwt token, so that what follows is the token's claims, not a JWT.
func inToken(in []byte, dot int) bool {
	k := dot
	for k > 0 && (tbl[in[k-1]]&bAlpha != 0 || in[k-1] == '_') {
		k--
	}
	n := tokenLen(in[k:])
	return n > dot-k
}

// jwtEnd returns the end of the three-segment JWT starting at i.
func jwtEnd(in []byte, i int) (int, bool) {
	j, dots := i, 0
	for j < len(in) {
		c := in[j]
		if c == '.' {
			if dots == 2 {
				break
			}
			dots++
		} else if tbl[c]&bB64U == 0 {
			break
		}
		j++
	}
	if dots != 2 {
		return 0, false
	}
	if _, ok := jwtPayload(in[i:j]); !ok {
		return 0, false
	}
	return j, true
}

// jwtPayload reports whether b is exactly a JWS compact serialisation whose
// payload is a JSON object, and returns the payload segment.
func jwtPayload(b []byte) ([]byte, bool) {
	if len(b) < 10 || b[0] != 'e' || b[1] != 'y' || b[2] != 'J' {
		return nil, false
	}
	d1 := bytes.IndexByte(b, '.')
	if d1 < 4 {
		return nil, false
	}
	d2 := bytes.IndexByte(b[d1+1:], '.')
	if d2 < 2 {
		return nil, false
	}
	d2 += d1 + 1
	for _, c := range b {
		if c != '.' && tbl[c]&bB64U == 0 {
			return nil, false
		}
	}
	if bytes.IndexByte(b[d2+1:], '.') >= 0 {
		return nil, false
	}
	payload := b[d1+1 : d2]
	// The first bytes decide: a JSON object starts with '{' after spaces.
	head := payload
	if len(head) > 8 {
		head = head[:8]
	}
	var buf [6]byte
	n, err := base64.RawURLEncoding.Decode(buf[:], head[:len(head)/4*4])
	if err != nil || n == 0 {
		return nil, false
	}
	for _, c := range buf[:n] {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return payload, true
		}
		return nil, false
	}
	return nil, false
}

// scheme redacts the credential of a bare "Bearer x" or "Basic x".
func (s *scanner) scheme(i int) int {
	in := s.in
	if i > 0 && tbl[in[i-1]]&bAlpha != 0 {
		return i + 1
	}
	sch := schemeAt(in, i)
	if sch == "" {
		return i + 1
	}
	j := i + len(sch)
	for j < len(in) && in[j] == ' ' {
		j++
	}
	if sch == "basic" {
		end := j
		for end < len(in) && tbl[in[end]]&bB64 != 0 {
			end++
		}
		if end-j >= 4 && isBasic(in[j:end]) {
			s.replace(j, end, TypeBasic)
		}
		return end
	}
	end := valueEnd(in, j, quoteNone)
	v := in[j:end]
	if len(v) == 0 || isToken(v) || isAuthParam(v) {
		return end
	}
	s.replace(j, end, TypeBearer)
	return end
}

// isBasic reports whether b is base64 of "user:password".
func isBasic(b []byte) bool {
	var buf [256]byte
	if len(b) > len(buf)/3*4 {
		return true // too long to check cheaply; the scheme word says enough
	}
	n, err := base64.StdEncoding.Decode(buf[:], b)
	if err != nil {
		n, err = base64.RawStdEncoding.Decode(buf[:], trimPad(b))
	}
	return err == nil && bytes.IndexByte(buf[:n], ':') > 0
}

// isAuthParam reports whether v is the start of an auth-param, as in
// `WWW-Authenticate: Bearer realm="api"`, rather than a token: a short
// lower-case name ending in one '='.
func isAuthParam(v []byte) bool {
	eq := bytes.IndexByte(v, '=')
	if eq < 1 || eq > 20 || eq != len(v)-1 {
		return false
	}
	for _, c := range v[:eq] {
		if !('a' <= c && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

// userinfo redacts the password in "scheme://user:password@host" when the
// ':' at i starts "://" (or JSON's ":\/\/"). It returns i when there is no
// authority here.
func (s *scanner) userinfo(i int) int {
	in := s.in
	j := i + 1
	switch {
	case bytes.HasPrefix(in[j:], []byte("//")):
		j += 2
	case bytes.HasPrefix(in[j:], []byte(`\/\/`)):
		j += 4
	default:
		return i
	}
	at, colon := -1, -1
	for ; j < len(in); j++ {
		c := in[j]
		if c == '@' {
			at = j
		} else if c == ':' && at < 0 && colon < 0 {
			colon = j
		} else if c == '/' || c == '?' || c == '\\' || tbl[c]&bStop != 0 && c != ';' && c != ',' && c != '&' {
			break
		}
	}
	if at < 0 || colon < 0 || colon > at {
		return j
	}
	pw := in[colon+1 : at]
	if len(pw) > 0 && !isToken(pw) {
		s.replace(colon+1, at, TypePassword)
	}
	return at + 1
}

// quote is how a value is quoted.
type quote uint8

const (
	quoteNone    quote = iota
	quoteJSON          // "…" with JSON escapes
	quoteEscJSON       // \"…\": JSON inside a JSON string
	quoteHex           // \x22…\x22: nginx escape=default
	quoteSingle        // '…'
)

// valueEnd returns where a value starting at i ends.
func valueEnd(in []byte, i int, q quote) int {
	switch q {
	case quoteJSON:
		for j := i; j < len(in); j++ {
			switch in[j] {
			case '\\':
				j++
			case '"':
				return j
			}
		}
		return len(in)
	case quoteEscJSON:
		if k := bytes.IndexByte(in[i:], '\\'); k >= 0 {
			return i + k
		}
		return len(in)
	case quoteHex:
		if k := bytes.Index(in[i:], []byte(`\x22`)); k >= 0 {
			return i + k
		}
		return len(in)
	case quoteSingle:
		if k := bytes.IndexByte(in[i:], '\''); k >= 0 {
			return i + k
		}
		return len(in)
	}
	j := i
	for j < len(in) && tbl[in[j]]&bStop == 0 {
		j++
	}
	return j
}

// openQuote reads an opening quote at i.
func openQuote(in []byte, i int) (quote, int) {
	if i >= len(in) {
		return quoteNone, i
	}
	switch in[i] {
	case '"':
		return quoteJSON, i + 1
	case '\'':
		return quoteSingle, i + 1
	case '\\':
		if bytes.HasPrefix(in[i:], []byte(`\"`)) {
			return quoteEscJSON, i + 2
		}
		if bytes.HasPrefix(in[i:], []byte(`\x22`)) {
			return quoteHex, i + 4
		}
	}
	return quoteNone, i
}

// named handles the separator at i: if the name before it holds secrets,
// it redacts the value after it.
func (s *scanner) named(i int, sp sep) int {
	in := s.in
	typ, cl, quoted := s.r.nameBefore(in, i, sp)
	if cl == clNone || cl == clCookie {
		return i + 1
	}
	j := i + 1
	if sp == sepColon {
		for j < len(in) && (in[j] == ' ' || in[j] == '\t') {
			j++
		}
	}
	q, j := openQuote(in, j)
	if sp == sepColon && quoted && q == quoteNone {
		return i + 1 // a JSON number, literal, object or array: no secret
	}
	if cl == clAuthz {
		if tokenLen(in[j:]) > 0 {
			return i + 1 // already redacted
		}
		k := j
		for k < len(in) && tbl[in[k]]&bName != 0 {
			k++
		}
		if k < len(in) && in[k] == ' ' {
			switch authScheme(in[j:k]) {
			case schemeParams:
				// Digest, AWS4-HMAC-SHA256, OAuth: the secrets are
				// parameters ("Signature=…"), found by '='.
				return i + 1
			case schemeWord:
				return i + 1 // Bearer and Basic: found by scheme
			}
			// Token, Negotiate, an unknown scheme: the credential follows.
			for k < len(in) && in[k] == ' ' {
				k++
			}
			j, typ = k, TypeBearer
		} else {
			typ = TypeAPIKey // a raw token without a scheme
		}
	}
	end := valueEnd(in, j, q)
	v := in[j:end]
	if len(v) == 0 || (len(v) == 1 && v[0] == '-') || isToken(v) {
		return end
	}
	s.replace(j, end, typ)
	return end
}

// Kinds of Authorization schemes.
const (
	schemeOther  = iota // the credential is the next word
	schemeWord          // Bearer, Basic: the scheme scanner handles them
	schemeParams        // the credential is in name=value parameters
)

func authScheme(w []byte) int {
	var buf [maxName]byte
	n, _ := normName(buf[:0], w)
	switch string(n) {
	case "bearer", "basic":
		return schemeWord
	case "digest", "aws4-hmac-sha256", "oauth", "hoba", "mutual", "vapid", "scram-sha-1", "scram-sha-256", "goog4-rsa-sha256", "goog4-hmac-sha256":
		return schemeParams
	}
	return schemeOther
}

// nameBefore classifies the name that ends at the separator at i, and
// reports whether it was quoted.
func (r *Redactor) nameBefore(in []byte, i int, sp sep) (typ string, cl class, quoted bool) {
	j := i
	if sp == sepColon {
		for j > 0 && (in[j-1] == ' ' || in[j-1] == '\t') {
			j--
		}
		switch {
		case j > 0 && (in[j-1] == '"' || in[j-1] == '\''):
			j--
			quoted = true
			if j > 0 && in[j-1] == '\\' {
				j--
			}
		case j >= 4 && in[j-1] == '2' && bytes.Equal(in[j-4:j], []byte(`\x22`)):
			j -= 4
			quoted = true
		}
	}
	end := j
	if sp == sepColon && (end == 0 || tbl[in[end-1]]&bAlpha == 0 || in[end-1] <= '9') {
		return "", clNone, false // header and field names end in a letter
	}
	for j > 0 && end-j < maxName && tbl[in[j-1]]&bName != 0 {
		j--
	}
	if j == end || end-j >= maxName {
		return "", clNone, false
	}
	name := in[j:end]
	// A name right after a JSON-escaped '&' ("\u0026key=") or nginx's
	// ("\x26key=") starts after the escape.
	if j > 0 && in[j-1] == '\\' {
		switch {
		case len(name) > 5 && eqFold(name[:5], "u0026"):
			name = name[5:]
		case len(name) > 3 && eqFold(name[:3], "x26"):
			name = name[3:]
		}
	}
	typ, cl = r.classify(name, sp)
	return typ, cl, quoted
}

// normName lower-cases name into dst, maps '_' to '-' and drops nginx's
// "http_" variable prefix. It fails for names too long to be one.
func normName(dst, name []byte) ([]byte, bool) {
	if len(name) > maxName {
		return nil, false
	}
	for _, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		dst = append(dst, c)
	}
	if len(dst) > 5 && string(dst[:5]) == "http-" {
		dst = dst[5:]
	}
	return dst, true
}

// classify says whether a name holds a secret, and of which type.
func (r *Redactor) classify(name []byte, sp sep) (string, class) {
	var buf [maxName]byte
	n, ok := normName(buf[:0], name)
	if !ok || len(n) == 0 || bytes.HasPrefix(n, []byte("twfp-")) {
		return "", clNone
	}
	switch string(n) {
	case "authorization", "proxy-authorization":
		return TypeBearer, clAuthz
	case "cookie", "set-cookie":
		return "", clCookie
	case "x-amz-credential", "x-goog-credential":
		return "", clNone // hold the public access key id
	case "api-key", "apikey", "x-api-key", "x-apikey":
		return TypeAPIKey, clValue
	case "access-token", "token", "auth", "id-token", "refresh-token", "auth-token", "x-auth-token", "x-access-token":
		return TypeBearer, clValue
	case "password", "passwd", "pwd", "pass", "secret", "client-secret":
		return TypePassword, clValue
	case "sig", "signature", "x-amz-signature", "x-amz-security-token", "x-goog-signature":
		return TypeSignature, clValue
	case "session", "sessionid", "session-id", "phpsessid", "jsessionid", "connect.sid", "asp.net-sessionid":
		return TypeSession, clValue
	case "key", "sid":
		// Too common as JSON fields (an S3 object key) to be secrets there.
		if sp == sepEq {
			if n[0] == 'k' {
				return TypeAPIKey, clValue
			}
			return TypeSession, clValue
		}
		return "", clNone
	}
	if sp == sepEq {
		if _, ok := r.params[string(n)]; ok {
			return TypeAPIKey, clValue
		}
		if bytes.Contains(n, []byte("session")) {
			return TypeSession, clValue
		}
	} else if _, ok := r.headers[string(n)]; ok {
		return TypeAPIKey, clValue
	}
	switch {
	case bytes.Contains(n, []byte("token")):
		return TypeBearer, clValue
	case bytes.Contains(n, []byte("secret")), bytes.Contains(n, []byte("passw")):
		return TypePassword, clValue
	case bytes.Contains(n, []byte("apikey")), bytes.Contains(n, []byte("api-key")):
		return TypeAPIKey, clValue
	case bytes.HasSuffix(n, []byte("signature")):
		return TypeSignature, clValue
	}
	return "", clNone
}

// unescape decodes the escapes a log format may have put in a secret
// (%XX, \xXX, JSON's \uXXXX and \c) so that one secret has one fingerprint
// whatever format logged it. It returns s itself when there is none.
func unescape(dst, s []byte) []byte {
	if bytes.IndexByte(s, '%') < 0 && bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case c == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]):
			dst = append(dst, unhex(s[i+2])<<4|unhex(s[i+3]))
			i += 3
		case c == '\\' && i+5 < len(s) && s[i+1] == 'u' && isHex(s[i+2]) && isHex(s[i+3]) && isHex(s[i+4]) && isHex(s[i+5]):
			r := rune(unhex(s[i+2]))<<12 | rune(unhex(s[i+3]))<<8 | rune(unhex(s[i+4]))<<4 | rune(unhex(s[i+5]))
			dst = appendRune(dst, r)
			i += 5
		case c == '\\' && i+1 < len(s):
			dst = append(dst, s[i+1])
			i++
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

func appendRune(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xc0|byte(r>>6), 0x80|byte(r&0x3f))
	default:
		return append(dst, 0xe0|byte(r>>12), 0x80|byte(r>>6&0x3f), 0x80|byte(r&0x3f))
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
