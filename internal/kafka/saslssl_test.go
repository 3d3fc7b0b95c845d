package kafka

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

// saslSSL returns a Config for the real broker's SASL_SSL listener
// (scripts/kafka.sh: TLS with a generated CA, SCRAM-SHA-512), the password
// read from a 0600 file as a deployment would keep it.
func saslSSL(t *testing.T) Config {
	t.Helper()
	addr := os.Getenv("TW_TEST_KAFKA_SASL_SSL")
	ca, user, pass := os.Getenv("TW_TEST_KAFKA_CA_FILE"), os.Getenv("TW_TEST_KAFKA_SASL_USER"), os.Getenv("TW_TEST_KAFKA_SASL_PASSWORD")
	if addr == "" || ca == "" || user == "" || pass == "" {
		testenv.Missing(t, "TW_TEST_KAFKA_SASL_SSL, TW_TEST_KAFKA_CA_FILE, TW_TEST_KAFKA_SASL_USER, TW_TEST_KAFKA_SASL_PASSWORD are not set: run scripts/services.sh start and source its env file")
	}
	pwFile := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(pwFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.TLS = TLSConfig{Enabled: true, CAFile: ca}
	cfg.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", Username: user, PasswordFile: pwFile}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSASLSSLOnRealKafkaProduceConsume produces to and consumes from a
// topic through Apache Kafka's SASL_SSL listener with nothing but
// trailwatch's kafka section: TLS verified against ca_file and SCRAM-SHA-512
// with password_file.
func TestSASLSSLOnRealKafkaProduceConsume(t *testing.T) {
	cfg := saslSSL(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	topic := fmt.Sprintf("sasl-ssl-%d", time.Now().UnixNano())
	prod := client(t, cfg)
	if err := EnsureTopics(ctx, prod, 2, 1, topic); err != nil {
		t.Fatal(err)
	}
	const n = 20
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Sprintf("record-%d", i)
		want[v] = true
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}

	opts, err := cfg.Opts()
	if err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]bool{}
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records over SASL_SSL before the deadline", len(got), n)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("fetch over SASL_SSL: %v", errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !want[string(r.Value)] {
				t.Errorf("unexpected record %q", r.Value)
			}
			got[string(r.Value)] = true
		})
	}
}

// TestSASLSSLOnRealKafkaRefuses checks that the SASL_SSL listener refuses
// every client that lacks one of its requirements, and that the refusal is
// the one expected (not a timeout standing for anything).
func TestSASLSSLOnRealKafkaRefuses(t *testing.T) {
	good := saslSSL(t)
	tests := []struct {
		name   string
		mutate func(*Config)
		// check, when set, asserts what the error must be.
		check func(error) bool
	}{
		{
			name:   "wrong password",
			mutate: func(c *Config) { c.SASL.PasswordFile, c.SASL.Password = "", config.Secret("not-the-password") },
			check:  func(err error) bool { return errors.Is(err, kerr.SaslAuthenticationFailed) },
		},
		{
			name:   "unknown user",
			mutate: func(c *Config) { c.SASL.Username = "mallory" },
			check:  func(err error) bool { return errors.Is(err, kerr.SaslAuthenticationFailed) },
		},
		{
			name:   "mechanism the listener does not enable",
			mutate: func(c *Config) { c.SASL.Mechanism = "SCRAM-SHA-256" },
			check:  func(err error) bool { return errors.Is(err, kerr.UnsupportedSaslMechanism) },
		},
		{
			name:   "no SASL over TLS",
			mutate: func(c *Config) { c.SASL = SASLConfig{} },
			// The broker drops a connection whose first request is not a
			// SASL handshake.
			check: func(err error) bool {
				var eof *kgo.ErrFirstReadEOF
				return errors.As(err, &eof)
			},
		},
		{
			name:   "SASL without TLS",
			mutate: func(c *Config) { c.TLS = TLSConfig{} },
			// The plaintext request is answered with a TLS alert.
			check: func(err error) bool { return strings.Contains(err.Error(), "tls alert") },
		},
		{
			name:   "TLS without the CA (system roots)",
			mutate: func(c *Config) { c.TLS.CAFile = "" },
			check: func(err error) bool {
				var unknown x509.UnknownAuthorityError
				return errors.As(err, &unknown)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			cfg.DialTimeout = 3 * time.Second
			opts, err := cfg.Opts()
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0), kgo.RetryTimeout(5*time.Second))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
			defer cancel()
			err = cl.Ping(ctx)
			if err == nil {
				t.Fatal("the SASL_SSL listener accepted the client")
			}
			t.Logf("refused: %v", err)
			if tt.check != nil && !tt.check(err) {
				t.Fatalf("refused, but not for the expected reason: %v", err)
			}
		})
	}
}
