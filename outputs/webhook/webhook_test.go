package webhook

import (
	"bufio"
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize/schema"
	"github.com/trailwatch/trailwatch/outputs/route"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func testAlert() schema.Alert {
	return schema.Alert{
		Event:  schema.EventMeta{ID: "alert-1"},
		Rule:   schema.Rule{ID: "leaked-key", Name: "Key used from two countries"},
		Source: schema.Endpoint{IP: "203.0.113.9"},
		Tags:   []string{"attack.t1078"},
		Trailwatch: schema.AlertTrailwatch{
			Severity: "critical", Actor: "cred:fp1", Count: 3,
			Credential: schema.Credential{Fingerprint: "fp1", ID: "AKIA/EXAMPLE"},
			Routes:     []string{"revoke-key"},
		},
	}
}

// receiver is an httptest server answering with status and recording
// each request.
type receiver struct {
	mu     sync.Mutex
	status int
	reqs   []received
}

type received struct {
	method, path string
	header       http.Header
	body         []byte
}

func newReceiver(t *testing.T, status int) (*receiver, *httptest.Server) {
	t.Helper()
	r := &receiver{status: status}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{req.Method, req.URL.EscapedPath(), req.Header.Clone(), b})
		st := r.status
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(s.Close)
	return r, s
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func TestWebhookPostsSignedTemplatedJSON(t *testing.T) {
	rec, srv := newReceiver(t, 204)
	n, err := New(Config{
		Name: "soar", URL: config.Secret(srv.URL + "/hook?token=SECRET"), Secret: "k3y",
		Template: `{"rule": {{ json .Rule.ID }}, "name": {{ json .Rule.Name }}, "ip": {{ json .Source.IP }}, "count": {{ .Trailwatch.Count }}}`,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(t.Context()) })
	a := testAlert()
	a.Rule.Name = `quote " and <tag>`
	if retry, err := n.Notify(t.Context(), a, a); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	got := rec.all()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1 (the same alert twice is sent once)", len(got))
	}
	var body map[string]any
	if err := json.Unmarshal(got[0].body, &body); err != nil {
		t.Fatalf("body is not JSON: %s", got[0].body)
	}
	if body["name"] != a.Rule.Name || body["count"] != float64(3) || body["ip"] != "203.0.113.9" {
		t.Errorf("body = %v", body)
	}
	want := Sign("k3y", got[0].body)
	if sig := got[0].header.Get("X-Trailwatch-Signature"); !hmac.Equal([]byte(sig), []byte(want)) {
		t.Errorf("signature %q, want %q", sig, want)
	}
	if got[0].header.Get("X-Trailwatch-Alert-Id") != "alert-1" {
		t.Error("no alert id header")
	}
}

func TestWebhookRetryClassification(t *testing.T) {
	tests := []struct {
		status int
		retry  bool
	}{
		{status: 500, retry: true},
		{status: 503, retry: true},
		{status: 429, retry: true},
		{status: 400},
		{status: 404},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			_, srv := newReceiver(t, tt.status)
			n, err := New(Config{Name: "w", URL: config.Secret(srv.URL + "/SECRET-path")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close(t.Context()) })
			retry, err := n.Notify(t.Context(), testAlert())
			if err == nil || retry != tt.retry {
				t.Fatalf("Notify = %v, %v; want retry=%v", retry, err, tt.retry)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks the URL: %v", err)
			}
		})
	}
}

func TestWebhookRefusesBadBodies(t *testing.T) {
	rec, srv := newReceiver(t, 200)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "not JSON", cfg: Config{Template: `{"rule": {{ .Rule.ID }}}`}, want: "not JSON"},
		{name: "too large", cfg: Config{MaxBodyBytes: 10}, want: "exceeds max_body_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Name, tt.cfg.URL = "w", config.Secret(srv.URL)
			n, err := New(tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Notify(t.Context(), testAlert())
			if err == nil || retry || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Notify = %v, %v; want permanent %q", retry, err, tt.want)
			}
		})
	}
	if len(rec.all()) != 0 {
		t.Error("a refused body was sent")
	}
}

func readAudit(t *testing.T, path string) []AuditRecord {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []AuditRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func outcomes(rs []AuditRecord) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Outcome)
	}
	return strings.Join(s, ",")
}

func TestActions(t *testing.T) {
	const urlTmpl = `{{ .Trailwatch.Credential.ID | pathescape }}/revoke`
	tests := []struct {
		name     string
		dryRun   bool
		status   int
		allowed  func(host string) []string
		match    route.Match
		routes   []string // on the alert
		retry    bool
		wantErr  bool
		calls    int
		outcomes string
	}{
		{name: "dry run by default", dryRun: true, status: 200, calls: 0, outcomes: "dry-run"},
		{name: "live call", status: 200, calls: 1, outcomes: "attempted,succeeded"},
		{name: "host not allowed", status: 200, allowed: func(string) []string { return []string{"idp.internal"} }, wantErr: true, calls: 0, outcomes: "refused"},
		{name: "5xx is retryable", status: 503, wantErr: true, retry: true, calls: 1, outcomes: "attempted,failed"},
		{name: "4xx is not", status: 403, wantErr: true, calls: 1, outcomes: "attempted,failed"},
		{name: "not triggered", status: 200, routes: []string{"other"}, calls: 0, outcomes: ""},
		{name: "triggered by match", status: 200, routes: []string{"other"}, match: route.Match{Rules: []string{"leaked-key"}}, calls: 1, outcomes: "attempted,succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, srv := newReceiver(t, tt.status)
			u, _ := url.Parse(srv.URL)
			allowed := []string{u.Host}
			if tt.allowed != nil {
				allowed = tt.allowed(u.Host)
			}
			audit := filepath.Join(t.TempDir(), "audit.ndjson")
			x, err := NewActions(ActionsConfig{
				DryRun: tt.dryRun, AllowedHosts: allowed, AuditFile: audit,
				Actions: []Action{{Name: "revoke-key", URL: srv.URL + "/keys/" + urlTmpl, Match: tt.match, Token: "SECRET-token",
					Body: `{"reason": {{ json .Rule.Name }}, "alert": {{ json .Event.ID }}}`}},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = x.Close(context.Background()) })
			a := testAlert()
			if tt.routes != nil {
				a.Trailwatch.Routes = tt.routes
			}
			retry, err := x.Notify(t.Context(), a)
			if (err != nil) != tt.wantErr || retry != tt.retry {
				t.Fatalf("Notify = %v, %v; want err=%v retry=%v", retry, err, tt.wantErr, tt.retry)
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks the token: %v", err)
			}
			got := rec.all()
			if len(got) != tt.calls {
				t.Fatalf("%d calls, want %d", len(got), tt.calls)
			}
			if tt.calls > 0 {
				if got[0].method != "POST" || got[0].path != "/keys/AKIA%2FEXAMPLE/revoke" || got[0].header.Get("Authorization") != "Bearer SECRET-token" {
					t.Errorf("call = %s %s auth=%q", got[0].method, got[0].path, got[0].header.Get("Authorization"))
				}
			}
			recs := readAudit(t, audit)
			if outcomes(recs) != tt.outcomes {
				t.Errorf("audit outcomes %q, want %q", outcomes(recs), tt.outcomes)
			}
			for _, r := range recs {
				if r.AlertID != "alert-1" || r.Action != "revoke-key" {
					t.Errorf("audit record lacks the alert or action: %+v", r)
				}
			}
			if err == nil && tt.calls > 0 {
				// A retried batch does not act twice.
				if _, err := x.Notify(t.Context(), a); err != nil || len(rec.all()) != tt.calls {
					t.Errorf("retry acted again (%d calls, %v)", len(rec.all()), err)
				}
			}
		})
	}
}

func TestActionsConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ActionsConfig
		want string
	}{
		{name: "no allowlist", cfg: ActionsConfig{Actions: []Action{{Name: "a", URL: "https://x/"}}}, want: "allowed_hosts: required"},
		{name: "bad template", cfg: ActionsConfig{AllowedHosts: []string{"x"}, Actions: []Action{{Name: "a", URL: "https://x/{{"}}}, want: "actions[0].url:"},
		{name: "bad method", cfg: ActionsConfig{AllowedHosts: []string{"x"}, Actions: []Action{{Name: "a", URL: "https://x/", Method: "TRACE"}}}, want: "actions[0].method"},
		{name: "duplicate", cfg: ActionsConfig{AllowedHosts: []string{"x"}, Actions: []Action{{Name: "a", URL: "u"}, {Name: "a", URL: "u"}}}, want: "used twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	if err := (Config{Name: "w", URL: "ftp://SECRET"}).Validate(); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("webhook Validate = %v", err)
	}
}
