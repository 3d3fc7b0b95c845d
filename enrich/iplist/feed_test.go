package iplist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

// feedServer serves a body that tests change, with an ETag, to requests
// carrying the expected Authorization header.
type feedServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	status   int // 0 serves the body
	requests atomic.Int64
	notMod   atomic.Int64 // 304s sent
	auth     string
}

func newFeedServer(t *testing.T, auth, body string) *feedServer {
	fs := &feedServer{body: body, auth: auth}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.requests.Add(1)
	if fs.auth != "" && r.Header.Get("Authorization") != fs.auth {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	fs.mu.Lock()
	body, status := fs.body, fs.status
	fs.mu.Unlock()
	if status != 0 {
		http.Error(w, "broken", status)
		return
	}
	etag := fmt.Sprintf(`"%x"`, sha256.Sum256([]byte(body)))
	if r.Header.Get("If-None-Match") == etag {
		fs.notMod.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	_, _ = w.Write([]byte(body))
}

func (fs *feedServer) set(body string, status int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.body, fs.status = body, status
}

// waitLoaded polls the list's Loaded time, which the background refresher
// sets on its first good download.
func waitLoaded(t *testing.T, e *Enricher, i int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for e.Stats().Lists[i].Loaded.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("list %d never loaded: %+v", i, e.Stats())
		}
		<-tick.C
	}
}

func tagged(t *testing.T, e *Enricher, ev schema.Event, tag string) bool {
	t.Helper()
	evs := []schema.Event{ev}
	if err := e.Enrich(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	return slices.Contains(evs[0].Tags, tag)
}

func ip(s string) schema.Event { return schema.Event{Source: schema.Endpoint{IP: s}} }

func TestFeedRefreshKeepsLastGood(t *testing.T) {
	fs := newFeedServer(t, "Bearer tok3n", "ExitAddress 185.220.101.1 2024-05-01 10:00:00\n")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok3n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cfg := Config{Lists: []List{{Name: "tor", URL: fs.URL + "/exits?key=s3cret", Format: FormatTor, TokenFile: tokenFile, MaxBytes: 200, Threat: true}}}
	e, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	waitLoaded(t, e, 0)
	if !tagged(t, e, ip("185.220.101.1"), "threat:tor") {
		t.Fatal("first download not in use")
	}

	steps := []struct {
		name              string
		body              string
		status            int
		changed           bool
		wantErr           string
		match, noMatch    string
		refreshes, errors uint64
	}{
		{name: "unchanged feed answers 304", body: "ExitAddress 185.220.101.1 2024-05-01 10:00:00\n",
			match: "185.220.101.1", refreshes: 1},
		{name: "new contents swap in", body: "185.220.101.2\n", changed: true,
			match: "185.220.101.2", noMatch: "185.220.101.1", refreshes: 2},
		{name: "server error keeps last good", body: "185.220.101.3\n", status: http.StatusBadGateway, wantErr: "HTTP 502",
			match: "185.220.101.2", refreshes: 2, errors: 1},
		{name: "garbled body keeps last good", body: "<html>maintenance</html>\n", wantErr: "exits:1:",
			match: "185.220.101.2", refreshes: 2, errors: 2},
		{name: "oversized body keeps last good", body: strings.Repeat("185.220.101.4\n", 20), wantErr: "exceeds max_bytes 200",
			match: "185.220.101.2", noMatch: "185.220.101.4", refreshes: 2, errors: 3},
		{name: "recovery", body: "185.220.101.5\n", changed: true,
			match: "185.220.101.5", refreshes: 3, errors: 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			fs.set(st.body, st.status)
			changed, err := e.Refresh()
			if changed != st.changed || (err == nil) != (st.wantErr == "") || err != nil && !strings.Contains(err.Error(), st.wantErr) {
				t.Fatalf("Refresh = %v, %v; want %v, %q", changed, err, st.changed, st.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the URL's key: %v", err)
			}
			if !tagged(t, e, ip(st.match), "threat:tor") {
				t.Errorf("%s does not match", st.match)
			}
			if st.noMatch != "" && tagged(t, e, ip(st.noMatch), "threat:tor") {
				t.Errorf("%s still matches", st.noMatch)
			}
			if s := e.Stats(); s.Refreshes != st.refreshes || s.RefreshErrors != st.errors || s.Lists[0].RefreshErrors != st.errors {
				t.Errorf("stats = %+v, want %d refreshes and %d errors", s, st.refreshes, st.errors)
			}
		})
	}
	if fs.notMod.Load() != 1 {
		t.Errorf("server sent %d 304s, want 1", fs.notMod.Load())
	}
	if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "tok3n") {
		t.Errorf("logs leak a secret:\n%s", logs.String())
	}
}

func TestFeedAuthHeaders(t *testing.T) {
	tests := []struct {
		name    string
		list    List
		wantErr string
	}{
		{name: "bearer token", list: List{Token: "k3y"}},
		{name: "custom header as MISP uses", list: List{Headers: map[string]config.Secret{"Authorization": "Bearer k3y"}}},
		{name: "wrong token", list: List{Token: "nope"}, wantErr: "HTTP 401"},
		{name: "no token", wantErr: "HTTP 401"},
	}
	fs := newFeedServer(t, "Bearer k3y", "198.51.100.1\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := tt.list
			l.Name, l.URL, l.Refresh = "feed", fs.URL, time.Hour
			e := newTestEnricher(t, Config{Lists: []List{l}})
			_, err := e.Refresh()
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Refresh: %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && !tagged(t, e, ip("198.51.100.1"), "iplist:feed") {
				t.Fatal("feed not loaded")
			}
		})
	}
}

func TestFeedTLSWithCAFile(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("198.51.100.2\n"))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, caFile, wantErr string
	}{
		{name: "trusted through ca_file", caFile: ca},
		{name: "system roots refuse the test CA", wantErr: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnricher(t, Config{Lists: []List{{Name: "feed", URL: srv.URL, CAFile: tt.caFile, Refresh: time.Hour}}})
			_, err := e.Refresh()
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Refresh: %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestFeedTimeoutAndClose(t *testing.T) {
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select { // hang until the client gives up or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })

	t.Run("timeout", func(t *testing.T) {
		e := newTestEnricher(t, Config{Lists: []List{{Name: "slow", URL: srv.URL, Timeout: 50 * time.Millisecond}}})
		<-entered // the background first download
		if _, err := e.Refresh(); err == nil || !strings.Contains(err.Error(), "timed out after 50ms") {
			t.Fatalf("Refresh of a hung feed: %v", err)
		}
	})
	t.Run("close cancels a download in flight", func(t *testing.T) {
		e, err := New(Config{Lists: []List{{Name: "slow", URL: srv.URL}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		<-entered
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if s := e.Stats(); s.Lists[0].Entries != 0 || !s.Lists[0].Loaded.IsZero() {
			t.Fatalf("stats = %+v", s)
		}
	})
}

func TestFeedRefreshesOnSchedule(t *testing.T) {
	fs := newFeedServer(t, "", "198.51.100.3\n")
	e := newTestEnricher(t, Config{Lists: []List{{Name: "feed", URL: fs.URL, Refresh: 10 * time.Millisecond}}})
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for fs.requests.Load() < 3 { // the first download, then two ticks
		if time.Now().After(deadline) {
			t.Fatalf("%d downloads, want 3", fs.requests.Load())
		}
		<-tick.C
	}
	if !tagged(t, e, ip("198.51.100.3"), "iplist:feed") {
		t.Fatal("feed not loaded")
	}
}
