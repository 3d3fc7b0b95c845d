package httpin

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trailwatch/trailwatch/internal/config"
)

func TestBodies(t *testing.T) {
	kong := kongEntry(t)
	// Kong with queue.max_batch_size > 1 posts a JSON array of entries; the
	// elements must come out byte for byte, inner white space included.
	kongPretty := []byte("{\n  \"client_ip\": \"198.51.100.23\",\n  \"request\": {\"method\": \"GET\"}\n}")
	kongBatch := slices.Concat([]byte("[\n  "), kong, []byte(" ,\n"), kongPretty, []byte("\n]\n"))
	tests := []struct {
		name        string
		path        string
		contentType string
		encoding    string
		body        []byte
		wantSource  string
		want        []string
	}{
		{
			name: "kong single object", path: "/kong", contentType: "application/json; charset=utf-8",
			body: append(bytes.Clone(kong), '\n'), wantSource: "kong", want: []string{string(kong)},
		},
		{
			name: "kong batch array", path: "/kong", contentType: "application/json",
			body: kongBatch, wantSource: "kong", want: []string{string(kong), string(kongPretty)},
		},
		{
			name: "json array of mixed values", path: "/kong", contentType: "application/json",
			body:       []byte(`[{"a":"]\"}"},[1,[2]] , "s\\" ,42,true,null]`),
			wantSource: "kong", want: []string{`{"a":"]\"}"}`, `[1,[2]]`, `"s\\"`, `42`, `true`, `null`},
		},
		{
			name: "json concatenated objects", path: "/kong", contentType: "application/json",
			body: []byte("{\"a\":1}\n{\"b\":2}{\"c\":3}\n"), wantSource: "kong",
			want: []string{`{"a":1}`, `{"b":2}`, `{"c":3}`},
		},
		{
			name: "empty array", path: "/kong", contentType: "application/json", body: []byte(" [ ] "),
		},
		{
			name: "ndjson", path: "/kong", contentType: "application/x-ndjson",
			body:       []byte("{\"a\":1}\r\n\n   \n {\"b\":[2]} \n{\"c\":3}"),
			wantSource: "kong", want: []string{`{"a":1}`, `{"b":[2]}`, `{"c":3}`},
		},
		{
			name: "ndjson keeps an invalid line for the dead-letter topic", path: "/kong", contentType: "application/x-ndjson",
			body: []byte("{\"a\":1}\n{not json\n"), wantSource: "kong", want: []string{`{"a":1}`, `{not json`},
		},
		{
			name: "text lines", path: "/ingest", contentType: "text/plain; charset=utf-8",
			body:       []byte("203.0.113.9 - - [10/Oct/2025:13:55:36 +0000] \"GET / HTTP/1.1\" 200 5\r\n\n  indented line \nlast"),
			wantSource: "nginx",
			want:       []string{`203.0.113.9 - - [10/Oct/2025:13:55:36 +0000] "GET / HTTP/1.1" 200 5`, `  indented line `, `last`},
		},
		{
			name: "no content type, sniffed json", path: "/kong",
			body: []byte(` [{"a":1}]`), wantSource: "kong", want: []string{`{"a":1}`},
		},
		{
			name: "no content type, sniffed text", path: "/ingest",
			body: []byte("line one\nline two\n"), wantSource: "nginx", want: []string{"line one", "line two"},
		},
		{
			name: "gzip ndjson", path: "/kong", contentType: "application/x-ndjson", encoding: "gzip",
			body: gzipped(t, []byte("{\"a\":1}\n{\"b\":2}\n")), wantSource: "kong", want: []string{`{"a":1}`, `{"b":2}`},
		},
		{
			name: "gzip json array", path: "/kong", contentType: "application/json", encoding: "x-gzip",
			body: gzipped(t, kongBatch), wantSource: "kong", want: []string{string(kong), string(kongPretty)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s sink
			srv := start(t, testConfig(), s.emit, nil)
			resp := srv.post(t, request{path: tt.path, contentType: tt.contentType, encoding: tt.encoding, body: tt.body})
			if resp.status != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", resp.status, resp.body)
			}
			if want := `{"accepted":` + strconv.Itoa(len(tt.want)) + "}\n"; resp.body != want {
				t.Errorf("body %q, want %q", resp.body, want)
			}
			if got := s.data(); !slices.Equal(got, tt.want) {
				t.Fatalf("records:\n%q\nwant:\n%q", got, tt.want)
			}
			for i, r := range s.records() {
				if r.Source != tt.wantSource || r.Collector != "http" || r.Host != "testhost" ||
					r.Offset != int64(i) || r.Truncated || r.Observed.IsZero() ||
					!strings.HasPrefix(r.Stream, "http"+tt.path+"/") || len(r.Stream) != len("http"+tt.path+"/")+32 ||
					r.Origin != "127.0.0.1"+tt.path {
					t.Errorf("record %d provenance: %+v", i, r)
				}
			}
		})
	}
}

func TestRouting(t *testing.T) {
	var s sink
	srv := start(t, testConfig(), s.emit, nil)
	tests := []struct {
		name   string
		method string
		path   string
		want   int
	}{
		{"unknown path", http.MethodPost, "/nope", http.StatusNotFound},
		{"GET on a route", http.MethodGet, "/kong", http.StatusMethodNotAllowed},
		{"PUT on a route", http.MethodPut, "/kong", http.StatusOK},
		{"healthz", http.MethodGet, "/healthz", http.StatusOK},
		{"POST healthz", http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.url+tt.path, strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
			}
		})
	}
	t.Run("unsupported media type and encoding", func(t *testing.T) {
		for _, r := range []request{
			{path: "/kong", contentType: "application/x-www-form-urlencoded", body: []byte("a=1")},
			{path: "/kong", contentType: "application/json", encoding: "br", body: []byte("{}")},
		} {
			if resp := srv.post(t, r); resp.status != http.StatusUnsupportedMediaType {
				t.Errorf("%s / %s: status %d, want 415", r.contentType, r.encoding, resp.status)
			}
		}
	})
	if st := srv.c.Stats(); st.Unsupported != 2 {
		t.Errorf("Stats.Unsupported = %d, want 2", st.Unsupported)
	}
}

func TestAuth(t *testing.T) {
	tokensFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokensFile, []byte("# shippers\n\nfrom-file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Tokens = []config.Secret{"inline-token"}
	cfg.TokensFile = tokensFile
	var s sink
	srv := start(t, cfg, s.emit, nil)
	tests := []struct {
		name       string
		header     string
		want       int
		wantChalng string
	}{
		{"missing", "", http.StatusUnauthorized, `Bearer realm="trailwatch"`},
		{"basic scheme", "Basic dXNlcjpwYXNz", http.StatusUnauthorized, `Bearer realm="trailwatch"`},
		{"wrong", "Bearer inline-tokeN", http.StatusUnauthorized, `Bearer realm="trailwatch", error="invalid_token"`},
		{"prefix of a token", "Bearer inline", http.StatusUnauthorized, `Bearer realm="trailwatch", error="invalid_token"`},
		{"inline", "Bearer inline-token", http.StatusOK, ""},
		{"from file, lower-case scheme", "bearer from-file-token", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.url+"/kong", strings.NewReader(`{"a":1}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := srv.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tt.wantChalng {
				t.Errorf("WWW-Authenticate %q, want %q", got, tt.wantChalng)
			}
		})
	}
	t.Run("healthz needs no token", func(t *testing.T) {
		resp, err := srv.client.Get(srv.url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	})
	if st := srv.c.Stats(); st.Unauthorized != 4 || st.Records != 2 {
		t.Errorf("Stats = %+v, want 4 unauthorized, 2 records", st)
	}
}

func TestTLS(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name       string
		mtls       bool
		clientCert bool
		wantErr    bool
	}{
		{name: "tls"},
		{name: "mtls with client cert", mtls: true, clientCert: true},
		{name: "mtls without client cert", mtls: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.CertFile, cfg.KeyFile = p.certFile, p.keyFile
			if tt.mtls {
				cfg.ClientCAFile = p.caFile
			}
			clientTLS := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
			if tt.clientCert {
				clientTLS.Certificates = []tls.Certificate{p.client}
			}
			var s sink
			srv := start(t, cfg, s.emit, clientTLS)
			resp, err := srv.do(t.Context(), request{path: "/kong", contentType: "application/json", body: []byte(`{"a":1}`)})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("request without a client certificate got status %d, want a TLS error", resp.status)
				}
				if len(s.records()) != 0 {
					t.Error("records emitted without a client certificate")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != http.StatusOK || len(s.records()) != 1 {
				t.Errorf("status %d, %d records; want 200 and 1", resp.status, len(s.records()))
			}
		})
	}
}

func TestLimits(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
	}
	deepObj := func(n int) []byte {
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	}
	big := bytes.Repeat([]byte("x"), 4096)
	tests := []struct {
		name        string
		contentType string
		encoding    string
		body        []byte
		chunked     bool
		want        int
		wantErr     string // in the 4xx body
		wantRecs    int
	}{
		{name: "body over limit", contentType: "text/plain", body: slices.Concat(big, big), want: 413, wantErr: "max_body_bytes"},
		{name: "chunked body over limit", contentType: "text/plain", body: slices.Concat(big, big), chunked: true, want: 413, wantErr: "max_body_bytes"},
		{name: "body at limit", contentType: "text/plain", body: slices.Concat(big[:1000], []byte("\n"), big[:4096-1001]), want: 200, wantRecs: 2},
		{name: "gzip bomb", contentType: "text/plain", encoding: "gzip", body: gzipped(t, make([]byte, 1<<20)), want: 413, wantErr: "max_body_bytes"},
		{name: "corrupt gzip", contentType: "text/plain", encoding: "gzip", body: []byte("not gzip at all"), want: 400, wantErr: "gzip"},
		{name: "json array 64 deep", contentType: "application/json", body: deep(64), want: 200, wantRecs: 1},
		{name: "json array 65 deep", contentType: "application/json", body: deep(65), want: 400, wantErr: "nesting deeper than 64"},
		{name: "json object 64 deep", contentType: "application/json", body: deepObj(64), want: 200, wantRecs: 1},
		{name: "json object 65 deep", contentType: "application/json", body: deepObj(65), want: 400, wantErr: "record 0 at byte 320"},
		{name: "json bomb in second element", contentType: "application/json", body: slices.Concat([]byte(`[1,`), deep(2000), []byte(`]`)), want: 400, wantErr: "record 1 at byte 66"},
		{name: "ndjson 65 deep on line 2", contentType: "application/x-ndjson", body: slices.Concat([]byte("{}\n"), deep(65)), want: 400, wantErr: "record 1 at byte 67"},
		{name: "text is not depth checked", contentType: "text/plain", body: deep(100), want: 200, wantRecs: 1},
		{name: "records over max_records, text", contentType: "text/plain", body: []byte(strings.Repeat("a\n", 11)), want: 413, wantErr: "record 10 at byte 20: more than max_records (10)"},
		{name: "records over max_records, ndjson", contentType: "application/x-ndjson", body: []byte(strings.Repeat("1\n", 11)), want: 413, wantErr: "max_records"},
		{name: "records over max_records, array", contentType: "application/json", body: []byte("[" + strings.Repeat("1,", 10) + "1]"), want: 413, wantErr: "max_records"},
		{name: "records at max_records", contentType: "application/json", body: []byte("[" + strings.Repeat("1,", 9) + "1]"), want: 200, wantRecs: 10},
		{name: "unbalanced array", contentType: "application/json", body: []byte(`[{"a":1]`), want: 400, wantErr: "unexpected ']'"},
		{name: "unterminated array", contentType: "application/json", body: []byte(`[1,2`), want: 400, wantErr: "unexpected end of array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxBodyBytes = 4096
			cfg.MaxRecords = 10
			var s sink
			srv := start(t, cfg, s.emit, nil)
			resp := srv.post(t, request{path: "/kong", contentType: tt.contentType, encoding: tt.encoding, body: tt.body, chunked: tt.chunked})
			if resp.status != tt.want {
				t.Fatalf("status %d (%s), want %d", resp.status, resp.body, tt.want)
			}
			if !strings.Contains(resp.body, tt.wantErr) {
				t.Errorf("body %q does not name %q", resp.body, tt.wantErr)
			}
			if got := len(s.records()); got != tt.wantRecs {
				t.Errorf("%d records emitted, want %d", got, tt.wantRecs)
			}
		})
	}
}

func TestOversizedRecordIsTruncatedNotRefused(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRecordBytes = 16
	var s sink
	srv := start(t, cfg, s.emit, nil)
	long := `{"msg":"` + strings.Repeat("y", 100) + `"}`
	resp := srv.post(t, request{path: "/kong", contentType: "application/json", body: []byte(`[{"a":1},` + long + `,{"b":2}]`)})
	if resp.status != http.StatusOK {
		t.Fatalf("status %d (%s), want 200", resp.status, resp.body)
	}
	recs := s.records()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	if recs[0].Truncated || recs[2].Truncated || string(recs[2].Data) != `{"b":2}` {
		t.Errorf("neighbours of the long record changed: %+v, %+v", recs[0], recs[2])
	}
	if !recs[1].Truncated || string(recs[1].Data) != long[:16] || recs[1].Offset != 1 {
		t.Errorf("long record = %q truncated=%v offset=%d, want its first 16 bytes, truncated, offset 1",
			recs[1].Data, recs[1].Truncated, recs[1].Offset)
	}
	if st := srv.c.Stats(); st.Truncated != 1 || st.Records != 3 {
		t.Errorf("Stats = %+v, want 1 truncated of 3", st)
	}
}
