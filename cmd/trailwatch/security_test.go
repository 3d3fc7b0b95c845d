package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/stages"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, plus a second, untrusted CA with a client certificate of its
// own; every file is PEM under one directory.
type testPKI struct {
	caFile, serverCert, serverKey string
	client, rogueClient           tls.Certificate
	roots                         *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := makeCert(t, "trailwatch test CA", nil, nil, true)
	rogue, rogueKey := makeCert(t, "rogue CA", nil, nil, true)
	srv, srvKey := makeCert(t, "127.0.0.1", ca, caKey, false, x509.ExtKeyUsageServerAuth)
	cli, cliKey := makeCert(t, "shipper", ca, caKey, false, x509.ExtKeyUsageClientAuth)
	rcli, rcliKey := makeCert(t, "shipper", rogue, rogueKey, false, x509.ExtKeyUsageClientAuth)
	p := testPKI{
		caFile:      writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw),
		serverCert:  writePEM(t, dir, "server.pem", "CERTIFICATE", srv.Raw),
		serverKey:   writePEM(t, dir, "server.key", "PRIVATE KEY", marshalKey(t, srvKey)),
		client:      tls.Certificate{Certificate: [][]byte{cli.Raw}, PrivateKey: cliKey},
		rogueClient: tls.Certificate{Certificate: [][]byte{rcli.Raw}, PrivateKey: rcliKey},
		roots:       x509.NewCertPool(),
	}
	p.roots.AddCert(ca)
	return p
}

// makeCert issues a certificate signed by parent (self-signed when parent
// is nil).
func makeCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, usage ...x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddr returns a loopback address no one listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func writeSecret(t *testing.T, dir, name, value string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// securityLine is an nginx access line with a path unique to the test.
func securityLine(path string) string {
	ts := time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700")
	return fmt.Sprintf(`10.20.30.40 - - [%s] "GET %s HTTP/1.1" 200 17 "-" "security/1.0"`, ts, path)
}

// indexed reports whether the file index holds an event for path.
func indexed(t *testing.T, dataDir, path string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "output", "events.ndjson"))
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte(`"`+path+`"`))
}

// refused asserts that an HTTP exchange failed in the TLS layer (no
// response at all), as a listener requiring a client certificate does to a
// client without one or with one it does not trust.
func refusedTLS(t *testing.T, what string, err error, resp *http.Response) {
	t.Helper()
	if err == nil {
		resp.Body.Close()
		t.Fatalf("%s: got %s, want the TLS handshake refused", what, resp.Status)
	}
	if !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("%s: failed, but not in TLS: %v", what, err)
	}
}

func do(t *testing.T, cl *http.Client, method, u string, body []byte, hdr map[string]string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return cl.Do(req)
}

func wantStatus(t *testing.T, what string, resp *http.Response, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s: got %s, want %d", what, resp.Status, want)
	}
}

func httpsClient(roots *x509.CertPool, certs ...tls.Certificate) *http.Client {
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
			// Used only by requests that send "Expect: 100-continue".
			ExpectContinueTimeout: 10 * time.Second,
		},
	}
}

// slackSign signs body for the interactivity endpoint as Slack does.
func slackSign(secret string, ts time.Time, body []byte) map[string]string {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:%s", stamp, body)
	return map[string]string{
		"Content-Type":              "application/x-www-form-urlencoded",
		"X-Slack-Request-Timestamp": stamp,
		"X-Slack-Signature":         "v0=" + hex.EncodeToString(mac.Sum(nil)),
	}
}

// TestListenersRefuseUnauthenticatedAndOversized runs `trailwatch run`
// as a separate process with every listener secured: the HTTP receiver
// (HTTPS, client certificates, bearer tokens, max_body_bytes), the syslog
// TLS collector (client certificates, max_message_bytes), the telemetry
// listener (HTTPS, basic auth) and the Slack interactivity endpoint
// (HTTPS, signed requests). Each refuses a client without the credential
// it requires and input over its limit, and takes the authenticated,
// right-sized input, which reaches the index.
func TestListenersRefuseUnauthenticatedAndOversized(t *testing.T) {
	brokers := testenv.Kafka(t)
	pki := newTestPKI(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	run := fmt.Sprintf("sec%d", time.Now().UnixNano())
	repoRules, _ := filepath.Abs("../../rules")

	const (
		token         = "push-token-7d1c"
		metricsPass   = "metrics-pass-42ab"
		signingSecret = "slack-signing-secret-9e8f"
	)
	slk := slacktest.NewTestServer((&slackRecorder{}).bind)
	slk.Start()
	t.Cleanup(slk.Stop)
	httpAddr, syslogAddr, telAddr, slackAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	serverTLS := fmt.Sprintf("cert_file: %s, key_file: %s", pki.serverCert, pki.serverKey)
	cfg := fmt.Sprintf(`
data_dir: %[1]s
http: {listen: "%[2]s", username: metrics, password_file: %[3]s, %[4]s}
log: {level: info}
kafka:
  brokers: [%[5]s]
  group_prefix: %[6]s
  partitions: 2
  topics: {raw: %[6]s.raw, events: %[6]s.events, enriched: %[6]s.enriched, alerts: %[6]s.alerts, dlq: %[6]s.dlq, notified: %[6]s.notified,
           repartition: %[6]s.repartition, state: %[6]s.state, keyed_state: %[6]s.state.keyed}
collect:
  files: []
  http:
    - {name: push, listen: "%[7]s", source: nginx, tokens_file: %[8]s, %[4]s, client_ca_file: %[9]s, max_body_bytes: 4096}
  syslog:
    - {name: sys, tls: "%[10]s", source: nginx, %[4]s, client_ca_file: %[9]s, max_message_bytes: 1024, flush_interval: 50ms}
detect:
  rules: [%[11]s]
index: {type: file}
notify:
  console: false
  slack:
    token: xoxb-security-test
    channel: "#api-security"
    api_url: "%[12]s"
    interactivity: {listen: "%[13]s", signing_secret_file: %[14]s, tls_cert_file: %[15]s, tls_key_file: %[16]s}
`, dataDir, telAddr, writeSecret(t, dir, "metrics.pw", metricsPass), serverTLS, strings.Join(brokers, ","), run,
		httpAddr, writeSecret(t, dir, "tokens", "# shippers\n"+token), pki.caFile, syslogAddr, repoRules,
		slk.GetAPIURL(), slackAddr, writeSecret(t, dir, "signing.secret", signingSecret), pki.serverCert, pki.serverKey)
	cfgPath := filepath.Join(dir, "trailwatch.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "run -c "+cfgPath)

	anon := httpsClient(pki.roots)
	mtls := httpsClient(pki.roots, pki.client)
	telURL := "https://" + telAddr
	waitFor(t, "the telemetry listener to answer an authenticated /readyz with 200", 90*time.Second, func() bool {
		c.alive(t)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, telURL+"/readyz", nil)
		req.SetBasicAuth("metrics", metricsPass)
		resp, err := anon.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	for _, a := range []string{httpAddr, syslogAddr, slackAddr} {
		waitFor(t, "a listener on "+a, 30*time.Second, func() bool {
			c.alive(t)
			conn, err := net.Dial("tcp", a)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
	}

	t.Run("http receiver", func(t *testing.T) {
		u := "https://" + httpAddr + "/ingest"
		good := "/api/security/http-accepted"
		line := []byte(securityLine(good) + "\n")
		auth := map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + token}
		plain := map[string]string{"Content-Type": "text/plain"}

		resp, err := do(t, anon, http.MethodPost, u, line, auth)
		refusedTLS(t, "no client certificate", err, resp)
		resp, err = do(t, httpsClient(pki.roots, pki.rogueClient), http.MethodPost, u, line, auth)
		refusedTLS(t, "client certificate from an untrusted CA", err, resp)
		resp, err = do(t, &http.Client{Timeout: 15 * time.Second}, http.MethodPost, "http://"+httpAddr+"/ingest", line, auth)
		wantStatus(t, "plain HTTP to the HTTPS listener", resp, err, http.StatusBadRequest)

		resp, err = do(t, mtls, http.MethodPost, u, line, plain)
		wantStatus(t, "no bearer token", resp, err, http.StatusUnauthorized)
		resp, err = do(t, mtls, http.MethodPost, u, line, map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer wrong-" + token})
		wantStatus(t, "wrong bearer token", resp, err, http.StatusUnauthorized)
		big := []byte(strings.Repeat(securityLine("/api/security/http-oversized")+"\n", 4096/80+10))
		// As a careful shipper sends a big body: the listener refuses it by
		// its Content-Length before it is sent. Without the Expect, the
		// listener's answer and close (this client sends Connection: close)
		// can cut the client's write short: a broken pipe, not the 413.
		resp, err = do(t, mtls, http.MethodPost, u, big, map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + token, "Expect": "100-continue"})
		wantStatus(t, fmt.Sprintf("body of %d bytes over max_body_bytes 4096", len(big)), resp, err, http.StatusRequestEntityTooLarge)

		resp, err = do(t, mtls, http.MethodPost, u, line, auth)
		wantStatus(t, "client certificate, token, right size", resp, err, http.StatusOK)
		waitFor(t, "the accepted line in the index", 90*time.Second, func() bool {
			c.alive(t)
			return indexed(t, dataDir, good)
		})
		if indexed(t, dataDir, "/api/security/http-oversized") {
			t.Error("a line of the refused oversized body reached the index")
		}
	})

	t.Run("syslog tls", func(t *testing.T) {
		frame := func(path string) string { return "<134>Nov 20 12:00:00 gw nginx: " + securityLine(path) + "\n" }
		// dialRefused sends a message over a connection the listener must
		// refuse: the TLS handshake (or, under TLS 1.3, the first read after
		// it) fails, and the message never arrives.
		dialRefused := func(what, path string, certs ...tls.Certificate) {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", syslogAddr,
				&tls.Config{RootCAs: pki.roots, Certificates: certs, MinVersion: tls.VersionTLS12})
			if err != nil {
				return // refused in the handshake
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = conn.Write([]byte(frame(path)))
			_, err = conn.Read(make([]byte, 1))
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("%s: the connection stayed open (read: %v)", what, err)
			}
		}
		dialRefused("no client certificate", "/api/security/syslog-nocert")
		dialRefused("client certificate from an untrusted CA", "/api/security/syslog-rogue", pki.rogueClient)

		conn, err := tls.Dial("tcp", syslogAddr, &tls.Config{RootCAs: pki.roots, Certificates: []tls.Certificate{pki.client}, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("client certificate refused: %v", err)
		}
		defer conn.Close()
		oversized := "/api/security/syslog-oversized/" + strings.Repeat("x", 2000)
		good := "/api/security/syslog-accepted"
		w := bufio.NewWriter(conn)
		_, _ = w.WriteString(frame(oversized))
		_, _ = w.WriteString(frame(good))
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the right-sized syslog message in the index", 90*time.Second, func() bool {
			c.alive(t)
			return indexed(t, dataDir, good)
		})
		// The oversized message was cut at max_message_bytes and the normalize
		// stage dead-lettered it as truncated: counted, never indexed.
		var truncated int
		waitFor(t, "the oversized syslog message on the dead-letter topic", 60*time.Second, func() bool {
			truncated = 0
			scanTopics(t, brokers, []string{run + ".dlq"}, func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == stages.HeaderDLQClass && string(h.Value) == stages.ReasonTruncated &&
						bytes.Contains(r.Value, []byte("/api/security/syslog-oversized/")) {
						truncated++
					}
				}
			})
			return truncated > 0
		})
		if truncated != 1 {
			t.Errorf("%d truncated records on the dead-letter topic, want 1", truncated)
		}
		if indexed(t, dataDir, "/api/security/syslog-oversized/") {
			t.Error("the oversized syslog message reached the index")
		}
		for _, p := range []string{"/api/security/syslog-nocert", "/api/security/syslog-rogue"} {
			if indexed(t, dataDir, p) {
				t.Errorf("a message sent without a trusted client certificate (%s) reached the index", p)
			}
		}
	})

	t.Run("telemetry", func(t *testing.T) {
		resp, err := do(t, &http.Client{Timeout: 15 * time.Second}, http.MethodGet, "http://"+telAddr+"/metrics", nil, nil)
		wantStatus(t, "plain HTTP to the HTTPS listener", resp, err, http.StatusBadRequest)
		resp, err = do(t, anon, http.MethodGet, telURL+"/metrics", nil, nil)
		wantStatus(t, "no credentials", resp, err, http.StatusUnauthorized)
		get := func(user, pass string, hdr map[string]string) (*http.Response, error) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, telURL+"/metrics", nil)
			req.SetBasicAuth(user, pass)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			return anon.Do(req)
		}
		resp, err = get("metrics", "wrong-"+metricsPass, nil)
		wantStatus(t, "wrong password", resp, err, http.StatusUnauthorized)
		resp, err = get("admin", metricsPass, nil)
		wantStatus(t, "wrong user", resp, err, http.StatusUnauthorized)
		resp, err = get("metrics", metricsPass, map[string]string{"X-Padding": strings.Repeat("p", 64<<10)})
		wantStatus(t, "64 KiB of headers", resp, err, http.StatusRequestHeaderFieldsTooLarge)

		resp, err = get("metrics", metricsPass, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("trailwatch_")) {
			t.Fatalf("authenticated /metrics: %s, %d bytes without trailwatch_ metrics", resp.Status, len(body))
		}
	})

	t.Run("slack interactivity", func(t *testing.T) {
		u := "https://" + slackAddr + "/slack/interactivity"
		body := []byte("payload=" + url.QueryEscape(`{"type":"block_actions","actions":[]}`))
		resp, err := do(t, anon, http.MethodPost, u, body, map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		wantStatus(t, "unsigned request", resp, err, http.StatusUnauthorized)
		resp, err = do(t, anon, http.MethodPost, u, body, slackSign("not-the-secret", time.Now(), body))
		wantStatus(t, "signed with another secret", resp, err, http.StatusUnauthorized)
		resp, err = do(t, anon, http.MethodPost, u, body, slackSign(signingSecret, time.Now().Add(-10*time.Minute), body))
		wantStatus(t, "replayed (10 minutes old)", resp, err, http.StatusUnauthorized)
		tampered := slackSign(signingSecret, time.Now(), body)
		resp, err = do(t, anon, http.MethodPost, u, append(body, "&x=1"...), tampered)
		wantStatus(t, "body changed after signing", resp, err, http.StatusUnauthorized)
		big := append([]byte("payload="), bytes.Repeat([]byte("a"), 1<<20)...)
		resp, err = do(t, anon, http.MethodPost, u, big, slackSign(signingSecret, time.Now(), big))
		wantStatus(t, "signed body over 1 MiB", resp, err, http.StatusRequestEntityTooLarge)

		resp, err = do(t, anon, http.MethodPost, u, body, slackSign(signingSecret, time.Now(), body))
		wantStatus(t, "signed request", resp, err, http.StatusOK)
	})
}

// kafkaSASLSSL returns the real broker's SASL_SSL listener and its client
// credentials (scripts/kafka.sh writes them into the services env file).
func kafkaSASLSSL(t *testing.T) (addr, caFile, user, pass string) {
	t.Helper()
	addr, caFile = os.Getenv("TW_TEST_KAFKA_SASL_SSL"), os.Getenv("TW_TEST_KAFKA_CA_FILE")
	user, pass = os.Getenv("TW_TEST_KAFKA_SASL_USER"), os.Getenv("TW_TEST_KAFKA_SASL_PASSWORD")
	if addr == "" || caFile == "" || user == "" || pass == "" {
		testenv.Missing(t, "TW_TEST_KAFKA_SASL_SSL and its CA file, user and password are not set: run scripts/services.sh start and source its env file")
	}
	return addr, caFile, user, pass
}

// TestRunOverKafkaSASLSSL runs the whole pipeline in a child process
// against Apache Kafka's SASL_SSL listener (TLS verified with ca_file,
// SCRAM-SHA-512 with password_file): a line pushed to the HTTP receiver is
// indexed. With a wrong password `trailwatch run` refuses to start and says
// why.
func TestRunOverKafkaSASLSSL(t *testing.T) {
	addr, caFile, user, pass := kafkaSASLSSL(t)
	dir := t.TempDir()
	run := fmt.Sprintf("saslssl%d", time.Now().UnixNano())
	repoRules, _ := filepath.Abs("../../rules")
	const token = "sasl-ssl-push-token"
	config := func(name, password string) (cfgPath, dataDir, httpAddr string) {
		dataDir = filepath.Join(dir, name, "data")
		httpAddr = freeAddr(t)
		cfg := fmt.Sprintf(`
data_dir: %[1]s
http: {listen: ""}
kafka:
  brokers: [%[2]s]
  tls: {enabled: true, ca_file: %[3]s}
  sasl: {mechanism: SCRAM-SHA-512, username: %[4]s, password_file: %[5]s}
  group_prefix: %[6]s
  partitions: 2
  topics: {raw: %[6]s.raw, events: %[6]s.events, enriched: %[6]s.enriched, alerts: %[6]s.alerts, dlq: %[6]s.dlq, notified: %[6]s.notified,
           repartition: %[6]s.repartition, state: %[6]s.state, keyed_state: %[6]s.state.keyed}
collect:
  files: []
  http:
    - {name: push, listen: "%[7]s", source: nginx, tokens: [%[8]s]}
detect:
  rules: [%[9]s]
index: {type: file}
notify: {console: false}
`, dataDir, addr, caFile, user, writeSecret(t, dir, name+".pw", password), run, httpAddr, token, repoRules)
		cfgPath = filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfgPath, dataDir, httpAddr
	}

	t.Run("wrong password", func(t *testing.T) {
		cfgPath, _, _ := config("wrong", "not-"+pass)
		c := startChild(t, "run -c "+cfgPath)
		select {
		case err := <-c.done:
			c.done <- err
			if err == nil {
				t.Fatal("trailwatch run exited 0 with a wrong Kafka password")
			}
		case <-time.After(60 * time.Second):
			t.Fatal("trailwatch run kept running with a wrong Kafka password")
		}
		if !strings.Contains(c.stderr.String(), "SASL_AUTHENTICATION_FAILED") {
			t.Fatalf("the error does not say that authentication failed:\n%s", c.stderr.String())
		}
	})

	t.Run("pipeline", func(t *testing.T) {
		cfgPath, dataDir, httpAddr := config("right", pass)
		c := startChild(t, "run -c "+cfgPath)
		path := "/api/security/over-sasl-ssl"
		body := []byte(securityLine(path) + "\n")
		cl := &http.Client{Timeout: 15 * time.Second}
		waitFor(t, "the HTTP receiver to accept the line", 90*time.Second, func() bool {
			c.alive(t)
			resp, err := do(t, cl, http.MethodPost, "http://"+httpAddr+"/ingest", body,
				map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + token})
			if err != nil {
				return false // not listening yet
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		waitFor(t, "the line in the index", 90*time.Second, func() bool {
			c.alive(t)
			return indexed(t, dataDir, path)
		})
	})
}
