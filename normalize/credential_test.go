package normalize_test

import (
	"encoding/base64"
	"testing"

	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestParseFingerprint(t *testing.T) {
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://idp.example","sub":"svc-42","client_id":"billing"}`))
	tests := []struct {
		name string
		in   string
		want schema.Credential
		ok   bool
	}{
		{"api key in query", "page=2&api_key=twfp_apikey_0123456789abcdef01234567&x=1", schema.Credential{Fingerprint: "0123456789abcdef01234567", Type: "apikey"}, true},
		{"type with underscore is not a token", "twfp_api_key_0123456789abcdef01234567", schema.Credential{}, false},
		{"bearer header", "Bearer twfp_bearer_0123456789abcdef01234567", schema.Credential{Fingerprint: "0123456789abcdef01234567", Type: "bearer"}, true},
		{"jwt with claims", "twfp_jwt_aaaaaaaaaaaaaaaaaaaaaaaa." + claims + "\"", schema.Credential{Fingerprint: "aaaaaaaaaaaaaaaaaaaaaaaa", Type: "jwt", Issuer: "https://idp.example", Subject: "svc-42", ClientID: "billing"}, true},
		{"short hex", "twfp_basic_abc", schema.Credential{}, false},
		{"uppercase hex", "twfp_basic_0123456789ABCDEF01234567", schema.Credential{}, false},
		{"none", "no secrets here", schema.Credential{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := normalize.ParseFingerprint(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Errorf("ParseFingerprint(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestApplyCredential(t *testing.T) {
	var ev schema.Event
	if normalize.ApplyCredential(&ev, "", "nothing") {
		t.Fatal("found a credential in nothing")
	}
	if !normalize.ApplyCredential(&ev, "", "key=twfp_session_ffffffffffffffffffffffff") || ev.Trailwatch.Credential.Type != "session" {
		t.Fatalf("credential not applied: %+v", ev.Trailwatch.Credential)
	}
	if ev.ActorKey() != "cred:ffffffffffffffffffffffff" {
		t.Errorf("actor %q does not follow the credential", ev.ActorKey())
	}
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add("twfp_jwt_aaaaaaaaaaaaaaaaaaaaaaaa.eyJzdWIiOiJ4In0")
	f.Add("Bearer twfp_bearer_0123456789abcdef01234567")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := normalize.ParseFingerprint(s)
		if ok && len(c.Fingerprint) != normalize.FingerprintHexLen {
			t.Fatalf("fingerprint %q has the wrong length", c.Fingerprint)
		}
	})
}
