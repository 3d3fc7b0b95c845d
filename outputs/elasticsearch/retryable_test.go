package elasticsearch

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestRetryable checks which setup failures the pipeline waits out at
// start-up: no answer, 429 and 5xx are retryable; a 4xx refusal is not.
// The refusal and the unreachable node are real: the first comes from the
// OpenSearch node, the second from an address nothing listens on.
func TestRetryable(t *testing.T) {
	cfg := testConfig(t, nodeURL(t))
	ix, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := ix.put(t.Context(), "/_component_template/"+cfg.EventsIndex+"-bad", map[string]any{"template": "not an object"})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := DefaultConfig()
	down.Addresses = []string{"http://" + ln.Addr().String()}
	down.MaxRetries = 1
	down.RequestTimeout = 5 * time.Second
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	dix, err := New(down, nil)
	if err != nil {
		t.Fatal(err)
	}
	unreachable := dix.EnsureIndices(t.Context())

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "node refused the body (real 4xx)", err: refused, want: false},
		{name: "node unreachable (real)", err: unreachable, want: true},
		{name: "429", err: fmt.Errorf("wrapped: %w", statusErr(http.StatusTooManyRequests, []byte(`{}`))), want: true},
		{name: "503", err: statusErr(http.StatusServiceUnavailable, []byte(`{"error":{"type":"cluster_block_exception","reason":"blocked"}}`)), want: true},
		{name: "401", err: statusErr(http.StatusUnauthorized, []byte(`{"error":{"type":"security_exception","reason":"no"}}`)), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name != "nil" && tt.err == nil {
				t.Fatal("the case's error did not happen")
			}
			if got := Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
