package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/outputs/elasticsearch"
)

// warnSignal is a slog handler that signals every warning on a channel.
type warnSignal chan string

func (w warnSignal) Enabled(context.Context, slog.Level) bool { return true }
func (w warnSignal) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w warnSignal) WithGroup(string) slog.Handler            { return w }
func (w warnSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		select {
		case w <- r.Message:
		default:
		}
	}
	return nil
}

// TestEnsureIndicesWaitsForTheNode starts the index setup while nothing
// listens at the configured address (a node down or restarting): it must
// warn and keep trying, not fail; once the real OpenSearch node is
// reachable there it must finish, and the templates must be on the node.
// With the node never coming back, it must return when its context ends.
func TestEnsureIndicesWaitsForTheNode(t *testing.T) {
	node := testenv.OpenSearch(t)
	target, err := url.Parse(node)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		nodeUp   bool // the node becomes reachable after the first warning
		wantDone bool // ensureIndices returns nil
	}{
		{name: "node comes up", nodeUp: true, wantDone: true},
		{name: "context ends while the node is down", nodeUp: false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			base := "twtest-ensure-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.Itoa(i)
			cfg := elasticsearch.DefaultConfig()
			cfg.Addresses = []string{"http://" + addr}
			cfg.Flavor = elasticsearch.FlavorOpenSearch
			cfg.EventsIndex, cfg.AlertsIndex = base+"-ev", base+"-al"
			cfg.RequestTimeout = 20 * time.Second
			t.Cleanup(func() {
				for _, p := range []string{"/" + base + "-*?ignore_unavailable=true", "/_index_template/" + base + "-ev", "/_index_template/" + base + "-al",
					"/_component_template/" + base + "-ev-mappings", "/_component_template/" + base + "-al-mappings"} {
					req, _ := http.NewRequest(http.MethodDelete, node+p, nil)
					if res, err := http.DefaultClient.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
				}
			})
			warned := make(warnSignal, 64)
			w, err := elasticsearch.New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- ensureIndices(ctx, w, slog.New(warned), 10*time.Millisecond) }()

			select {
			case <-warned:
			case err := <-done:
				t.Fatalf("ensureIndices returned %v while nothing listened at %s; want it to wait", err, addr)
			case <-time.After(time.Minute):
				t.Fatal("no warning within a minute while the node was unreachable")
			}
			if tt.nodeUp {
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(target)}
				go func() { _ = srv.Serve(ln) }()
				t.Cleanup(func() { _ = srv.Close() })
			} else {
				cancel()
			}

			select {
			case err = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("ensureIndices did not return within 2 minutes")
			}
			if tt.wantDone {
				if err != nil {
					t.Fatalf("ensureIndices = %v after the node came up, want nil", err)
				}
				res, err := http.Get(node + "/_index_template/" + cfg.EventsIndex)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("GET /_index_template/%s on the node = %d, want 200", cfg.EventsIndex, res.StatusCode)
				}
				return
			}
			if err == nil || !elasticsearch.Retryable(err) {
				t.Errorf("ensureIndices after cancel = %v, want the last (retryable) connection error", err)
			}
		})
	}
}
