// Package testenv gives integration tests the real services that
// scripts/services.sh started: a Kafka broker and an OpenSearch node. Their
// addresses come from TW_TEST_KAFKA and TW_TEST_OPENSEARCH
// (`make test` sets both). Without them a test skips on a developer's
// machine, but fails under CI=true: in CI a missing service is an error,
// never a silent skip.
package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Kafka returns the seed brokers of the real test broker.
func Kafka(t testing.TB) []string {
	t.Helper()
	v := need(t, "TW_TEST_KAFKA", "Kafka")
	return strings.Split(v, ",")
}

// OpenSearch returns the URL of the real test OpenSearch node.
func OpenSearch(t testing.TB) string {
	t.Helper()
	return need(t, "TW_TEST_OPENSEARCH", "OpenSearch")
}

func need(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v != "" {
		return v
	}
	Missing(t, "%s is not set: start a real %s with scripts/services.sh start (make test does)", env, what)
	return ""
}

// Missing reports that something a test needs is not on this machine: under
// CI=true the test fails, because CI installs and starts everything; on a
// developer's machine it is skipped with the reason.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI is missing what this test needs: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Binary returns the path of a real peer program (nginx, haproxy, …) that a
// test drives. Missing, the test skips locally but fails under CI=true,
// where scripts/install-peers.sh installs them.
func Binary(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/usr/bin/", "/usr/local/bin/", "/usr/local/sbin/"} {
		p := name
		if dir != "" {
			p = dir + name
		} else if lp, err := exec.LookPath(name); err == nil {
			return lp
		} else {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	Missing(t, "%s is not installed: run scripts/install-peers.sh", name)
	return ""
}

// WaitFor polls cond until it holds, failing the test after timeout. It is
// for conditions with no event to wait on (a port listening, a counter, a
// document count in a real index): each round checks the real state, so it
// is not a sleep standing in for synchronisation.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// Start runs run in a goroutine until the returned stop is called or the
// test ends; stop cancels run's context and waits for it to return.
func Start(t testing.TB, ctx context.Context, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}
