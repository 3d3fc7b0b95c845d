package kibana

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// There is no Kibana in tests: the importer is checked against an
// httptest server that verifies what Kibana's import API requires (POST,
// the space prefix, overwrite=true, kbn-xsrf, auth, a multipart "file"
// part holding the NDJSON) and answers in Kibana's documented shape.

// importServer records the request and answers with status and body.
func importServer(t *testing.T, status int, answer string, got *http.Request, file *[]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = *r.Clone(r.Context())
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			t.Errorf("Content-Type %q, want multipart/form-data", r.Header.Get("Content-Type"))
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("multipart: %v", err)
				return
			}
			if p.FormName() == "file" && strings.HasSuffix(p.FileName(), ".ndjson") {
				*file, _ = io.ReadAll(p)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestImport(t *testing.T) {
	objs, err := Objects()
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"success":true,"successCount":` + itoa(len(objs)) + `,"successResults":[]}`
	refused := `{"success":false,"successCount":1,"errors":[` +
		`{"id":"trailwatch-overview","type":"dashboard","title":"trailwatch: overview","error":{"type":"missing_references","references":[{"type":"lens","id":"trailwatch-events-total"}]}},` +
		`{"id":"trailwatch-by-ip","type":"lens","title":"Activity by source IP","error":{"type":"unknown","message":"bad state"}}]}`
	tests := []struct {
		name      string
		cfg       Config
		status    int
		answer    string
		wantPath  string
		wantAuth  string
		wantErr   []string
		wantCount int
	}{
		{name: "default space, api key", cfg: Config{APIKey: "c2VjcmV0LWtleQ=="}, status: 200, answer: ok,
			wantPath: "/api/saved_objects/_import", wantAuth: "ApiKey c2VjcmV0LWtleQ==", wantCount: len(objs)},
		{name: "named space, basic auth", cfg: Config{Space: "security", Username: "elastic", Password: "hunter2"}, status: 200, answer: ok,
			wantPath: "/s/security/api/saved_objects/_import", wantAuth: "Basic ZWxhc3RpYzpodW50ZXIy", wantCount: len(objs)},
		{name: "objects refused", cfg: Config{}, status: 200, answer: refused, wantPath: "/api/saved_objects/_import",
			wantErr: []string{"2 of 3 objects refused", "dashboard trailwatch-overview", "missing_references", "[missing lens trailwatch-events-total]", "lens trailwatch-by-ip", "bad state"}, wantCount: 1},
		{name: "unauthorized", cfg: Config{Username: "elastic", Password: "hunter2"}, status: 401,
			answer:   `{"statusCode":401,"error":"Unauthorized","message":"[security_exception] unable to authenticate user"}`,
			wantPath: "/api/saved_objects/_import", wantAuth: "Basic ZWxhc3RpYzpodW50ZXIy", wantErr: []string{"401 Unauthorized", "unable to authenticate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req http.Request
			var file []byte
			tt.cfg.URL = importServer(t, tt.status, tt.answer, &req, &file) + "/"
			im, err := New(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := im.Import(t.Context())
			if req.Method != http.MethodPost || req.URL.Path != tt.wantPath || req.URL.Query().Get("overwrite") != "true" {
				t.Errorf("request %s %s, want POST %s?overwrite=true", req.Method, req.URL, tt.wantPath)
			}
			if req.Header.Get("kbn-xsrf") == "" {
				t.Errorf("no kbn-xsrf header")
			}
			if got := req.Header.Get("Authorization"); got != tt.wantAuth {
				t.Errorf("Authorization %q, want %q", got, tt.wantAuth)
			}
			want, _ := Assets()
			if !bytes.Equal(file, want) {
				t.Errorf("file part has %d bytes, want the %d bytes of the assets", len(file), len(want))
			}
			if res.SuccessCount != tt.wantCount {
				t.Errorf("SuccessCount %d, want %d", res.SuccessCount, tt.wantCount)
			}
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Import = nil, want an error with %v", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "unset is valid", cfg: Config{}},
		{name: "full", cfg: Config{URL: "https://kibana:5601", Space: "sec-ops", APIKey: "k"}},
		{name: "everything wrong", cfg: Config{URL: "kibana:5601", Space: "Sec Ops", Password: "p", PasswordFile: "/f", APIKey: "k", APIKeyFile: "/g", Timeout: -1},
			want: []string{"url:", "space:", "password:", "api_key:", "timeout:"}},
		{name: "credentials in url", cfg: Config{URL: "https://elastic:pw@kibana"}, want: []string{"url: must not hold credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want %q", err, w)
				}
			}
		})
	}
}

func TestDiscoverURL(t *testing.T) {
	first := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	last := first.Add(50 * time.Second)
	tests := []struct {
		name      string
		alert     schema.Alert
		wantQuery string
		wantFrom  string
		wantTo    string
	}{
		{
			name: "group key fields, sorted, quoted",
			alert: schema.Alert{Trailwatch: schema.AlertTrailwatch{FirstSeen: first, LastSeen: last,
				GroupKey: map[string]string{"source.ip": "203.0.113.9", "user.name": `o'brien "ob"`},
				EventIDs: []string{"e1"}}},
			wantQuery: `source.ip:"203.0.113.9" and user.name:"o'brien \"ob\""`,
			wantFrom:  "2024-05-01T09:59:00.000Z", wantTo: "2024-05-01T10:01:50.000Z",
		},
		{
			name:      "sample event ids without a group key",
			alert:     schema.Alert{Trailwatch: schema.AlertTrailwatch{FirstSeen: first, LastSeen: last, EventIDs: []string{"e1", "e2!"}}},
			wantQuery: `event.id:("e1" or "e2!")`,
			wantFrom:  "2024-05-01T09:59:00.000Z", wantTo: "2024-05-01T10:01:50.000Z",
		},
		{
			name:      "actor only, time from @timestamp",
			alert:     schema.Alert{Timestamp: first, Trailwatch: schema.AlertTrailwatch{Actor: "cred:ab12"}},
			wantQuery: `trailwatch.actor:"cred:ab12"`,
			wantFrom:  "2024-05-01T09:59:00.000Z", wantTo: "2024-05-01T10:01:00.000Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DiscoverURL("https://kibana.example/s/sec/", tt.alert)
			prefix := "https://kibana.example/s/sec/app/discover#/?"
			if !strings.HasPrefix(got, prefix) {
				t.Fatalf("URL %q does not start with %q", got, prefix)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, "+") {
				t.Errorf("URL %q encodes spaces as + (Kibana keeps a plus)", got)
			}
			params, err := url.ParseQuery(strings.TrimPrefix(u.Fragment, "/?"))
			if err != nil {
				t.Fatal(err)
			}
			g, a := params.Get("_g"), params.Get("_a")
			wantG := "(time:(from:'" + tt.wantFrom + "',to:'" + tt.wantTo + "'))"
			if g != wantG {
				t.Errorf("_g = %s, want %s", g, wantG)
			}
			wantA := "query:(language:kuery,query:" + risonString(tt.wantQuery) + ")"
			if !strings.Contains(a, wantA) || !strings.Contains(a, "dataViewId:'trailwatch-events'") {
				t.Errorf("_a = %s, want the events data view and %s", a, wantA)
			}
		})
	}
	if got := DiscoverURL("", schema.Alert{}); got != "" {
		t.Errorf("DiscoverURL with no base = %q, want empty", got)
	}
}

// TestRisonString pins the rison escapes a query depends on.
func TestRisonString(t *testing.T) {
	for in, want := range map[string]string{`a`: `'a'`, `it's`: `'it!'s'`, `wow!`: `'wow!!'`, `x:"y"`: `'x:"y"'`} {
		if got := risonString(in); got != want {
			t.Errorf("risonString(%q) = %s, want %s", in, got, want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
