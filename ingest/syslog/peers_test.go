package syslog

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
)

// runPeer starts a real program, stops it at cleanup (SIGTERM, then waits),
// and reports its early exit with its output.
func runPeer(t *testing.T, bin string, args ...string) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return &out
}

// TestRsyslogForwarding has a real rsyslogd read two files with imfile and
// forward their lines to the collector over TCP, octet-counted, in RFC 5424
// (the setup the docs recommend for log files on other machines). The tags
// route each file's lines to their normalizer.
func TestRsyslogForwarding(t *testing.T) {
	bin := testenv.Binary(t, "rsyslogd")
	s := newSink()
	cfg := testConfig()
	cfg.Source = "unknown"
	cfg.Sources = map[string]string{"nginx": "nginx", "haproxy": "haproxy"}
	c := start(t, cfg, s.emit)
	_, port, _ := net.SplitHostPort(c.Addr(ProtoTCP).String())

	dir := t.TempDir()
	nginxLog, haproxyLog := filepath.Join(dir, "access.log"), filepath.Join(dir, "haproxy.log")
	haproxyLine := `10.0.0.9:41234 [21/Jan/2025:10:00:00.123] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"`
	lines := []string{nginxLine, strings.Replace(nginxLine, "/api/v1/users?id=7", "/with]bracket", 1)}
	if err := os.WriteFile(nginxLog, []byte(lines[0]+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(haproxyLog, []byte(haproxyLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := `global(workDirectory="` + dir + `")
module(load="imfile")
input(type="imfile" file="` + nginxLog + `" tag="nginx" ruleset="fwd")
input(type="imfile" file="` + haproxyLog + `" tag="haproxy" ruleset="fwd")
ruleset(name="fwd") {
  action(type="omfwd" target="127.0.0.1" port="` + port + `" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}
`
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runPeer(t, bin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslog.pid"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", out)
		}
	})

	recs := s.wait(t, 2)
	// Appended while rsyslog runs, as a web server would.
	f, err := os.OpenFile(nginxLog, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(lines[1] + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	recs = s.wait(t, 3)

	got := map[string][]string{}
	for _, r := range recs {
		got[r.Source] = append(got[r.Source], string(r.Data))
		if !strings.HasPrefix(r.Origin, "syslog/tcp/127.0.0.1:") {
			t.Errorf("origin = %q", r.Origin)
		}
	}
	if fmt.Sprint(got["nginx"]) != fmt.Sprint(lines) {
		t.Errorf("nginx records = %q, want %q", got["nginx"], lines)
	}
	if fmt.Sprint(got["haproxy"]) != fmt.Sprint([]string{haproxyLine}) {
		t.Errorf("haproxy records = %q, want %q", got["haproxy"], haproxyLine)
	}
	if st := c.Stats(); st.Unparsed != 0 || st.FramingErrors != 0 {
		t.Errorf("Unparsed, FramingErrors = %d, %d", st.Unparsed, st.FramingErrors)
	}
}

// combined matches nginx's predefined combined log_format.
var combined = regexp.MustCompile(`^127\.0\.0\.1 - (-|alice) \[[^\]]+\] "(GET|POST) [^"]+ HTTP/1\.1" \d{3} \d+ "[^"]*" "[^"]*"$`)

// TestNginxSyslog has a real nginx log its access lines with
// `access_log syslog:server=...,tag=nginx combined` (UDP, RFC 3164) and
// checks the collector hands the combined lines, header stripped, to the
// nginx normalizer.
func TestNginxSyslog(t *testing.T) {
	bin := testenv.Binary(t, "nginx")
	s := newSink()
	cfg := testConfig()
	cfg.TCP, cfg.UDP = "", "127.0.0.1:0"
	cfg.Source = "unknown"
	cfg.Sources = map[string]string{"nginx": "nginx"}
	c := start(t, cfg, s.emit)

	dir := t.TempDir()
	port := freePort(t)
	conf := `user root;
daemon off;
master_process off;
pid ` + dir + `/nginx.pid;
error_log ` + dir + `/error.log warn;
events { worker_connections 64; }
http {
  client_body_temp_path ` + dir + `/body;
  proxy_temp_path ` + dir + `/proxy;
  fastcgi_temp_path ` + dir + `/fastcgi;
  uwsgi_temp_path ` + dir + `/uwsgi;
  scgi_temp_path ` + dir + `/scgi;
  server {
    listen 127.0.0.1:` + strconv.Itoa(port) + `;
    access_log syslog:server=` + c.Addr(ProtoUDP).String() + `,tag=nginx combined;
    location / { return 200 "ok\n"; }
    location = /login { return 401; }
  }
}
`
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := runPeer(t, bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out, b)
		}
	})

	client := &http.Client{Timeout: 5 * time.Second}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	// Readiness: nginx answers. Each probe is logged too; they are
	// counted below.
	probes := 0
	until(t, "nginx answering", func() bool {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/ready", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		probes++
		return true
	})
	for _, r := range []struct{ method, path string }{{"GET", "/api/v1/orders?id=7"}, {"POST", "/login"}} {
		req, err := http.NewRequestWithContext(t.Context(), r.method, base+r.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("alice", "s3cret")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	recs := s.wait(t, probes+2)
	for _, r := range recs {
		if r.Source != "nginx" || !combined.Match(r.Data) {
			t.Errorf("record source %q data %q: want a combined line for nginx", r.Source, r.Data)
		}
		if !strings.HasPrefix(r.Origin, "syslog/udp/127.0.0.1:") {
			t.Errorf("origin = %q", r.Origin)
		}
	}
	last := string(recs[len(recs)-1].Data)
	if !strings.Contains(last, `"POST /login HTTP/1.1" 401`) || !strings.Contains(last, " - alice [") {
		t.Errorf("last line %q is not the refused POST by alice", last)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
