package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
)

// runCLI runs trailwatch with args and returns exit code, stdout, stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSetupElasticsearchTwice runs the command against the real OpenSearch
// node: the first run creates, the second changes nothing.
func TestSetupElasticsearchTwice(t *testing.T) {
	addr := testenv.OpenSearch(t)
	name := fmt.Sprintf("twcli-setup-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		for _, p := range []string{"/" + name + "-ev", "/" + name + "-al",
			"/_index_template/" + name + "-ev", "/_index_template/" + name + "-al",
			"/_component_template/" + name + "-ev-mappings", "/_component_template/" + name + "-al-mappings"} {
			req, _ := http.NewRequest(http.MethodDelete, addr+p, nil)
			if res, err := http.DefaultClient.Do(req); err == nil {
				_ = res.Body.Close()
			}
		}
	})
	cfg := writeConfig(t, fmt.Sprintf(`index:
  elasticsearch:
    addresses: [%q]
    flavor: opensearch
    mode: single
    events_index: %s-ev
    alerts_index: %s-al
`, addr, name, name))
	code, out, errOut := runCLI(t, "setup", "elasticsearch", "-c", cfg)
	if code != 0 || strings.Count(out, "created") != 6 {
		t.Fatalf("first run: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "setup", "elasticsearch", "-c", cfg)
	if code != 0 || strings.Count(out, "unchanged") != 6 || !strings.Contains(out, "already up to date") {
		t.Fatalf("second run: exit %d, stdout:\n%s\nstderr: %s", code, out, errOut)
	}
}

func TestSetupDryRun(t *testing.T) {
	var posts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts++
		_, _ = io.WriteString(w, `{"success":true,"successCount":21}`)
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name string
		args []string
		cfg  string
		want []string
	}{
		{
			name: "elasticsearch prints ILM and templates",
			args: []string{"setup", "elasticsearch", "--dry-run"},
			cfg:  "index:\n  elasticsearch:\n    addresses: [\"http://127.0.0.1:1\"]\n    mode: data_stream\n    events_retention_days: 30\n",
			want: []string{"PUT /_ilm/policy/trailwatch-events-lifecycle", `"min_age":"30d"`, "PUT /_index_template/trailwatch-alerts", "PUT /_data_stream/trailwatch-events"},
		},
		{
			name: "kibana lists objects and the space URL",
			args: []string{"setup", "kibana", "--dry-run", "--url", "https://kibana.example:5601", "--space", "sec"},
			want: []string{"POST https://kibana.example:5601/s/sec/api/saved_objects/_import?overwrite=true", "dashboard      trailwatch-overview", "index-pattern  trailwatch-events"},
		},
		{
			name: "kibana imports",
			args: []string{"setup", "kibana", "--url", srv.URL},
			want: []string{"imported 21 objects"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.cfg != "" {
				args = append(args, "-c", writeConfig(t, tt.cfg))
			}
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
	if posts != 1 {
		t.Errorf("the Kibana server got %d requests, want 1 (dry runs send nothing)", posts)
	}
}

func TestSetupUsage(t *testing.T) {
	for _, args := range [][]string{{"setup"}, {"setup", "solr"}, {"setup", "kibana", "--nope"}} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, errOut := runCLI(t, "setup", "kibana"); code != 1 || !strings.Contains(errOut, "url: required") {
		t.Errorf("setup kibana without a URL: exit %d, stderr %q; want 1 naming url", code, errOut)
	}
}
