package normalize_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.Caddy)(nil)

func TestCaddyGolden(t *testing.T) { gwGolden(t, "caddy", normalize.NewCaddy()) }

func TestCaddy(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		check func(t *testing.T, ev *schema.Event)
	}{
		{name: "access with tls", line: `{"level":"info","ts":1732093200.123456,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"10.0.0.2","remote_port":"41342","client_ip":"198.51.100.7","proto":"HTTP/2.0","method":"GET","host":"api.example.com:8443","uri":"/v1/users?id=3","headers":{"User-Agent":["curl/8.5.0"],"X-Api-Key":["` + gwToken + `"],"Accept":["*/*"]},"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"api.example.com"}},"bytes_read":12,"user_id":"alice","duration":0.0015,"size":512,"status":200,"resp_headers":{"Content-Type":["application/json; charset=utf-8"]}}`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "@timestamp", ev.Timestamp, time.Date(2024, 11, 20, 9, 0, 0, 123456000, time.UTC))
			eq(t, "source.ip", ev.Source.IP, "10.0.0.2")
			eq(t, "source.port", ev.Source.Port, 41342)
			eq(t, "client.ip", ev.Client.IP, "198.51.100.7")
			eq(t, "method", ev.HTTP.Request.Method, "GET")
			eq(t, "url.path", ev.URL.Path, "/v1/users")
			eq(t, "url.domain", ev.URL.Domain, "api.example.com")
			eq(t, "url.port", ev.URL.Port, 8443)
			eq(t, "http.version", ev.HTTP.Version, "2.0")
			eq(t, "status", ev.HTTP.Response.StatusCode, 200)
			eq(t, "body bytes", ev.HTTP.Response.Body.Bytes, int64(512))
			eq(t, "request bytes", ev.HTTP.Request.Body.Bytes, int64(12))
			eq(t, "duration", ev.Event.Duration, int64(1500*time.Microsecond))
			eq(t, "user.name", ev.User.Name, "alice")
			eq(t, "user_agent", ev.UserAgent.Original, "curl/8.5.0")
			eq(t, "credential", ev.Trailwatch.Credential.Fingerprint, gwTokenHex)
			eq(t, "tls.version", ev.TLS.Version, "1.3")
			eq(t, "tls.cipher", ev.TLS.Cipher, "TLS_AES_128_GCM_SHA256")
			eq(t, "sni", ev.TLS.Client.ServerName, "api.example.com")
			eq(t, "mime", ev.HTTP.Response.MimeType, "application/json")
			eq(t, "dataset", ev.Event.Dataset, "caddy.access")
			eq(t, "related.ip", ev.Related.IP, []string{"10.0.0.2", "198.51.100.7"})
		}},
		{name: "string ts and duration", line: `{"ts":"2025-11-20T09:00:00.5Z","logger":"http.log.access","request":{"remote_ip":"::1","method":"POST","uri":"/x","headers":{"X-Forwarded-For":["203.0.113.9"],"Cookie":["a=1","sid=twfp_session_eeeeeeeeeeeeeeeeeeeeeeee"]}},"duration":"2.5ms","status":500}`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "@timestamp", ev.Timestamp, time.Date(2025, 11, 20, 9, 0, 0, 5e8, time.UTC))
			eq(t, "duration", ev.Event.Duration, int64(2500*time.Microsecond))
			eq(t, "client.ip from XFF", ev.Client.IP, "203.0.113.9")
			eq(t, "credential", ev.Trailwatch.Credential.Type, "session")
			eq(t, "outcome", ev.Event.Outcome, "failure")
		}},
	}
	n := normalize.NewCaddy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, gwOne(t, n, tt.line)) })
	}
}

func TestCaddyErrors(t *testing.T) {
	gwBadInput(t, "caddy", normalize.NewCaddy(), map[string]string{
		"other logger": `{"level":"info","ts":1732093200.1,"logger":"tls","msg":"cleaning storage unit"}`,
		"no ts":        `{"logger":"http.log.access","status":200}`,
		"bad status":   `{"logger":"http.log.access","ts":1,"status":"x"}`,
		"bad duration": `{"logger":"http.log.access","ts":1,"duration":"soon"}`,
		"text line":    `2025/11/20 09:00:00.000 INFO using provided configuration`,
		"unterminated": `{"logger":"http.log.access","ts":1,"request":{"uri":"/x`,
		"bad escape":   `{"logger":"http.log.access\q","ts":1}`,
	})
}

func FuzzCaddy(f *testing.F) { gwFuzz(f, "caddy", normalize.NewCaddy()) }

func BenchmarkCaddy(b *testing.B) {
	gwBench(b, "caddy", "testdata/caddy/access.log", normalize.NewCaddy(), "events/s")
}

// TestCaddyReal runs the real Caddy with a JSON access log, sends requests
// and normalizes the lines it wrote.
func TestCaddyReal(t *testing.T) {
	bin := testenv.Binary(t, "caddy")
	dir := t.TempDir()
	port := gwFreePort(t)
	logPath := filepath.Join(dir, "access.log")
	caddyfile := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %s
}
http://127.0.0.1:%d {
	log {
		output file %s
		format json
	}
	respond /missing "nope" 404
	respond "hello" 200
}
`, filepath.Join(dir, "data"), port, logPath)
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	t.Setenv("HOME", dir)
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "xdg-data"))
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg-config"))
	exited := gwStart(t, &out, bin, "run", "--config", cfg, "--adapter", "caddyfile")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	gwWaitPort(t, addr, exited)

	reqs := []struct {
		method, path string
		status       int
	}{{"GET", "/v1/orders?id=7", 200}, {"POST", "/missing", 404}}
	for _, r := range reqs {
		req, err := http.NewRequestWithContext(t.Context(), r.method, "http://"+addr+r.path, strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Api-Key", gwToken)
		req.Header.Set("User-Agent", "trailwatch-test/1")
		req.Header.Set("X-Request-Id", "rid-"+r.method)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	// Caddy writes the access line after the response; poll for both.
	var lines [][]byte
	deadline := time.Now().Add(15 * time.Second)
	for {
		data, _ := os.ReadFile(logPath)
		lines = bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
		if len(data) > 0 && len(lines) >= len(reqs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Caddy wrote %d access lines in 15s, want %d\ncaddy output:\n%s", len(lines), len(reqs), out.String())
		}
		select {
		case <-exited:
			t.Fatalf("caddy exited:\n%s", out.String())
		case <-time.After(20 * time.Millisecond): // polling interval, not synchronisation
		}
	}
	n := normalize.NewCaddy()
	for i, r := range reqs {
		evs, err := n.Normalize(nil, &ingest.Record{Data: lines[i], Collector: "file", Host: "h", Origin: logPath, Offset: int64(i)})
		if err != nil {
			t.Fatalf("normalizing %s: %v", lines[i], err)
		}
		ev := &evs[0]
		eq(t, "method", ev.HTTP.Request.Method, r.method)
		eq(t, "status", ev.HTTP.Response.StatusCode, r.status)
		eq(t, "url.original", ev.URL.Original, r.path)
		eq(t, "source.ip", ev.Source.IP, "127.0.0.1")
		eq(t, "url.domain", ev.URL.Domain, "127.0.0.1")
		eq(t, "user_agent", ev.UserAgent.Original, "trailwatch-test/1")
		eq(t, "http.request.id", ev.HTTP.Request.ID, "rid-"+r.method)
		eq(t, "credential", ev.Trailwatch.Credential.Fingerprint, gwTokenHex)
		eq(t, "http.version", ev.HTTP.Version, "1.1")
		if ev.Timestamp.IsZero() || time.Since(ev.Timestamp) > time.Hour || ev.Event.Duration <= 0 || ev.HTTP.Response.Body.Bytes == 0 {
			t.Errorf("timestamp %v / duration %d / bytes %d implausible", ev.Timestamp, ev.Event.Duration, ev.HTTP.Response.Body.Bytes)
		}
	}
	t.Logf("caddy wrote: %s", lines[0])
}
