package normalize_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var _ normalize.Normalizer = (*normalize.HAProxy)(nil)

// Helpers shared by the proxy normalizers' tests (haproxy, envoy, traefik,
// caddy, kong); named gw* so they cannot collide with other sources' tests.

// gwRecords splits a testdata file into records the way the file collector
// does: one per line, without the "\n", offsets in bytes.
func gwRecords(t testing.TB, source, path string) []ingest.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var recs []ingest.Record
	for off := 0; off < len(data); {
		line, _, _ := bytes.Cut(data[off:], []byte("\n"))
		recs = append(recs, ingest.Record{
			Data: line, Source: source, Collector: "file", Host: "gw-1",
			Origin: "/var/log/" + source + "/" + filepath.Base(path), Offset: int64(off),
		})
		off += len(line) + 1
	}
	return recs
}

// gwGolden normalizes every line of testdata/<source>/*.log and compares the
// results, one JSON value per line, with the matching .golden.json.
func gwGolden(t *testing.T, source string, n normalize.Normalizer) {
	paths, err := filepath.Glob("testdata/" + source + "/*.log")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			checkGoldenRecords(t, n, gwRecords(t, source, path), strings.TrimSuffix(path, ".log")+".golden.json",
				func(rec *ingest.Record, ev *schema.Event) { gwInvariants(t, source, rec, ev) })
		})
	}
}

// gwInvariants checks what every later stage relies on in a parsed event.
func gwInvariants(t *testing.T, source string, rec *ingest.Record, ev *schema.Event) {
	t.Helper()
	switch {
	case ev.HTTP.Response.StatusCode < 0 || ev.HTTP.Response.StatusCode > 999:
		t.Fatalf("status %d out of range", ev.HTTP.Response.StatusCode)
	case !ev.Timestamp.IsZero() && ev.Timestamp.Location() != time.UTC:
		t.Fatalf("@timestamp %v not UTC", ev.Timestamp)
	case ev.Event.ID != rec.ID() || ev.Trailwatch.Source != source || !strings.HasPrefix(ev.Event.Dataset, ev.Event.Module+"."):
		t.Fatalf("identity fields wrong: %+v / %q", ev.Event, ev.Trailwatch.Source)
	case ev.Trailwatch.Actor != ev.ActorKey():
		t.Fatalf("actor %q, want %q", ev.Trailwatch.Actor, ev.ActorKey())
	case ev.Event.Outcome != "success" && ev.Event.Outcome != "failure" && ev.Event.Outcome != "unknown":
		t.Fatalf("outcome %q", ev.Event.Outcome)
	case ev.Event.Duration < 0 || ev.HTTP.Response.Bytes < 0 || ev.HTTP.Request.Bytes < 0 || ev.HTTP.Response.Body.Bytes < 0:
		t.Fatalf("negative duration or byte count: %+v %+v", ev.Event, ev.HTTP)
	case ev.HTTP.Request.Method != "" && strings.ContainsAny(ev.HTTP.Request.Method, " \n"):
		t.Fatalf("method %q", ev.HTTP.Request.Method)
	}
	forEachString(reflect.ValueOf(ev).Elem(), func(s string) {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 %q in event", s)
		}
		if strings.Contains(s, "s3cr3t") {
			t.Fatalf("a secret leaked into the event: %q", s)
		}
	})
	assertSameJSON(t, ev)
}

// gwFuzz seeds f from the goldens and checks that n never panics, leaves dst
// alone on error, names the source in errors, and keeps the invariants.
func gwFuzz(f *testing.F, source string, n normalize.Normalizer) {
	paths, _ := filepath.Glob("testdata/" + source + "/*.log")
	for _, path := range paths {
		for _, rec := range gwRecords(f, source, path) {
			f.Add(rec.Data)
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rec := &ingest.Record{Data: line, Collector: "file", Host: "h", Origin: "fuzz", Offset: 7}
		dst := make([]schema.Event, 1, 2)
		dst[0].Event.ID = "kept"
		got, err := n.Normalize(dst, rec)
		if err != nil {
			if len(got) != 1 || got[0].Event.ID != "kept" {
				t.Fatalf("Normalize changed dst on error %v", err)
			}
			if !strings.HasPrefix(err.Error(), source+": ") {
				t.Fatalf("error %q does not name the source", err)
			}
			if len(err.Error()) > 512 {
				t.Fatalf("error text is %d bytes, unbounded?", len(err.Error()))
			}
			return
		}
		if len(got) != 2 || got[0].Event.ID != "kept" {
			t.Fatalf("Normalize returned %d events, want dst plus one", len(got))
		}
		gwInvariants(t, source, rec, &got[1])
	})
}

// gwBench measures one record through n over the lines of a testdata file.
func gwBench(b *testing.B, source, path string, n normalize.Normalizer, unit string) {
	var recs []ingest.Record // the lines that parse: the files mix in bad ones
	for _, r := range gwRecords(b, source, path) {
		if _, err := n.Normalize(nil, &r); err == nil {
			recs = append(recs, r)
		}
	}
	var size int64
	for _, r := range recs {
		size += int64(len(r.Data))
	}
	b.ReportAllocs()
	b.SetBytes(size / int64(len(recs)))
	var dst []schema.Event
	i := 0
	for b.Loop() {
		var err error
		dst, err = n.Normalize(dst[:0], &recs[i])
		if err != nil {
			b.Fatal(err)
		}
		if i++; i == len(recs) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// gwBadInput is the hostile input every proxy normalizer must reject with
// an error that names the source, never a panic.
func gwBadInput(t *testing.T, source string, n normalize.Normalizer, extra map[string]string) {
	cases := map[string]string{
		"empty":          "",
		"binary garbage": "\x00\x01\x02\xff\xfe\x7f{\x00",
		"1 MB line":      strings.Repeat("A", 1<<20),
		"JSON bomb":      strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000),
		"deep arrays":    `{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "}",
		"truncated JSON": `{"start_time":"2025-01-01T00:00:00Z","method":"GE`,
	}
	for k, v := range extra {
		cases[k] = v
	}
	for name, line := range cases {
		t.Run(name, func(t *testing.T) {
			dst := make([]schema.Event, 1, 4)
			dst[0].Event.ID = "kept"
			got, err := n.Normalize(dst, &ingest.Record{Data: []byte(line), Origin: "bad", Offset: 1})
			if err == nil {
				t.Fatalf("no error for %.60q: %+v", line, got[len(got)-1])
			}
			if !strings.HasPrefix(err.Error(), source+": ") || len(err.Error()) > 512 {
				t.Fatalf("error %q: want a short one starting %q", err, source+": ")
			}
			if len(got) != 1 || got[0].Event.ID != "kept" {
				t.Fatalf("Normalize changed dst on error")
			}
			if ev := dst[:2][1]; !reflect.DeepEqual(ev, schema.Event{}) {
				t.Errorf("failed parse left a partial event in dst's spare capacity")
			}
		})
	}
}

// gwOne normalizes one line and fails the test unless it gives one event.
func gwOne(t *testing.T, n normalize.Normalizer, line string) *schema.Event {
	t.Helper()
	evs, err := n.Normalize(nil, &ingest.Record{Data: []byte(line), Collector: "file", Host: "h", Origin: "t", Offset: 1})
	if err != nil {
		t.Fatalf("Normalize(%.80q): %v", line, err)
	}
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	return &evs[0]
}

// gwFreePort returns a loopback TCP port that was free a moment ago.
func gwFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// gwWaitPort polls until something accepts on addr or the deadline passes.
func gwWaitPort(t *testing.T, addr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("server exited before listening on %s", addr)
		case <-time.After(20 * time.Millisecond): // polling interval, not synchronisation
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listening on %s after 15s: %v", addr, err)
		}
	}
}

// gwStart runs a server process until the test ends; its output goes to
// out. The returned channel closes when it exits.
func gwStart(t *testing.T, out io.Writer, name string, args ...string) <-chan struct{} {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	return exited
}

const (
	gwToken    = "twfp_bearer_0123456789abcdef01234567"
	gwTokenHex = "0123456789abcdef01234567"
)

func TestHAProxyGolden(t *testing.T) {
	n, err := normalize.NewHAProxySpec(normalize.Spec{Type: "haproxy", Fields: map[string]string{
		"request.1": "Host", "request.2": "X-Forwarded-For", "request.3": "Authorization", "request.4": "X-Request-ID",
	}})
	if err != nil {
		t.Fatal(err)
	}
	gwGolden(t, "haproxy", n)
}

func TestHAProxy(t *testing.T) {
	const body = `10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in~ static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {api.example.com|198.51.100.7, 10.0.0.1|Bearer ` + gwToken + `|5f0c3b6e-1b6f-4c0e-9d7e-1c2b3a4d5e6f} {} "GET /v1/users?id=3 HTTP/1.1"`
	named, err := normalize.NewHAProxySpec(normalize.Spec{Fields: map[string]string{"request.1": "Host", "request.2": "X-Forwarded-For", "request.3": "Authorization", "request.4": "X-Request-ID"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		n     normalize.Normalizer
		line  string
		check func(t *testing.T, ev *schema.Event)
	}{
		{name: "plain line, named captures", n: named, line: body, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "@timestamp", ev.Timestamp, time.Date(2009, 2, 6, 12, 14, 14, 655e6, time.UTC))
			eq(t, "source.ip", ev.Source.IP, "10.0.1.2")
			eq(t, "source.port", ev.Source.Port, 33317)
			eq(t, "client.ip", ev.Client.IP, "198.51.100.7")
			eq(t, "url.domain", ev.URL.Domain, "api.example.com")
			eq(t, "http.request.id", ev.HTTP.Request.ID, "5f0c3b6e-1b6f-4c0e-9d7e-1c2b3a4d5e6f")
			eq(t, "credential", ev.Trailwatch.Credential.Fingerprint, gwTokenHex)
			eq(t, "actor", ev.Trailwatch.Actor, "cred:"+gwTokenHex)
			eq(t, "event.duration", ev.Event.Duration, int64(109*time.Millisecond))
			eq(t, "status", ev.HTTP.Response.StatusCode, 200)
			eq(t, "http.response.bytes", ev.HTTP.Response.Bytes, int64(2750))
			eq(t, "method", ev.HTTP.Request.Method, "GET")
			eq(t, "url.path", ev.URL.Path, "/v1/users")
			eq(t, "url.query", ev.URL.Query, "id=3")
			eq(t, "http.version", ev.HTTP.Version, "1.1")
			eq(t, "event.dataset", ev.Event.Dataset, "haproxy.log")
			eq(t, "related.ip", ev.Related.IP, []string{"10.0.1.2", "198.51.100.7"})
			x := ev.Trailwatch.Extra
			eq(t, "frontend", x["haproxy.frontend_name"], "http-in")
			eq(t, "ssl", x["haproxy.ssl"], "true")
			eq(t, "backend", x["haproxy.backend_name"], "static")
			eq(t, "server", x["haproxy.server_name"], "srv1")
			eq(t, "Tw", x["haproxy.total_waiting_time_ms"], "0")
			eq(t, "Tc", x["haproxy.connection_wait_time_ms"], "30")
			eq(t, "retries (0 is left out)", x["haproxy.connections.retries"], "")
			eq(t, "termination", x["haproxy.termination_state"], "----")
		}},
		{name: "syslog header, unnamed captures", n: normalize.NewHAProxy(), line: "<134>Nov 20 09:00:00 lb-1 haproxy[123]: " + body, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "observer.hostname", ev.Observer.Hostname, "lb-1")
			eq(t, "client.ip (IP-list heuristic)", ev.Client.IP, "198.51.100.7")
			eq(t, "credential (token anywhere)", ev.Trailwatch.Credential.Fingerprint, gwTokenHex)
			eq(t, "http.request.id (unnamed)", ev.HTTP.Request.ID, "")
		}},
		{name: "syslog without host, aborted request", n: normalize.NewHAProxy(), line: `<134>Nov  2 09:00:00 haproxy[7]: [::1]:5000 [06/Feb/2009:12:14:14.655] fe be/<NOSRV> -1/-1/-1/-1/+3000 -1 +0 - - CR-- 0/0/0/0/+1 0/0 "<BADREQ>"`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "source.ip", ev.Source.IP, "::1")
			eq(t, "status", ev.HTTP.Response.StatusCode, 0)
			eq(t, "outcome", ev.Event.Outcome, "unknown")
			eq(t, "server", ev.Trailwatch.Extra["haproxy.server_name"], "")
			eq(t, "duration", ev.Event.Duration, int64(3*time.Second))
			eq(t, "url.original", ev.URL.Original, "<BADREQ>")
		}},
		{name: "tcplog", n: normalize.NewHAProxy(), line: `10.0.0.9:4000 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "category", ev.Event.Category, []string{"network"})
			eq(t, "duration", ev.Event.Duration, int64(5007*time.Millisecond))
			eq(t, "destination.bytes", ev.Destination.Bytes, int64(212))
			eq(t, "mode", ev.Trailwatch.Extra["haproxy.mode"], "tcp")
		}},
		{name: "credential in the query string", n: normalize.NewHAProxy(), line: `10.0.0.9:4000 [06/Feb/2009:12:12:51.443] fe be/s 1/0/0/1/2 200 10 - - ---- 0/0/0/0/0 0/0 "GET /v1/items?api_key=` + gwToken + `&page=2 HTTP/1.1"`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "credential", ev.Trailwatch.Credential.Fingerprint, gwTokenHex)
			eq(t, "actor", ev.Trailwatch.Actor, "cred:"+gwTokenHex)
		}},
		{name: "hash escapes decoded", n: normalize.NewHAProxy(), line: `10.0.0.9:4000 [06/Feb/2009:12:12:51.443] fe be/s 1/0/0/1/2 404 10 - - ---- 0/0/0/0/0 0/0 "GET /a#22b#20c HTTP/1.0"`, check: func(t *testing.T, ev *schema.Event) {
			eq(t, "url.original", ev.URL.Original, `/a"b c`)
			eq(t, "outcome", ev.Event.Outcome, "failure")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, gwOne(t, tt.n, tt.line)) })
	}
}

func TestHAProxyErrors(t *testing.T) {
	gwBadInput(t, "haproxy", normalize.NewHAProxy(), map[string]string{
		"startup message":  "<133>Nov 20 09:00:00 haproxy[1]: Proxy fe started.",
		"bad date":         `10.0.0.9:4000 [06/Foo/2009:12:12:51.443] fe be/s 1/0/0/1/2 200 10 - - ---- 0/0/0/0/0 0/0 "GET / HTTP/1.0"`,
		"four timers":      `10.0.0.9:4000 [06/Feb/2009:12:12:51.443] fe be/s 1/0/0/1 200 10 - - ---- 0/0/0/0/0 0/0 "GET / HTTP/1.0"`,
		"bad status":       `10.0.0.9:4000 [06/Feb/2009:12:12:51.443] fe be/s 1/0/0/1/2 2x0 10 - - ---- 0/0/0/0/0 0/0 "GET / HTTP/1.0"`,
		"truncated":        `10.0.0.9:4000 [06/Feb/2009:12:12:51.443] fe be/s 1/0/0/1/2 200 10 - -`,
		"no request":       `10.0.0.9:4000 [06/Feb/2009:12:12:51.443] fe be/s 1/0/0/1/2 200 10 - - ---- 0/0/0/0/0 0/0 {a|b`,
		"bad PRI":          `<13x>Nov 20 09:00:00 haproxy[1]: x`,
		"invalid UTF-8 ip": "\xff\xfe:80 [06/Feb/2009:12:12:51.443] fe be/s 1/0/0/1/2 200 10 - - ---- 0/0/0/0/0 0/0 \"GET / HTTP/1.0\"",
	})
	for name, fields := range map[string]map[string]string{
		"bad key":    {"req.1": "Host"},
		"zero index": {"request.0": "Host"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := normalize.NewHAProxySpec(normalize.Spec{Fields: fields}); err == nil || !strings.Contains(err.Error(), "fields.") {
				t.Fatalf("error = %v, want one naming fields.<key>", err)
			}
		})
	}
	if _, err := normalize.NewHAProxySpec(normalize.Spec{Format: "clf"}); err == nil {
		t.Fatal("format clf accepted")
	}
}

func FuzzHAProxy(f *testing.F) {
	n, err := normalize.NewHAProxySpec(normalize.Spec{Fields: map[string]string{"request.1": "Host", "request.2": "X-Forwarded-For", "request.3": "Authorization"}})
	if err != nil {
		f.Fatal(err)
	}
	gwFuzz(f, "haproxy", n)
}

func BenchmarkHAProxy(b *testing.B) {
	gwBench(b, "haproxy", "testdata/haproxy/httplog.log", normalize.NewHAProxy(), "lines/s")
}

// TestHAProxyReal runs the real HAProxy in front of a Go backend, logging
// over UDP syslog to a socket the test reads, and normalizes what it sent.
func TestHAProxyReal(t *testing.T) {
	bin := testenv.Binary(t, "haproxy")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(backend.Close)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	port := gwFreePort(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global
  log %s local0
defaults
  mode http
  log global
  option httplog
  timeout connect 5s
  timeout client 5s
  timeout server 5s
frontend api
  bind 127.0.0.1:%d
  capture request header X-Forwarded-For len 64
  capture request header Authorization len 128
  capture request header X-Request-ID len 64
  default_backend app
backend app
  server s1 %s
`, udp.LocalAddr(), port, strings.TrimPrefix(backend.URL, "http://"))
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	exited := gwStart(t, &out, bin, "-db", "-f", cfgPath)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	gwWaitPort(t, addr, exited)

	for _, p := range []string{"/v1/orders?id=7", "/missing"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+gwToken)
		req.Header.Set("X-Forwarded-For", "198.51.100.7")
		req.Header.Set("X-Request-ID", "req-"+strconv.Itoa(len(p)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	n, err := normalize.NewHAProxySpec(normalize.Spec{Fields: map[string]string{
		"request.1": "X-Forwarded-For", "request.2": "Authorization", "request.3": "X-Request-ID",
	}})
	if err != nil {
		t.Fatal(err)
	}
	var evs []schema.Event
	buf := make([]byte, 65536)
	_ = udp.SetReadDeadline(time.Now().Add(15 * time.Second)) // bounds the wait if HAProxy never logs
	for len(evs) < 2 {
		k, _, err := udp.ReadFrom(buf)
		if err != nil {
			t.Fatalf("reading HAProxy's syslog (got %d events): %v\nhaproxy output:\n%s", len(evs), err, out.String())
		}
		line := bytes.TrimRight(buf[:k], "\n")
		if !bytes.Contains(line, []byte(" api app/")) {
			continue // startup and other non-access messages
		}
		evs, err = n.Normalize(evs, &ingest.Record{Data: line, Collector: "syslog", Host: "h", Origin: "udp", Offset: int64(len(evs))})
		if err != nil {
			t.Fatalf("normalizing %q: %v", line, err)
		}
	}
	for i, want := range []struct {
		path   string
		status int
		id     string
	}{{"/v1/orders", 200, "req-15"}, {"/missing", 404, "req-8"}} {
		ev := &evs[i]
		eq(t, "url.path", ev.URL.Path, want.path)
		eq(t, "status", ev.HTTP.Response.StatusCode, want.status)
		eq(t, "method", ev.HTTP.Request.Method, "GET")
		eq(t, "source.ip", ev.Source.IP, "127.0.0.1")
		eq(t, "client.ip", ev.Client.IP, "198.51.100.7")
		eq(t, "credential", ev.Trailwatch.Credential.Fingerprint, gwTokenHex)
		eq(t, "http.request.id", ev.HTTP.Request.ID, want.id)
		eq(t, "frontend", ev.Trailwatch.Extra["haproxy.frontend_name"], "api")
		eq(t, "server", ev.Trailwatch.Extra["haproxy.server_name"], "s1")
		if ev.Timestamp.IsZero() || ev.HTTP.Response.Bytes == 0 {
			t.Errorf("timestamp %v / bytes %d not set", ev.Timestamp, ev.HTTP.Response.Bytes)
		}
	}
}
