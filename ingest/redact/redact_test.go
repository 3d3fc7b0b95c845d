package redact

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

const testKey = "test-key-0123456789abcdef"

func newTest(t testing.TB, key string) *Redactor {
	t.Helper()
	r, err := New(Config{Key: config.Secret(key)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fp computes a token independently of the code under test.
func fp(key, typ, secret string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(typ + ":" + secret))
	return "twfp_" + typ + "_" + hex.EncodeToString(m.Sum(nil))[:24]
}

// jwtOf builds an unsigned-looking JWT with the given payload.
func jwtOf(payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT","kid":"k1"}`)) + "." +
		enc.EncodeToString([]byte(payload)) + ".c2lnbmF0dXJlLWJ5dGVzLW5vdC1jaGVja2Vk"
}

// Secrets planted in the test lines.
var (
	jwtA      = jwtOf(`{"iss":"https://auth.example.com/","sub":"user-42","azp":"mobile-app","exp":1900000000}`)
	apiKey    = "sk_live_CANARY1234567890abcd"
	opaque    = "opaqueTOKEN_abc123XYZ"
	basicBlob = "YWxpY2U6czNjcjN0" // alice:s3cr3t
)

func jwtToken(key, jwt, claims string) string {
	return fp(key, "jwt", jwt) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
}

type redactCase struct {
	name    string
	line    string
	secrets []string // must not appear in the output
	want    []string // tokens that must appear
	keep    []string // text that must stay
	n       int      // secrets replaced
	exact   string   // the whole expected output, when set
}

func redactCases() []redactCase {
	k := testKey
	return []redactCase{
		{
			name:    "nginx combined, api_key in query",
			line:    `203.0.113.9 - - [20/Nov/2026:09:03:01 +0000] "GET /api/v1/orders?page=2&api_key=` + apiKey + ` HTTP/1.1" 200 912 "-" "curl/8.5.0"`,
			secrets: []string{apiKey},
			n:       1,
			exact:   `203.0.113.9 - - [20/Nov/2026:09:03:01 +0000] "GET /api/v1/orders?page=2&api_key=` + fp(k, "apikey", apiKey) + ` HTTP/1.1" 200 912 "-" "curl/8.5.0"`,
		},
		{
			name:    "nginx JSON, http_authorization bearer JWT",
			line:    `{"time":"2026-11-20T09:03:01+00:00","remote_addr":"203.0.113.9","request":"GET /api/v1/me HTTP/1.1","status":200,"http_authorization":"Bearer ` + jwtA + `","http_user_agent":"curl/8.5.0"}`,
			secrets: []string{jwtA, strings.Split(jwtA, ".")[2]},
			want:    []string{`"http_authorization":"Bearer ` + jwtToken(k, jwtA, `{"iss":"https://auth.example.com/","sub":"user-42","client_id":"mobile-app"}`) + `"`},
			keep:    []string{`"time":"2026-11-20T09:03:01+00:00"`, `"status":200`},
			n:       1,
		},
		{
			name:    "nginx JSON, basic auth",
			line:    `{"remote_addr":"198.51.100.7","remote_user":"alice","http_authorization":"Basic ` + basicBlob + `","status":401}`,
			secrets: []string{basicBlob},
			want:    []string{`"Basic ` + fp(k, "basic", basicBlob) + `"`},
			keep:    []string{`"remote_user":"alice"`},
			n:       1,
		},
		{
			name: "Kong JSON, headers.authorization, apikey and session cookie",
			line: `{"request":{"method":"GET","uri":"/orders?apikey=KONGKEY123456","headers":{"host":"api.example.com","authorization":"Bearer ` + opaque +
				`","apikey":"KONGKEY123456","cookie":"session=SESSabc123; theme=dark"}},"response":{"status":200},"client_ip":"203.0.113.9","started_at":1763629381000}`,
			secrets: []string{"KONGKEY123456", opaque, "SESSabc123"},
			want: []string{
				`uri":"/orders?apikey=` + fp(k, "apikey", "KONGKEY123456") + `"`,
				`"apikey":"` + fp(k, "apikey", "KONGKEY123456") + `"`,
				`"Bearer ` + fp(k, "bearer", opaque) + `"`,
				`"cookie":"session=` + fp(k, "session", "SESSabc123") + `; theme=dark"`,
			},
			n: 4,
		},
		{
			name: "CloudTrail, presigned URL with JSON escapes",
			line: `{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject","requestParameters":{"bucketName":"b","key":"reports/2026.csv"},` +
				`"additionalEventData":{"url":"https://b.s3.amazonaws.com/reports/2026.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256\u0026X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261120%2Fus-east-1%2Fs3%2Faws4_request` +
				`\u0026X-Amz-Date=20261120T090000Z\u0026X-Amz-Expires=3600\u0026X-Amz-SignedHeaders=host\u0026X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLETOKEN\u0026X-Amz-Signature=0123abcdSIGNATUREfedc"}}`,
			secrets: []string{"FQoGZXIvYXdzEXAMPLETOKEN", "0123abcdSIGNATUREfedc"},
			want: []string{
				`X-Amz-Signature=` + fp(k, "signature", "0123abcdSIGNATUREfedc") + `"`,
				`X-Amz-Security-Token=` + fp(k, "signature", "FQoGZXIvYXdzEXAMPLETOKEN") + `\u0026`,
			},
			keep: []string{`"key":"reports/2026.csv"`, "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"},
			n:    2,
		},
		{
			name:    "HAProxy captured headers",
			line:    `Nov 20 09:03:01 lb1 haproxy[2211]: 203.0.113.9:51234 [20/Nov/2026:09:03:01.123] fe_api be_api/srv1 0/0/1/2/3 200 512 - - ---- 1/1/0/0/0 0/0 {api.example.com|Bearer ` + opaque + `} "GET /api/v1/me HTTP/1.1"`,
			secrets: []string{opaque},
			want:    []string{`{api.example.com|Bearer ` + fp(k, "bearer", opaque) + `}`},
			n:       1,
		},
		{
			name:    "HAProxy captured bare JWT",
			line:    `203.0.113.9:51234 [20/Nov/2026:09:03:01.123] fe be/s1 0/0/1/2/3 200 512 - - ---- 1/1/0/0/0 0/0 {` + jwtA + `} "GET / HTTP/1.1"`,
			secrets: []string{jwtA},
			want:    []string{`{` + jwtToken(k, jwtA, `{"iss":"https://auth.example.com/","sub":"user-42","client_id":"mobile-app"}`) + `}`},
			n:       1,
		},
		{
			name:    "Envoy JSON, token query and x-api-key and basic",
			line:    `{"start_time":"2026-11-20T09:03:01.123Z","method":"POST","path":"/v1/login?token=` + jwtA + `&next=/home","response_code":401,"x-api-key":"KONGKEY123456","authorization":"Basic ` + basicBlob + `","user_agent":"okhttp/4.12.0"}`,
			secrets: []string{jwtA, "KONGKEY123456", basicBlob},
			want: []string{
				`token=` + jwtToken(k, jwtA, `{"iss":"https://auth.example.com/","sub":"user-42","client_id":"mobile-app"}`) + `&next=/home"`,
				`"x-api-key":"` + fp(k, "apikey", "KONGKEY123456") + `"`,
				`"Basic ` + fp(k, "basic", basicBlob) + `"`,
			},
			n: 3,
		},
		{
			name:    "nginx combined with a cookie field",
			line:    `10.0.0.1 - - [20/Nov/2026:09:03:01 +0000] "GET /app HTTP/1.1" 200 10 "-" "Mozilla/5.0" "PHPSESSID=phpsess987; _myapp_session=rails555; lang=en; JSESSIONID=jsess42"`,
			secrets: []string{"phpsess987", "rails555", "jsess42"},
			want:    []string{"PHPSESSID=" + fp(k, "session", "phpsess987") + "; _myapp_session=" + fp(k, "session", "rails555") + "; lang=en; JSESSIONID=" + fp(k, "session", "jsess42") + `"`},
			n:       3,
		},
		{
			name:    "cookie holding a JWT",
			line:    `{"http_cookie":"prefs=1; id_jwt=` + jwtA + `"}`,
			secrets: []string{jwtA},
			want:    []string{`prefs=1; id_jwt=` + fp(k, "jwt", jwtA)},
			n:       1,
		},
		{
			name:    "URL userinfo password",
			line:    `10.0.0.1 - - [20/Nov/2026:09:03:01 +0000] "GET https://admin:hunter2pw@internal.example.com:8443/x HTTP/1.1" 200 10 "-" "curl/8"`,
			secrets: []string{"hunter2pw"},
			want:    []string{`https://admin:` + fp(k, "password", "hunter2pw") + `@internal.example.com:8443/x`},
			n:       1,
		},
		{
			name:    "header-like text and logfmt",
			line:    `level=info msg="upstream" X-API-Key: hdrkey_777 user=alice password="p@ss w0rd" client_secret=cs_42`,
			secrets: []string{"hdrkey_777", "p@ss w0rd", "cs_42"},
			want: []string{
				"X-API-Key: " + fp(k, "apikey", "hdrkey_777") + " ",
				`password="` + fp(k, "password", "p@ss w0rd") + `"`,
				"client_secret=" + fp(k, "password", "cs_42"),
			},
			keep: []string{`msg="upstream"`, "user=alice"},
			n:    3,
		},
		{
			name:    "nginx escape=default quotes around a secret",
			line:    `10.0.0.1 - - [20/Nov/2026:09:03:01 +0000] "GET /?password=\x22quoted-pw\x22 HTTP/1.1" 200 1 "-" "ua"`,
			secrets: []string{"quoted-pw"},
			want:    []string{`password=\x22` + fp(k, "password", "quoted-pw") + `\x22 HTTP/1.1`},
			n:       1,
		},
		{
			name:    "JSON inside JSON (container logs)",
			line:    `{"log":"{\"authorization\":\"Bearer innerTOKEN123\",\"password\":\"pw-inner\"}\n","stream":"stdout"}`,
			secrets: []string{"innerTOKEN123", "pw-inner"},
			want:    []string{`\"authorization\":\"Bearer ` + fp(k, "bearer", "innerTOKEN123") + `\"`, `\"password\":\"` + fp(k, "password", "pw-inner") + `\"`},
			n:       2,
		},
		{
			name:    "JSON value with escaped quote",
			line:    `{"password":"a\"b c","user":"bob"}`,
			secrets: []string{`a\"b c`},
			want:    []string{`{"password":"` + fp(k, "password", `a"b c`) + `","user":"bob"}`},
			n:       1,
		},
		{
			name:    "Google signed URL",
			line:    `"GET /bucket/obj?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=sa%40p.iam.gserviceaccount.com%2F20261120&X-Goog-Signature=9f8e7d6c5b4a HTTP/1.1"`,
			secrets: []string{"9f8e7d6c5b4a"},
			keep:    []string{"X-Goog-Credential=sa%40p.iam.gserviceaccount.com%2F20261120"},
			want:    []string{"X-Goog-Signature=" + fp(k, "signature", "9f8e7d6c5b4a")},
			n:       1,
		},
		{
			name:    "raw token in Authorization",
			line:    `{"authorization":"rawtoken999","proxy-authorization":"Token tok_abc123"} Authorization: rawtoken999`,
			secrets: []string{"rawtoken999", "tok_abc123"},
			want:    []string{`"authorization":"` + fp(k, "apikey", "rawtoken999") + `"`, `"Token ` + fp(k, "bearer", "tok_abc123") + `"`, "Authorization: " + fp(k, "apikey", "rawtoken999")},
			n:       3,
		},
		{
			name:    "AWS SigV4 Authorization keeps the key id, redacts the signature",
			line:    `"authorization":"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261120/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=fe5f80f77d5fa3beca038a248ff027"`,
			secrets: []string{"fe5f80f77d5fa3beca038a248ff027"},
			keep:    []string{"Credential=AKIAIOSFODNN7EXAMPLE/"},
			n:       1,
		},
		{
			name:    "OAuth 1 header",
			line:    `Authorization: OAuth oauth_consumer_key="ck1", oauth_token="ot_secret1", oauth_signature="osig%3D"`,
			secrets: []string{"ot_secret1", "osig%3D"},
			keep:    []string{`oauth_consumer_key="ck1"`},
			n:       2,
		},
		{
			name: "no secrets",
			line: `203.0.113.9 - alice [20/Nov/2026:09:03:01 +0000] "GET /api/v1/catalog?page=18&sort=asc HTTP/1.1" 200 8618 "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Basic/1.0"`,
			n:    0,
		},
		{
			name: "look-alikes stay",
			line: `{"key":"uploads/eyJhbGciOi.txt","WWW-Authenticate":"Bearer realm=\"api\"","note":"Visual Basic rocks","monkey":"x","tokens":5,"session":null}`,
			n:    0,
		},
		{
			name: "existing tokens stay",
			line: `api_key=` + fp(k, "apikey", "x") + ` Authorization: Bearer ` + fp(k, "bearer", "y") + ` https://u:` + fp(k, "password", "z") + `@h/`,
			n:    0,
		},
	}
}

func TestRedact(t *testing.T) {
	r := newTest(t, testKey)
	for _, tc := range redactCases() {
		t.Run(tc.name, func(t *testing.T) {
			out, n := r.Redact([]byte(tc.line))
			got := string(out)
			if n != tc.n {
				t.Errorf("replaced %d secrets, want %d\n in: %s\nout: %s", n, tc.n, tc.line, got)
			}
			if tc.exact != "" && got != tc.exact {
				t.Errorf("got  %s\nwant %s", got, tc.exact)
			}
			if n == 0 && got != tc.line {
				t.Errorf("n == 0 but the line changed:\n in: %s\nout: %s", tc.line, got)
			}
			for _, s := range tc.secrets {
				if strings.Contains(got, s) {
					t.Errorf("secret %q survived: %s", s, got)
				}
			}
			for _, w := range append(tc.want, tc.keep...) {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %s\nout: %s", w, got)
				}
			}
			again, n2 := r.Redact(out)
			if n2 != 0 || !bytes.Equal(again, out) {
				t.Errorf("not idempotent (%d more):\n once: %s\ntwice: %s", n2, got, again)
			}
			if n > 0 {
				if _, ok := normalize.ParseFingerprint(got); !ok {
					t.Errorf("normalize.ParseFingerprint finds no token in %s", got)
				}
			}
		})
	}
}

func TestRedactZeroCopy(t *testing.T) {
	r := newTest(t, testKey)
	line := []byte(`10.0.0.1 - - [20/Nov/2026:09:03:01 +0000] "GET /x?page=1 HTTP/1.1" 200 1 "-" "ua"`)
	out, n := r.Redact(line)
	if n != 0 || &out[0] != &line[0] {
		t.Errorf("a line without secrets was copied (n=%d)", n)
	}
	if allocs := testing.AllocsPerRun(100, func() { r.Redact(line) }); allocs != 0 {
		t.Errorf("Redact allocated %v times on a line without secrets", allocs)
	}
}

func TestJWTClaimsParsedByNormalize(t *testing.T) {
	r := newTest(t, testKey)
	long := strings.Repeat("é", 100)
	tests := []struct {
		name    string
		payload string
		want    schema.Credential
	}{
		{"azp as client", `{"iss":"https://auth.example.com/","sub":"user-42","azp":"mobile-app"}`, schema.Credential{Type: "jwt", Issuer: "https://auth.example.com/", Subject: "user-42", ClientID: "mobile-app"}},
		{"client_id wins", `{"sub":"s","client_id":"c1","azp":"a1"}`, schema.Credential{Type: "jwt", Subject: "s", ClientID: "c1"}},
		{"non-string claims dropped", `{"sub":12345,"iss":["x"]}`, schema.Credential{Type: "jwt"}},
		{"capped", `{"sub":"` + long + `"}`, schema.Credential{Type: "jwt", Subject: strings.Repeat("é", 32)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jwt := jwtOf(tc.payload)
			out, n := r.Redact([]byte("Bearer " + jwt))
			if n != 1 {
				t.Fatalf("replaced %d, want 1: %s", n, out)
			}
			got, ok := normalize.ParseFingerprint(string(out))
			if !ok {
				t.Fatalf("no token in %s", out)
			}
			tc.want.Fingerprint = strings.TrimPrefix(fp(testKey, "jwt", jwt), "twfp_jwt_")
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSameSecretSameTokenAcrossFormats(t *testing.T) {
	r := newTest(t, testKey)
	lines := []string{
		`1.2.3.4 - - [20/Nov/2026:09:03:01 +0000] "GET /x?apikey=SAMEKEY42 HTTP/1.1" 200 1 "-" "ua"`,
		`{"headers":{"apikey":"SAMEKEY42"}}`,
		`{"x-api-key":"SAMEKEY42"}`,
		`X-API-Key: SAMEKEY42`,
		`{"uri":"/x?a=1\u0026api_key=SAMEKEY42"}`,
		`{"query":"api-key=SAME%4bEY42"}`,
	}
	want := fp(testKey, "apikey", "SAMEKEY42")
	for _, l := range lines {
		out, _ := r.Redact([]byte(l))
		if !strings.Contains(string(out), want) || strings.Contains(string(out), "SAMEKEY42") {
			t.Errorf("%s\n -> %s, want %s", l, out, want)
		}
	}
	// A bearer token in a header and in access_token= is one credential.
	a, _ := r.Redact([]byte(`Authorization: Bearer ` + opaque))
	b, _ := r.Redact([]byte(`GET /x?access_token=` + opaque))
	if ta, tb := tokenIn(a), tokenIn(b); ta == "" || ta != tb {
		t.Errorf("bearer tokens differ: %q vs %q", ta, tb)
	}
}

func tokenIn(b []byte) string {
	i := bytes.Index(b, []byte(prefix))
	if i < 0 {
		return ""
	}
	return string(b[i : i+tokenLen(b[i:])])
}

func TestDifferentKeysDifferentTokens(t *testing.T) {
	line := []byte(`GET /x?api_key=` + apiKey)
	a, _ := newTest(t, testKey).Redact(line)
	b, _ := newTest(t, "another-key-0123456789").Redact(line)
	if bytes.Equal(a, b) {
		t.Errorf("two keys gave the same output %s", a)
	}
}

func TestExtraNames(t *testing.T) {
	r, err := New(Config{Key: testKey, ExtraParams: []string{"X-Partner_Code"}, ExtraHeaders: []string{"X-Tenant-Secret-Id", "X-Custom"}})
	if err != nil {
		t.Fatal(err)
	}
	out, n := r.Redact([]byte(`GET /x?x-partner-code=pc123 {"x_custom":"cv456"} X-Custom: cv456`))
	if n != 3 || bytes.Contains(out, []byte("pc123")) || bytes.Contains(out, []byte("cv456")) {
		t.Errorf("extra names not redacted (%d): %s", n, out)
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "k")
	if err := os.WriteFile(kf, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string // error text, "" for none
	}{
		{"inline key", Config{Key: testKey}, ""},
		{"key file", Config{KeyFile: kf}, ""},
		{"no key", Config{}, "key: required (or key_file)"},
		{"both", Config{Key: testKey, KeyFile: kf}, "key: set either key or key_file, not both"},
		{"short", Config{Key: "short"}, "key: shorter than 16 bytes"},
		{"empty name", Config{Key: testKey, ExtraParams: []string{" "}, ExtraHeaders: []string{""}}, "query_params[0]: empty name\nheaders[0]: empty name"},
		{"missing file", Config{KeyFile: filepath.Join(dir, "nope")}, "key_file: open"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), testKey) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "fingerprint.key")
	var wg sync.WaitGroup
	keys := make([]config.Secret, 8)
	errs := make([]error, 8)
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if keys[i] != keys[0] || len(keys[i].Value()) != 64 {
			t.Fatalf("racing creators got different or short keys")
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	again, err := LoadOrCreateKey(path)
	if err != nil || again != keys[0] {
		t.Errorf("reloading gave another key (%v)", err)
	}
	if _, err := New(Config{KeyFile: path}); err != nil {
		t.Errorf("the created key is not accepted: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "shorter than") {
		t.Errorf("a short key file was accepted: %v", err)
	}
}

func TestWrap(t *testing.T) {
	r := newTest(t, testKey)
	clean := []byte(`GET /a HTTP/1.1`)
	dirty := []byte(`GET /b?api_key=` + apiKey + `&token=` + opaque + ` HTTP/1.1`)
	orig := append([]byte(nil), dirty...)
	recs := []ingest.Record{{Data: clean, Offset: 1}, {Data: dirty, Offset: 2}}
	var got []ingest.Record
	fail := true
	counted := 0
	emit := Wrap(func(_ context.Context, rs []ingest.Record) error {
		got = rs
		if fail {
			return errors.New("kafka down")
		}
		return nil
	}, r, func(n int) { counted += n })

	if err := emit(t.Context(), recs); err == nil {
		t.Fatal("the wrapped error was lost")
	}
	if counted != 0 {
		t.Errorf("counted %d secrets of an undelivered batch", counted)
	}
	fail = false
	if err := emit(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if counted != 2 {
		t.Errorf("counted %d, want 2", counted)
	}
	if !bytes.Equal(recs[1].Data, orig) || !bytes.Equal(dirty, orig) {
		t.Error("the caller's records or bytes were modified")
	}
	if &got[0].Data[0] != &clean[0] || got[1].Offset != 2 {
		t.Error("records were not passed through as they were")
	}
	if bytes.Contains(got[1].Data, []byte(apiKey)) || bytes.Contains(got[1].Data, []byte(opaque)) {
		t.Errorf("a secret reached emit: %s", got[1].Data)
	}
	// A batch with no secret is handed on as the same slice.
	if err := emit(t.Context(), recs[:1]); err != nil || &got[0] != &recs[0] {
		t.Errorf("a clean batch was copied (%v)", err)
	}
}

// planted is a secret FuzzRedact writes into lines around fuzzed bytes.
const planted = "PLANTEDs3cretVALUE42"

func FuzzRedact(f *testing.F) {
	for _, tc := range redactCases() {
		f.Add(tc.line)
	}
	f.Add(`{"a":"\x22Bearer`)
	f.Add("eyJ.eyJ.")
	f.Add("twfp_jwt_0123456789abcdef01234567.eyJ")
	r := newTest(f, testKey)
	f.Fuzz(func(t *testing.T, s string) {
		out, n := r.Redact([]byte(s))
		if n == 0 && string(out) != s {
			t.Fatalf("n == 0 but the line changed")
		}
		again, n2 := r.Redact(out)
		if n2 != 0 || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\n   in: %q\n once: %q\ntwice: %q", s, out, again)
		}
		for _, form := range []string{
			" api_key=" + planted + " ",
			` {"authorization":"Bearer ` + planted + `"} `,
			` {"password":"` + planted + `"} `,
			" Cookie: session=" + planted + "; ",
			" https://u:" + planted + "@h/ ",
		} {
			line := s + form + s
			out, _ := r.Redact([]byte(line))
			if bytes.Contains(out, []byte(planted)) {
				t.Fatalf("planted secret survived:\n in: %q\nout: %q", line, out)
			}
		}
	})
}
