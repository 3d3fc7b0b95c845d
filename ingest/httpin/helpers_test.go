package httpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sink is an ingest.Emit keeping every acknowledged record.
type sink struct {
	mu   sync.Mutex
	recs []ingest.Record
}

func (s *sink) emit(_ context.Context, recs []ingest.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		// The body buffer belongs to the request: keep a copy, as Kafka does.
		r.Data = bytes.Clone(r.Data)
		s.recs = append(s.recs, r)
	}
	return nil
}

func (s *sink) records() []ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Record(nil), s.recs...)
}

func (s *sink) data() []string {
	var out []string
	for _, r := range s.records() {
		out = append(out, string(r.Data))
	}
	return out
}

// testConfig listens on a free loopback port with routes /kong and /ingest.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Host = "testhost"
	cfg.Routes = []Route{{Path: "/kong", Source: "kong"}, {Path: "/ingest", Source: "nginx"}}
	return cfg
}

// server is a running collector and a client for it.
type server struct {
	c      *Collector
	url    string // scheme://host:port
	client *http.Client
	stop   func() // cancels Run and waits for it to return nil
}

// start runs a collector on cfg until the test ends. clientTLS, when set,
// is the client's TLS configuration (and the URL is https).
func start(t *testing.T, cfg Config, emit ingest.Emit, clientTLS *tls.Config) *server {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, emit) }()
	select {
	case <-c.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	}
	tr := &http.Transport{TLSClientConfig: clientTLS}
	scheme := "http"
	if clientTLS != nil {
		scheme = "https"
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
			tr.CloseIdleConnections()
		})
	}
	t.Cleanup(stop)
	return &server{c: c, url: scheme + "://" + c.Addr().String(), client: &http.Client{Transport: tr}, stop: stop}
}

// request describes one POST.
type request struct {
	path        string
	contentType string
	encoding    string
	token       string
	body        []byte
	chunked     bool // send without Content-Length
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   string
}

func (s *server) post(t *testing.T, r request) response {
	t.Helper()
	resp, err := s.do(t.Context(), r)
	if err != nil {
		t.Fatalf("POST %s: %v", r.path, err)
	}
	return resp
}

func (s *server) do(ctx context.Context, r request) (response, error) {
	var body io.Reader = bytes.NewReader(r.body)
	if r.chunked {
		body = io.MultiReader(body) // hides the length: chunked encoding
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+r.path, body)
	if err != nil {
		return response{}, err
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.encoding != "" {
		req.Header.Set("Content-Encoding", r.encoding)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func kongEntry(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kong_http_log.json"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// pki is a throwaway CA with a server and a client certificate, as PEM
// files under a temporary directory.
type pki struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "trailwatch test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "leaf"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	p := &pki{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "server.pem"),
		keyFile:  filepath.Join(dir, "server-key.pem"),
		pool:     x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth)
	writePEM(t, p.certFile, "CERTIFICATE", srvDER)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", marshalKey(t, srvKey))
	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth)
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func marshalKey(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
