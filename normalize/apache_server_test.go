package normalize_test

import (
	"crypto/sha1"
	"encoding/base64"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
	"github.com/trailwatch/trailwatch/normalize"
)

// lfApacheCustom is the custom LogFormat the real-server test configures
// (Apache's own syntax, as it appears between the quotes of LogFormat).
const lfApacheCustom = `%a %{remote}p %l %u [%{%d/%b/%Y:%H:%M:%S %z}t] "%r" %>s %B %D %I %O "%{Referer}i" "%{User-Agent}i" %v:%p key="%{X-API-Key}i" q="%q" ms=%{msec_frac}t ka=%k`

// TestApacheRealServer runs Debian's apache2 in the foreground (-X) with
// the combined, vhost_combined and a custom LogFormat, sends real
// requests, and normalizes what Apache wrote.
func TestApacheRealServer(t *testing.T) {
	bin := testenv.Binary(t, "apache2")
	const mods = "/usr/lib/apache2/modules"
	if _, err := os.Stat(filepath.Join(mods, "mod_mpm_event.so")); err != nil {
		testenv.Missing(t, "apache2 modules not found: %v", err)
	}
	dir := t.TempDir()
	// apache2 refuses to serve as root, so its child runs as www-data;
	// the documents and password file must be readable to it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	docs := filepath.Join(dir, "htdocs")
	if err := os.MkdirAll(filepath.Join(docs, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte("s3cret"))
	files := map[string]string{
		"htdocs/api/v1/orders": "[]\n",
		"htdocs/static/a.txt":  "hello\n",
		"htpasswd":             "alice:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := lfFreePort(t)
	var conf strings.Builder
	conf.WriteString("ServerRoot " + dir + "\nServerName localhost\nListen 127.0.0.1:" + strconv.Itoa(port) + "\n")
	conf.WriteString("PidFile " + dir + "/httpd.pid\nErrorLog " + dir + "/error.log\nTypesConfig /etc/mime.types\n")
	for _, m := range []string{"mpm_event", "authz_core", "authz_user", "authn_core", "authn_file", "auth_basic", "mime", "dir"} {
		conf.WriteString("LoadModule " + m + "_module " + mods + "/mod_" + m + ".so\n")
	}
	conf.WriteString("User www-data\nGroup www-data\nDocumentRoot " + docs + "\n")
	conf.WriteString("<Directory " + docs + ">\n  Require all granted\n</Directory>\n")
	conf.WriteString("<Location /api>\n  AuthType Basic\n  AuthName trail\n  AuthUserFile " + dir + "/htpasswd\n  Require valid-user\n</Location>\n")
	conf.WriteString("<Location /login>\n  AuthType Basic\n  AuthName trail\n  AuthUserFile " + dir + "/htpasswd\n  Require valid-user\n</Location>\n")
	quote := func(f string) string { return `"` + strings.ReplaceAll(f, `"`, `\"`) + `"` }
	conf.WriteString("LogFormat " + quote(normalize.ApacheFormats["combined"]) + " combined\n")
	conf.WriteString("LogFormat " + quote(normalize.ApacheFormats["vhost_combined"]) + " vhost_combined\n")
	conf.WriteString("LogFormat " + quote(lfApacheCustom) + " trail\n")
	for _, l := range []string{"combined", "vhost_combined", "trail"} {
		conf.WriteString("CustomLog " + dir + "/" + l + ".log " + l + "\n")
	}
	confPath := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	lfServe(t, port, bin, "-X", "-f", confPath)
	lfRequests(t, port, "/static/a.txt?v=1")

	tests := []struct {
		name    string
		file    string
		format  string
		withKey bool
	}{
		{name: "combined", file: "combined.log", format: ""},
		{name: "vhost_combined", file: "vhost_combined.log", format: "vhost_combined"},
		{name: "custom", file: "trail.log", format: lfApacheCustom, withKey: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := normalize.Build(normalize.Spec{Type: "apache", Format: tt.format})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.file)
			lines := lfWaitLines(t, path, 3)
			t.Logf("%s:\n%s", tt.file, strings.Join(lines, "\n"))
			evs := lfNormalizeLines(t, n, path, lines)
			lfCheckServerEvents(t, evs, "apache.access", tt.withKey, "/static/a.txt", 200)
			eq(t, "event.module", evs[0].Event.Module, "apache")
			eq(t, "url.query", evs[1].URL.Query, "v=1")
			switch tt.name {
			case "vhost_combined":
				eq(t, "destination.domain", evs[0].Destination.Domain, "localhost")
				eq(t, "destination.port", evs[0].Destination.Port, 80)
				eq(t, "http.response.bytes > body", evs[1].HTTP.Response.Bytes > 6, true)
			case "custom":
				a := &evs[0]
				eq(t, "source.port > 0", a.Source.Port > 0, true)
				eq(t, "http.request.bytes > 0", a.HTTP.Request.Bytes > 0, true)
				eq(t, "event.duration > 0", a.Event.Duration > 0 && a.Event.Duration < int64(time.Minute), true)
				eq(t, "http.response.body.bytes", evs[1].HTTP.Response.Body.Bytes, int64(6))
				eq(t, "trailwatch.extra.keepalive_requests", a.Trailwatch.Extra["keepalive_requests"], "0")
			}
		})
	}
}
