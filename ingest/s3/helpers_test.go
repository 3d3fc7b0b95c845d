package s3

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	stopGateway()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var _ ingest.Collector = (*Collector)(nil)

// s3Env is where the real S3-compatible test server listens.
type s3Env struct {
	endpoint, access, secret string
}

// gateway is a versitygw this test binary started itself, when
// scripts/versitygw.sh did not (TW_TEST_S3 unset).
var gateway struct {
	once sync.Once
	env  s3Env
	err  error
	cmd  *exec.Cmd
	dir  string
}

// testS3 returns the real S3 server: TW_TEST_S3 (scripts/versitygw.sh), or
// else a versitygw started from $TW_CACHE/bin or PATH. Missing, the test
// skips locally and fails under CI=true.
func testS3(t testing.TB) s3Env {
	t.Helper()
	if v := os.Getenv("TW_TEST_S3"); v != "" {
		return s3Env{endpoint: v, access: envOr("TW_TEST_S3_ACCESS_KEY", "trailwatch"), secret: envOr("TW_TEST_S3_SECRET_KEY", "trailwatch-secret")}
	}
	gateway.once.Do(startGateway)
	if gateway.err != nil {
		testenv.Missing(t, "no S3 server: %v; run scripts/versitygw.sh start", gateway.err)
	}
	return gateway.env
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func startGateway() {
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		cache := os.Getenv("TW_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "trailwatch")
		}
		bin = filepath.Join(cache, "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			gateway.err = fmt.Errorf("versitygw not in PATH nor %s", bin)
			return
		}
	}
	dir, err := os.MkdirTemp("", "tw-versitygw-")
	if err != nil {
		gateway.err = err
		return
	}
	gateway.dir = dir
	for _, d := range []string{"root", "sidecar"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			gateway.err = err
			return
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gateway.err = err
		return
	}
	addr := l.Addr().String()
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		gateway.err = err
		return
	}
	defer logf.Close()
	env := s3Env{endpoint: "http://" + addr, access: "trailwatch", secret: "trailwatch-secret"}
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", "--sidecar", filepath.Join(dir, "sidecar"), filepath.Join(dir, "root"))
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+env.access, "ROOT_SECRET_ACCESS_KEY="+env.secret)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		gateway.err = err
		return
	}
	gateway.cmd = cmd
	// Readiness: the port accepts connections (polled, bounded).
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			gateway.err = fmt.Errorf("versitygw did not listen on %s within 30s (log %s)", addr, logf.Name())
			return
		}
		<-tick.C
	}
	gateway.env = env
}

func stopGateway() {
	if gateway.cmd != nil {
		_ = gateway.cmd.Process.Kill()
		_ = gateway.cmd.Wait()
	}
	if gateway.dir != "" {
		os.RemoveAll(gateway.dir)
	}
}

// testClient is an S3 client for the test's own uploads.
func testClient(t testing.TB, env s3Env) *minio.Client {
	t.Helper()
	host := strings.TrimPrefix(env.endpoint, "http://")
	tr, err := minio.DefaultTransport(false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	cl, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(env.access, env.secret, ""),
		BucketLookup: minio.BucketLookupPath,
		Region:       "us-east-1",
		Transport:    tr,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// newBucket creates a bucket of its own for the test.
func newBucket(t testing.TB, cl *minio.Client) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "tw-" + hex.EncodeToString(b[:])
	if err := cl.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket: %v", err)
	}
	return name
}

func put(t testing.TB, cl *minio.Client, bucket, key string, data []byte) string {
	t.Helper()
	info, err := cl.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info.ETag
}

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// testConfig reads bucket from env, polling fast, with a checkpoint in dir.
func testConfig(env s3Env, bucket, dir string) Config {
	cfg := DefaultConfig()
	cfg.Endpoint = env.endpoint
	cfg.AccessKeyID = env.access
	cfg.SecretAccessKey = config.Secret(env.secret)
	cfg.UsePathStyle = true
	cfg.Bucket = bucket
	cfg.Source = "alb"
	cfg.Host = "testhost"
	cfg.PollInterval = 20 * time.Millisecond
	cfg.Settle = 0
	cfg.RequestTimeout = 10 * time.Second
	cfg.CheckpointFile = filepath.Join(dir, "cp", "s3.json")
	return cfg
}

// sink is an ingest.Emit keeping every acknowledged batch; it fails the
// next failNext calls, or every call from the failFrom-th on (when > 0).
type sink struct {
	mu       sync.Mutex
	recs     []ingest.Record
	calls    int
	failNext int
	failFrom int
}

func (s *sink) emit(_ context.Context, recs []ingest.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failNext > 0 || (s.failFrom > 0 && s.calls >= s.failFrom) {
		if s.failNext > 0 {
			s.failNext--
		}
		return errors.New("broker unavailable")
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func (s *sink) records() []ingest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Record(nil), s.recs...)
}

func (s *sink) lines() []string {
	var out []string
	for _, r := range s.records() {
		out = append(out, string(r.Data))
	}
	return out
}

func (s *sink) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// start runs a collector on cfg in the background and returns a function
// that stops it and waits for Run to return nil.
func start(t *testing.T, cfg Config, s *sink) (*Collector, func()) {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, s.emit) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	})
	t.Cleanup(stop)
	return c, stop
}

// waitFor polls an observable condition until it holds, failing after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, what, 30*time.Second, cond)
}

// idle waits until c has completed two more full passes, so everything
// listable now has been read.
func idle(t *testing.T, c *Collector) {
	t.Helper()
	n := c.Stats().Passes
	waitFor(t, "two more passes", func() bool { return c.Stats().Passes >= n+2 })
}

func readCP(t *testing.T, cfg Config) checkpoint {
	t.Helper()
	cp, err := loadCheckpoint(cfg.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func equalLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines %q, want %d lines %q", len(got), short(got), len(want), short(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("line %d = %q, want %q", i, short(got[i:i+1]), short(want[i:i+1]))
		}
	}
}

// short abbreviates long lines in failure messages.
func short(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 120 {
			l = fmt.Sprintf("%s…(%d bytes)", l[:100], len(l))
		}
		out[i] = l
	}
	return out
}

// albLine is an ALB access log line for request i.
func albLine(i int) string {
	return fmt.Sprintf(`https 2025-10-10T13:55:%02d.123456Z app/my-lb/50dc6c495c0c9188 203.0.113.%d:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET https://api.example.com:443/v1/items/%d HTTP/1.1" "curl/8.5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "api.example.com" "-" 0 2025-10-10T13:55:36.120000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"`, i%60, i%256, i)
}

func albLines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, albLine(i))
	}
	return out
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithCancel(t.Context())
}
