//go:build soak

package soak

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/testenv"
)

// gateways are the real peer processes that receive the traffic and write
// the logs the pipeline reads: nginx logging to a file, HAProxy logging over
// syslog (UDP) to rsyslog, which writes a file.
type gateways struct {
	dir        string
	nginxURL   string
	haproxyURL string
	nginxLog   string // live nginx access log
	haproxyLog string // live rsyslog file with HAProxy's lines
	// haproxyLedger is a second file rsyslog writes every HAProxy line to,
	// never rotated nor collected: the record of what the gateway logged,
	// including lines copytruncate destroys between its copy and truncate.
	haproxyLedger string
	nginx         *proc
	haproxy       *proc
	rsyslog       *proc
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The gateways answer by path: /login/… is refused (401), /admin/… is not
// found (404), anything else succeeds. Both trust X-Forwarded-For from
// loopback, so the generator chooses each request's client address.
const nginxConf = `
daemon off;
master_process on;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 2048; }
http {
  access_log %[2]s combined;
  client_body_temp_path %[1]s/tmp/body;
  proxy_temp_path %[1]s/tmp/proxy;
  fastcgi_temp_path %[1]s/tmp/fastcgi;
  uwsgi_temp_path %[1]s/tmp/uwsgi;
  scgi_temp_path %[1]s/tmp/scgi;
  set_real_ip_from 127.0.0.1;
  real_ip_header X-Forwarded-For;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%[3]d;
    location /login/ { return 401 "refused\n"; }
    location /admin/ { return 404 "not found\n"; }
    location / { return 200 "ok\n"; }
  }
}
`

const haproxyConf = `
global
  log 127.0.0.1:%[2]d local0
  pidfile %[1]s/haproxy.pid
  maxconn 4096
defaults
  mode http
  log global
  option httplog
  option dontlognull
  timeout client 30s
  timeout connect 5s
  timeout server 30s
  timeout http-keep-alive 30s
frontend soak
  bind 127.0.0.1:%[3]d
  http-request set-src hdr(x-forwarded-for)
  http-request return status 401 content-type text/plain string refused if { path_beg /login/ }
  http-request return status 404 content-type text/plain string notfound if { path_beg /admin/ }
  http-request return status 200 content-type text/plain string ok
`

const rsyslogConf = `
global(workDirectory="%[1]s")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%[2]d" rcvbufSize="8m")
*.* action(type="omfile" file="%[3]s" template="RSYSLOG_TraditionalFileFormat" flushOnTXEnd="on" asyncWriting="off")
*.* action(type="omfile" file="%[4]s" template="RSYSLOG_TraditionalFileFormat" flushOnTXEnd="on" asyncWriting="off")
`

// startGateways writes the three configurations under dir and starts
// rsyslog, HAProxy and nginx, waiting until each answers.
func startGateways(t testing.TB, dir string) *gateways {
	t.Helper()
	g := &gateways{dir: dir}
	for _, d := range []string{"nginx/tmp", "rsyslog", "logs/nginx", "logs/haproxy"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g.nginxLog = filepath.Join(dir, "logs/nginx/access.log")
	g.haproxyLog = filepath.Join(dir, "logs/haproxy/haproxy.log")
	g.haproxyLedger = filepath.Join(dir, "rsyslog/haproxy.ledger")

	syslogPort := freeUDPPort(t)
	rsConf := filepath.Join(dir, "rsyslog/rsyslog.conf")
	write(t, rsConf, fmt.Sprintf(rsyslogConf, filepath.Join(dir, "rsyslog"), syslogPort, g.haproxyLog, g.haproxyLedger))
	g.rsyslog = newProc(t, "rsyslog", filepath.Join(dir, "rsyslog.stderr"),
		testenv.Binary(t, "rsyslogd"), "-n", "-f", rsConf, "-i", filepath.Join(dir, "rsyslog/rsyslog.pid"))
	g.rsyslog.start(t)

	hp := freePort(t)
	hConf := filepath.Join(dir, "haproxy.cfg")
	write(t, hConf, fmt.Sprintf(haproxyConf, dir, syslogPort, hp))
	g.haproxy = newProc(t, "haproxy", filepath.Join(dir, "haproxy.stderr"), testenv.Binary(t, "haproxy"), "-db", "-f", hConf)
	g.haproxy.env = []string{"TZ=UTC"} // the normalizer reads HAProxy's accept date as UTC
	g.haproxy.start(t)
	g.haproxyURL = fmt.Sprintf("http://127.0.0.1:%d", hp)

	np := freePort(t)
	nConf := filepath.Join(dir, "nginx/nginx.conf")
	write(t, nConf, fmt.Sprintf(nginxConf, filepath.Join(dir, "nginx"), g.nginxLog, np))
	g.nginx = newProc(t, "nginx", filepath.Join(dir, "nginx.stderr"), testenv.Binary(t, "nginx"),
		"-c", nConf, "-p", filepath.Join(dir, "nginx"), "-e", filepath.Join(dir, "nginx/nginx-error.log"))
	g.nginx.start(t)
	g.nginxURL = fmt.Sprintf("http://127.0.0.1:%d", np)

	for _, u := range []string{g.nginxURL, g.haproxyURL} {
		testenv.WaitFor(t, u+" to answer", 30*time.Second, func() bool {
			resp, err := http.Get(u + "/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	// HAProxy's line goes through rsyslog asynchronously: wait for it, so
	// the syslog path is known to work before the run starts.
	testenv.WaitFor(t, "HAProxy's first line in rsyslog's file", 30*time.Second, func() bool {
		b, _ := os.ReadFile(g.haproxyLog)
		return strings.Contains(string(b), "/ready")
	})
	return g
}

func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func write(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// rotateRename is logrotate's default: rename the live file, create an
// empty one, and tell nginx to reopen its logs (SIGUSR1). Lines written
// between the rename and the reopen land in the renamed file, which the
// collector must still finish.
func (g *gateways) rotateRename(n int) error {
	if err := os.Rename(g.nginxLog, fmt.Sprintf("%s.%d", g.nginxLog, n)); err != nil {
		return err
	}
	f, err := os.OpenFile(g.nginxLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	return g.nginx.signal(syscall.SIGUSR1)
}

// rotateCopyTruncate is logrotate's copytruncate on rsyslog's file: copy
// it aside (outside the collector's glob), then truncate it in place while
// rsyslog keeps writing. Lines written between the copy and the truncate
// are in neither file: the collector reads them only if it got there
// before the truncate. The verifier reads rsyslog's ledger to know them.
func (g *gateways) rotateCopyTruncate(n int) error {
	b, err := os.ReadFile(g.haproxyLog)
	if err != nil {
		return err
	}
	if err := os.WriteFile(fmt.Sprintf("%s.copy%d", g.haproxyLog, n), b, 0o644); err != nil {
		return err
	}
	return os.Truncate(g.haproxyLog, 0)
}

// logFiles lists what the gateways logged: nginx's live and renamed logs,
// rsyslog's ledger of HAProxy's lines, and rsyslog's live file (what
// copytruncate left in place).
func (g *gateways) logFiles() (nginx []string, ledger, haproxyLive string) {
	n, _ := filepath.Glob(g.nginxLog + "*")
	return n, g.haproxyLedger, g.haproxyLog
}
