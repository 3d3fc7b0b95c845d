package kafka

import (
	"context"
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
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

func client(t *testing.T, c Config) *kgo.Client {
	t.Helper()
	opts, err := c.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "tw", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			cfg := DefaultConfig()
			cfg.Brokers = c.ListenAddrs()
			cfg.SASL = SASLConfig{Mechanism: mech, Username: "tw", Password: "s3cret"}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if err := Ping(ctx, client(t, cfg)); err != nil {
				t.Fatalf("right password refused: %v", err)
			}
			cfg.SASL.Password = "wrong"
			ctx2, cancel2 := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel2()
			if err := Ping(ctx2, client(t, cfg)); err == nil {
				t.Fatal("wrong password accepted")
			}
		})
	}
}

func TestSASLPasswordFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", "tw", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cfg.SASL = SASLConfig{Mechanism: "PLAIN", Username: "tw", PasswordFile: p}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := Ping(ctx, client(t, cfg)); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trailwatch-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func TestTLS(t *testing.T) {
	certFile, _, cert := selfSigned(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cfg.TLS = TLSConfig{Enabled: true, CAFile: certFile}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := Ping(ctx, client(t, cfg)); err != nil {
		t.Fatalf("TLS with the right CA: %v", err)
	}
	cfg.TLS = TLSConfig{Enabled: true} // system roots do not trust the test cert
	ctx2, cancel2 := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel2()
	if err := Ping(ctx2, client(t, cfg)); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.Partitions = 0
	c.SASL = SASLConfig{Mechanism: "GSSAPI", Password: config.Secret("x"), PasswordFile: "/f"}
	c.TLS.CertFile = "/c"
	c.Topics.DLQ = ""
	err := c.Validate()
	for _, want := range []string{"partitions", "sasl.mechanism", "sasl.username", "sasl.password", "tls.cert_file", "topics.dlq"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if err := DefaultConfig(); err.Validate() != nil {
		t.Errorf("defaults invalid: %v", err.Validate())
	}
}

func TestEnsureTopicsIsIdempotent(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := DefaultConfig()
	cfg.Brokers = c.ListenAddrs()
	cl := client(t, cfg)
	for range 2 {
		if err := EnsureTopics(t.Context(), cl, 3, -1, cfg.Topics.AllTopics()...); err != nil {
			t.Fatal(err)
		}
		if err := EnsureCompactedTopic(t.Context(), cl, 3, -1, cfg.Topics.Notified); err != nil {
			t.Fatal(err)
		}
	}
	td, err := kadm.NewClient(cl).ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(cfg.Topics.AllTopics(), cfg.Topics.Notified) {
		if d, ok := td[name]; !ok || len(d.Partitions) != 3 {
			t.Errorf("topic %s missing or not 3 partitions", name)
		}
	}
}

// TestEnsureTopicsOnRealKafka creates the pipeline's topics on the real
// broker, twice, with a compacted markers topic.
func TestEnsureTopicsOnRealKafka(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Brokers = testenv.Kafka(t)
	prefix := "kt" + time.Now().Format("150405.000000")
	names := []string{prefix + ".a", prefix + ".b"}
	cl := client(t, cfg)
	for range 2 {
		if err := EnsureTopics(t.Context(), cl, 2, 1, names...); err != nil {
			t.Fatal(err)
		}
		if err := EnsureCompactedTopic(t.Context(), cl, 2, 1, prefix+".c"); err != nil {
			t.Fatal(err)
		}
	}
	// A new topic's configuration reaches every broker's metadata a moment
	// after CreateTopics returns: poll until it is visible.
	adm := kadm.NewClient(cl)
	compacted := func() bool {
		rc, err := adm.DescribeTopicConfigs(t.Context(), prefix+".c")
		if err != nil {
			return false
		}
		v, err := rc.On(prefix+".c", nil)
		if err != nil {
			return false
		}
		for _, c := range v.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil && *c.Value == "compact" {
				return true
			}
		}
		return false
	}
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !compacted() {
		select {
		case <-deadline:
			t.Fatal("markers topic is not compacted")
		case <-tick.C:
		}
	}
}

func TestEmbeddedPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	emb, err := StartEmbedded(dir, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addrs()...), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(t.Context(), cl, 1, -1, "t"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	emb.Close()

	emb, err = StartEmbedded(dir, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(emb.Addrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	fs := cl.PollFetches(ctx)
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "kept" {
		t.Fatalf("after restart got %v (%v)", recs, fs.Err())
	}
}

func TestStartEmbeddedUnwritableDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StartEmbedded(filepath.Join(f, "kafka"), 0, 1); err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Errorf("error %v", err)
	}
}
