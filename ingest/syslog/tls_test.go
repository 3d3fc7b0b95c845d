package syslog

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA with a server and a client certificate, written as PEM
// files for the collector and kept as tls values for the test clients.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
	stranger                  tls.Certificate // signed by another CA
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCert(t, "test CA", nil, nil, true)
	srv, srvKey := newCert(t, "127.0.0.1", ca, caKey, false)
	cli, cliKey := newCert(t, "nginx-1", ca, caKey, false)
	otherCA, otherKey := newCert(t, "other CA", nil, nil, true)
	str, strKey := newCert(t, "stranger", otherCA, otherKey, false)
	p := &testPKI{
		caFile:   filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "server.pem"),
		keyFile:  filepath.Join(dir, "server.key"),
		pool:     x509.NewCertPool(),
		client:   tls.Certificate{Certificate: [][]byte{cli.Raw}, PrivateKey: cliKey},
		stranger: tls.Certificate{Certificate: [][]byte{str.Raw}, PrivateKey: strKey},
	}
	p.pool.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", ca.Raw)
	writePEM(t, p.certFile, "CERTIFICATE", srv.Raw)
	der, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.keyFile, "PRIVATE KEY", der)
	return p
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  isCA,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		BasicConstraintsValid: true,
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

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLS(t *testing.T) {
	pki := newPKI(t)
	s := newSink()
	cfg := testConfig()
	cfg.TCP = ""
	cfg.TLS, cfg.CertFile, cfg.KeyFile, cfg.ClientCAFile = "127.0.0.1:0", pki.certFile, pki.keyFile, pki.caFile
	cfg.ReadTimeout = 2 * time.Second
	c := start(t, cfg, s.emit)
	addr := c.Addr(ProtoTLS).String()

	t.Run("client with certificate", func(t *testing.T) {
		d := tls.Dialer{Config: &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}}
		conn, err := d.DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		write(t, conn, "<190>Jan 21 10:00:00 web1 nginx: "+nginxLine+"\n")
		_ = conn.Close()
		recs := s.wait(t, 1)
		if got := datas(recs); !slices.Equal(got, []string{nginxLine}) {
			t.Fatalf("data = %q", got)
		}
		if !strings.HasPrefix(recs[0].Origin, "syslog/tls/127.0.0.1:") {
			t.Errorf("origin = %q", recs[0].Origin)
		}
	})

	refused := []struct {
		name string
		dial func(t *testing.T) net.Conn
	}{
		{"client without certificate", func(t *testing.T) net.Conn {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool})
			if err != nil {
				return nil // refused during the handshake (TLS 1.2)
			}
			return conn
		}},
		{"client certificate from another CA", func(t *testing.T) net.Conn {
			conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.stranger}})
			if err != nil {
				return nil
			}
			return conn
		}},
		{"plain TCP on the TLS port", func(t *testing.T) net.Conn { return dial(t, c.Collector, ProtoTLS) }},
	}
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			conn := tc.dial(t)
			if conn != nil {
				defer conn.Close()
				// With TLS 1.3 the client learns of the refusal on its
				// first read; the message written before must not arrive.
				_, _ = conn.Write([]byte("<190>Jan 21 10:00:00 web1 nginx: must not arrive\n"))
				waitClosed(t, conn)
			}
			until(t, "handshake failure counted", func() bool { return c.Stats().TLSErrors == uint64(i+1) })
		})
	}
	if got := len(s.records()); got != 1 {
		t.Errorf("%d records, want only the authenticated one", got)
	}
}
