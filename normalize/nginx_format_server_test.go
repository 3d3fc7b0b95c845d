package normalize_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// The formats the real-server tests configure; the goldens use them too.
const (
	lfNginxCustom = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" rt=$request_time ua="$upstream_addr" us="$upstream_status" key="$http_x_api_key"`
	lfNginxJSON   = `{"time":"$time_iso8601","remote_addr":"$remote_addr","remote_user":"$remote_user","request":"$request","status":$status,"body_bytes_sent":$body_bytes_sent,"request_time":$request_time,"upstream_addr":"$upstream_addr","upstream_response_time":"$upstream_response_time","http_referer":"$http_referer","http_user_agent":"$http_user_agent","http_x_api_key":"$http_x_api_key","host":"$host","request_id":"$request_id","ssl_protocol":"$ssl_protocol"}`
	lfAPIKey      = "twfp_apikey_0123456789abcdef01234567"
	lfOddUA       = `UA "q" ✓ \ end`
)

// lfRequests sends the requests both real-server tests make: basic auth
// with a query string and an API key token, a proxied (nginx) or static
// (apache) request with an awkward user agent, and a refused POST.
func lfRequests(t *testing.T, port int, second string) {
	t.Helper()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	c := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path string, set func(*http.Request)) {
		req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader("a=b"))
		if err != nil {
			t.Fatal(err)
		}
		set(req)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do(http.MethodGet, "/api/v1/orders?id=7&x=1", func(r *http.Request) {
		r.SetBasicAuth("alice", "s3cret")
		r.Header.Set("X-API-Key", lfAPIKey)
		r.Header.Set("User-Agent", "trailwatch-test/1.0")
		r.Header.Set("Referer", "https://app.example.com/")
	})
	do(http.MethodGet, second, func(r *http.Request) { r.Header.Set("User-Agent", lfOddUA) })
	do(http.MethodPost, "/login", func(r *http.Request) { r.Header.Set("User-Agent", "curl/8.5.0") })
}

// lfCheckServerEvents asserts what every log of the three requests must
// say, whatever its format.
func lfCheckServerEvents(t *testing.T, evs []schema.Event, dataset string, withKey bool, secondPath string, secondStatus int) {
	t.Helper()
	if len(evs) != 3 {
		t.Fatalf("got %d events, want 3", len(evs))
	}
	// A server may log the requests out of order (Apache logs a kept-alive
	// connection's request late): put them in request order by user agent.
	order := map[string]int{"trailwatch-test/1.0": 0, lfOddUA: 1, "curl/8.5.0": 2}
	slices.SortFunc(evs, func(a, b schema.Event) int {
		return order[a.UserAgent.Original] - order[b.UserAgent.Original]
	})
	now := time.Now()
	for i := range evs {
		if d := now.Sub(evs[i].Timestamp); d < -time.Minute || d > time.Minute {
			t.Errorf("event %d @timestamp %v is not now", i, evs[i].Timestamp)
		}
		eq(t, "source.ip", evs[i].Source.IP, "127.0.0.1")
		eq(t, "event.dataset", evs[i].Event.Dataset, dataset)
	}
	a := &evs[0]
	eq(t, "user.name", a.User.Name, "alice")
	eq(t, "related.user", a.Related.User, []string{"alice"})
	eq(t, "http.request.method", a.HTTP.Request.Method, "GET")
	eq(t, "url.path", a.URL.Path, "/api/v1/orders")
	eq(t, "url.query", a.URL.Query, "id=7&x=1")
	eq(t, "http.version", a.HTTP.Version, "1.1")
	eq(t, "http.response.status_code", a.HTTP.Response.StatusCode, 200)
	eq(t, "event.outcome", a.Event.Outcome, "success")
	eq(t, "http.request.referrer", a.HTTP.Request.Referrer, "https://app.example.com/")
	eq(t, "user_agent.original", a.UserAgent.Original, "trailwatch-test/1.0")
	if withKey {
		eq(t, "trailwatch.credential", a.Trailwatch.Credential, schema.Credential{Fingerprint: "0123456789abcdef01234567", Type: "apikey"})
		eq(t, "trailwatch.actor", a.Trailwatch.Actor, "cred:0123456789abcdef01234567")
	} else {
		eq(t, "trailwatch.actor", a.Trailwatch.Actor, "user:alice")
	}
	b := &evs[1]
	eq(t, "user_agent.original", b.UserAgent.Original, lfOddUA)
	eq(t, "url.path", b.URL.Path, secondPath)
	eq(t, "http.response.status_code", b.HTTP.Response.StatusCode, secondStatus)
	eq(t, "tags", b.Tags, []string(nil))
	c := &evs[2]
	eq(t, "http.request.method", c.HTTP.Request.Method, "POST")
	eq(t, "http.response.status_code", c.HTTP.Response.StatusCode, 401)
	eq(t, "event.outcome", c.Event.Outcome, "failure")
	eq(t, "trailwatch.actor", c.Trailwatch.Actor, "ip:127.0.0.1")
}

// TestNginxRealServer runs Debian's nginx with the combined, a custom and
// an escape=json log_format, sends real requests, and normalizes what
// nginx wrote.
func TestNginxRealServer(t *testing.T) {
	bin := testenv.Binary(t, "nginx")
	dir := t.TempDir()
	port, up := lfFreePort(t), lfFreePort(t)
	conf := `user root;
daemon off;
worker_processes 1;
pid ` + dir + `/nginx.pid;
error_log ` + dir + `/error.log warn;
events { worker_connections 64; }
http {
  client_body_temp_path ` + dir + `/body;
  proxy_temp_path ` + dir + `/proxy;
  fastcgi_temp_path ` + dir + `/fastcgi;
  uwsgi_temp_path ` + dir + `/uwsgi;
  scgi_temp_path ` + dir + `/scgi;
  log_format trail '` + lfNginxCustom + `';
  log_format trailjson escape=json '` + lfNginxJSON + `';
  server {
    listen 127.0.0.1:` + strconv.Itoa(port) + `;
    access_log ` + dir + `/combined.log combined;
    access_log ` + dir + `/custom.log trail;
    access_log ` + dir + `/json.log trailjson;
    location / { return 200 "ok\n"; }
    location = /login { return 401; }
    location /up/ { proxy_pass http://127.0.0.1:` + strconv.Itoa(up) + `; }
  }
  server {
    listen 127.0.0.1:` + strconv.Itoa(up) + `;
    access_log off;
    location / { return 204; }
  }
}
`
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	lfServe(t, port, bin, "-p", dir, "-c", confPath)
	lfRequests(t, port, "/up/items?page=2")

	custom, err := normalize.NewNginxFormat(lfNginxCustom)
	if err != nil {
		t.Fatal(err)
	}
	jsonN, err := normalize.Build(normalize.Spec{Type: "nginx", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		n       normalize.Normalizer
		withKey bool
	}{
		{name: "combined", file: "combined.log", n: normalize.NewNginx()},
		{name: "custom", file: "custom.log", n: custom, withKey: true},
		{name: "json", file: "json.log", n: jsonN, withKey: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			lines := lfWaitLines(t, path, 3)
			t.Logf("%s:\n%s", tt.file, strings.Join(lines, "\n"))
			evs := lfNormalizeLines(t, tt.n, path, lines)
			lfCheckServerEvents(t, evs, "nginx.access", tt.withKey, "/up/items", 204)
			if tt.name == "combined" {
				return
			}
			b := &evs[1]
			eq(t, "trailwatch.extra.upstream_addr", b.Trailwatch.Extra["upstream_addr"], "127.0.0.1:"+strconv.Itoa(up))
			if tt.name == "json" {
				eq(t, "url.domain", b.URL.Domain, "127.0.0.1")
				if len(b.HTTP.Request.ID) != 32 {
					t.Errorf("http.request.id = %q, want nginx's 32-hex $request_id", b.HTTP.Request.ID)
				}
			}
		})
	}
}
