package normalize

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// FingerprintPrefix starts every credential fingerprint token the collectors
// write in place of a secret: "twfp_<type>_<24 hex>" where type is one of
// apikey, bearer, jwt, basic, password, session, signature (no underscore),
// and for a JWT
// "twfp_jwt_<24 hex>.<base64url JSON of iss, sub, client_id>". The hex is a
// keyed HMAC of the secret, so one credential has one fingerprint across
// sources while the secret itself never leaves the collector. The token
// uses only URL-safe characters so it survives every log format.
const FingerprintPrefix = "twfp_"

// FingerprintHexLen is the length of the hex part of a token.
const FingerprintHexLen = 24

// ParseFingerprint reads the first fingerprint token in s.
func ParseFingerprint(s string) (schema.Credential, bool) {
	i := strings.Index(s, FingerprintPrefix)
	if i < 0 {
		return schema.Credential{}, false
	}
	rest := s[i+len(FingerprintPrefix):]
	us := strings.IndexByte(rest, '_')
	if us <= 0 || len(rest) < us+1+FingerprintHexLen {
		return schema.Credential{}, false
	}
	typ, hexPart := rest[:us], rest[us+1:us+1+FingerprintHexLen]
	for i := 0; i < len(hexPart); i++ {
		if c := hexPart[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return schema.Credential{}, false
		}
	}
	cred := schema.Credential{Fingerprint: hexPart, Type: typ}
	tail := rest[us+1+FingerprintHexLen:]
	if typ == "jwt" && strings.HasPrefix(tail, ".") {
		end := 1
		for end < len(tail) && isB64URL(tail[end]) {
			end++
		}
		if raw, err := base64.RawURLEncoding.DecodeString(tail[1:end]); err == nil {
			var c struct {
				Iss      string `json:"iss"`
				Sub      string `json:"sub"`
				ClientID string `json:"client_id"`
			}
			if json.Unmarshal(raw, &c) == nil {
				cred.Issuer, cred.Subject, cred.ClientID = c.Iss, c.Sub, c.ClientID
			}
		}
	}
	return cred, true
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// ApplyCredential sets ev's credential from the first of values holding a
// fingerprint token, unless the event already has one. It reports whether
// it found one. Normalizers call it with every field a credential can be
// logged in (query string, Authorization or API-key header, cookie).
func ApplyCredential(ev *schema.Event, values ...string) bool {
	if ev.Trailwatch.Credential.Fingerprint != "" {
		return true
	}
	for _, v := range values {
		if c, ok := ParseFingerprint(v); ok {
			id := ev.Trailwatch.Credential.ID
			ev.Trailwatch.Credential = c
			if id != "" {
				ev.Trailwatch.Credential.ID = id
			}
			if ev.User.ID == "" && c.Subject != "" {
				ev.User.ID = c.Subject
			}
			return true
		}
	}
	return false
}
