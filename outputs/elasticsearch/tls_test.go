package elasticsearch

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/outputs"
)

// The security checks against the secured OpenSearch node of
// scripts/opensearch-secure.sh (HTTPS with its own CA, basic auth): the
// indexer is configured through Config alone, as a user would, and every
// answer is checked on the real node.

// secureNode returns the secured node and an HTTP client that trusts its CA,
// for reading back and cleaning up independently of the indexer.
func secureNode(t *testing.T) (testenv.SecureOpenSearch, *http.Client) {
	t.Helper()
	node := testenv.OpenSearchTLS(t)
	pool, err := config.LoadCAPool(node.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return node, c
}

// secureConfig is the Config a user writes for the secured node: https
// address, user, password in a password_file, ca_file. Its index names are
// unique to the test and deleted (with their templates) when it ends.
func secureConfig(t *testing.T, node testenv.SecureOpenSearch, c *http.Client) Config {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "opensearch-password")
	if err := os.WriteFile(pwFile, []byte(node.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := "twtls-" + strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	base = base[:min(len(base), 50)] + "-" + time.Now().UTC().Format("150405.000000000")[7:]
	cfg := DefaultConfig()
	cfg.Addresses = []string{node.URL}
	cfg.Username = node.User
	cfg.PasswordFile = pwFile
	cfg.CAFile = node.CAFile
	cfg.Flavor = FlavorOpenSearch
	cfg.EventsIndex = base + "-ev"
	cfg.AlertsIndex = base + "-al"
	cfg.FlushInterval = time.Hour // only Write's own flushes
	cfg.RequestTimeout = 20 * time.Second
	cfg.MaxRetries = 1
	t.Cleanup(func() {
		for _, path := range []string{
			"/" + base + "-*?expand_wildcards=all&ignore_unavailable=true",
			"/_index_template/" + cfg.EventsIndex, "/_index_template/" + cfg.AlertsIndex,
			"/_component_template/" + cfg.EventsIndex + "-mappings", "/_component_template/" + cfg.AlertsIndex + "-mappings",
		} {
			if s, _ := secureDo(t, c, node, http.MethodDelete, path); s >= 300 && s != http.StatusNotFound {
				t.Logf("cleanup DELETE %s: status %d", path, s)
			}
		}
	})
	return cfg
}

// secureDo sends an authenticated request to the secured node and returns
// the status and body; a transport error fails the test.
func secureDo(t *testing.T, c *http.Client, node testenv.SecureOpenSearch, method, path string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, node.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(node.User, node.Password)
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return res.StatusCode, body
}

func TestSecureNodeWritesAndReadsBack(t *testing.T) {
	node, c := secureNode(t)
	tests := []struct {
		name string
		// inline puts the password in Config.Password instead of password_file.
		inline bool
		mode   string
	}{
		{name: "password_file, single index", mode: ModeSingle},
		{name: "inline password, daily indices", inline: true, mode: ModeDaily},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := secureConfig(t, node, c)
			cfg.Mode = tt.mode
			if tt.inline {
				cfg.PasswordFile = ""
				cfg.Password = config.Secret(node.Password)
			}
			ix := newIndexer(t, cfg)
			rep, err := ix.Setup(t.Context())
			if err != nil {
				t.Fatalf("Setup over TLS with basic auth: %v", err)
			}
			if !rep.Changed() {
				t.Errorf("Setup on a fresh node reported nothing created:\n%s", rep)
			}
			if err := ix.EnsureIndices(t.Context()); err != nil {
				t.Fatalf("EnsureIndices after Setup: %v", err)
			}

			day := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
			docs := makeDocs(t, "tls", 5, day)
			if err := ix.Write(t.Context(), docs); err != nil {
				t.Fatalf("Write: %v", err)
			}
			// A re-delivery is a 409 under create: stored, no error.
			if err := ix.Write(t.Context(), docs); err != nil {
				t.Fatalf("second Write of the same documents: %v", err)
			}

			index := cfg.EventsIndex
			if tt.mode == ModeDaily {
				index += "-2024.05.01"
			}
			if s, body := secureDo(t, c, node, http.MethodPost, "/"+index+"/_refresh"); s != http.StatusOK {
				t.Fatalf("refresh %s: %d %s", index, s, body)
			}
			for _, d := range docs {
				s, body := secureDo(t, c, node, http.MethodGet, "/"+index+"/_doc/"+d.ID)
				if s != http.StatusOK {
					t.Fatalf("GET %s/_doc/%s: %d %s", index, d.ID, s, body)
				}
				var got struct {
					Source struct {
						Event struct {
							ID string `json:"id"`
						} `json:"event"`
						URL struct {
							Path string `json:"path"`
						} `json:"url"`
					} `json:"_source"`
				}
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("decode %s: %v", d.ID, err)
				}
				if got.Source.Event.ID != d.ID || got.Source.URL.Path != "/api/v1/items" {
					t.Errorf("read back %s = event.id %q url.path %q, want %q /api/v1/items",
						d.ID, got.Source.Event.ID, got.Source.URL.Path, d.ID)
				}
			}
			var n struct {
				Count int `json:"count"`
			}
			_, body := secureDo(t, c, node, http.MethodGet, "/"+index+"/_count")
			if err := json.Unmarshal(body, &n); err != nil || n.Count != len(docs) {
				t.Errorf("%s holds %d documents (%v), want %d", index, n.Count, err, len(docs))
			}
		})
	}
}

func TestSecureNodeRefuses(t *testing.T) {
	node, c := secureNode(t)
	tests := []struct {
		name  string
		setup func(cfg *Config)
		// check asserts the error EnsureIndices returned.
		check func(t *testing.T, err error)
		// retryable is what Write's BatchError must say of every document;
		// reason is a substring of each item's reason.
		retryable bool
		reason    string
	}{
		{
			name: "wrong password",
			setup: func(cfg *Config) {
				cfg.PasswordFile = ""
				cfg.Password = config.Secret(node.Password + "-wrong")
			},
			// At start-up the refusal is final: EnsureIndices fails with
			// the server's 401 and `trailwatch run` stops there.
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "401: Unauthorized") {
					t.Errorf("EnsureIndices = %v, want the server's 401: Unauthorized", err)
				}
			},
			// Once running (a rotated password), a 401 is the request's,
			// not a document's: the documents stay with the caller, which
			// backs off and retries, instead of going to the dead-letter
			// topic as a per-document 4xx would.
			retryable: true,
			reason:    "401 Unauthorized",
		},
		{
			name:  "no ca_file",
			setup: func(cfg *Config) { cfg.CAFile = "" },
			check: func(t *testing.T, err error) {
				var unknown x509.UnknownAuthorityError
				if !errors.As(err, &unknown) {
					t.Errorf("EnsureIndices = %v, want x509.UnknownAuthorityError", err)
				}
			},
			retryable: true, // the transport's error has no status: request-level, as classify documents
			reason:    "certificate signed by unknown authority",
		},
		{
			name: "http:// to the TLS port",
			setup: func(cfg *Config) {
				cfg.Addresses = []string{"http://" + strings.TrimPrefix(node.URL, "https://")}
			},
			check: func(t *testing.T, err error) {
				if err == nil {
					t.Error("EnsureIndices over plain HTTP succeeded")
				}
			},
			retryable: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := secureConfig(t, node, c)
			tt.setup(&cfg)
			ix := newIndexer(t, cfg)
			err := ix.EnsureIndices(t.Context())
			if err == nil {
				t.Fatal("EnsureIndices succeeded, want a refusal")
			}
			t.Logf("EnsureIndices: %v", err)
			tt.check(t, err)
			if strings.Contains(err.Error(), node.Password) {
				t.Errorf("EnsureIndices error leaks the password: %v", err)
			}

			docs := makeDocs(t, "refused", 3, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
			werr := ix.Write(t.Context(), docs)
			var be *outputs.BatchError
			if !errors.As(werr, &be) || len(be.Items) != len(docs) {
				t.Fatalf("Write = %v, want a *outputs.BatchError naming all %d documents", werr, len(docs))
			}
			for _, it := range be.Items {
				if it.Retryable != tt.retryable || !strings.Contains(it.Reason, tt.reason) {
					t.Errorf("item %d = retryable %v reason %q, want retryable %v with %q",
						it.Index, it.Retryable, it.Reason, tt.retryable, tt.reason)
				}
				if strings.Contains(it.Reason, node.Password) {
					t.Errorf("item %d reason leaks the password", it.Index)
				}
			}
			// Nothing got in: the index was never created.
			if s, _ := secureDo(t, c, node, http.MethodGet, "/"+cfg.EventsIndex+"/_count"); s != http.StatusNotFound {
				t.Errorf("GET %s/_count = %d, want 404: a refused client created it", cfg.EventsIndex, s)
			}
		})
	}
}
