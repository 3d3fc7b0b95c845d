// Package elasticsearch indexes trailwatch documents (events and alerts)
// into Elasticsearch 8/9 or OpenSearch with go-elasticsearch's bulk API.
//
// Every document is written with the bulk "create" action under its
// deterministic _id, so a re-delivered document answers 409 and counts as
// stored: the sink is idempotent and the pipeline's at-least-once delivery
// becomes effectively-once here. Write is synchronous: it returns only once
// the server answered for every document, and classifies each failure as
// retryable (429, 5xx, 413, connection or request-level failure) or
// permanent (any other 4xx, e.g. a mapping conflict, with the server's
// type and reason).
//
// The write path is built for CPU per document, since the indexer shares
// its machine with the node: Write appends the action lines and bodies
// straight into a pooled request buffer (no per-document allocation or
// goroutine hand-off), asks for a filtered response (status and error of
// each item only), and when the response's top-level "errors" is false it
// does not decode the items at all.
//
// The package deliberately does not retry with backoff, split batches or
// dead-letter: the caller does, driven by the *outputs.BatchError. It does
// not search either. Setup (`trailwatch setup elasticsearch`) installs the
// lifecycle policies, the templates with the explicit ECS mapping, and the
// indices or data streams, idempotently; EnsureIndices, run at start-up,
// does the same without the policies.
package elasticsearch

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	es "github.com/elastic/go-elasticsearch/v8"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/outputs"
)

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("elasticsearch: indexer closed")

// Indexer writes documents with bulk create requests. It implements
// outputs.EventWriter and is safe for concurrent use.
type Indexer struct {
	cfg    Config
	log    *slog.Logger
	client *es.Client
	// requests holds a token per bulk request in flight: at most
	// cfg.Workers, across concurrent Writes.
	requests chan struct{}

	// mu is held shared by every Write and exclusively by Close, so Close
	// waits for in-flight Writes before closing the client.
	mu     sync.RWMutex
	closed atomic.Bool
}

var _ outputs.EventWriter = (*Indexer)(nil)

// New validates cfg, resolves its secrets and builds the client. It does
// not contact the server.
func New(cfg Config, logger *slog.Logger) (*Indexer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: %w", err)
	}
	return &Indexer{cfg: cfg, log: logger, client: client, requests: make(chan struct{}, cfg.Workers)}, nil
}

// Client returns the underlying go-elasticsearch client (for admin calls).
func (ix *Indexer) Client() *es.Client { return ix.client }

func newClient(cfg Config) (*es.Client, error) {
	password, err := config.ResolveSecret("password", cfg.Password, cfg.PasswordFile)
	if err != nil {
		return nil, err
	}
	apiKey, err := config.ResolveSecret("api_key", cfg.APIKey, cfg.APIKeyFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = max(cfg.Workers, 2)
	if cfg.CAFile != "" || cfg.InsecureSkipVerify {
		tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // opt-in, documented as tests only
		if cfg.CAFile != "" {
			pool, err := config.LoadCAPool(cfg.CAFile)
			if err != nil {
				return nil, err
			}
			tlsCfg.RootCAs = pool
		}
		tr.TLSClientConfig = tlsCfg
	}
	esCfg := es.Config{
		Addresses:  cfg.Addresses,
		CloudID:    cfg.CloudID,
		Username:   cfg.Username,
		Password:   password.Value(),
		APIKey:     apiKey.Value(),
		Transport:  tr,
		MaxRetries: cfg.MaxRetries,
		// Without a backoff the transport retries at once; a short growing
		// pause gives a restarting node a moment without holding a Write
		// long (the caller's backoff does the rest).
		RetryBackoff: func(attempt int) time.Duration { return time.Duration(attempt) * 100 * time.Millisecond },
	}
	if cfg.Flavor == FlavorOpenSearch {
		esCfg.Interceptors = []elastictransport.InterceptorFunc{productHeader}
	}
	return es.NewClient(esCfg)
}

// productHeader marks every response as coming from Elasticsearch.
// go-elasticsearch v8 has no option to skip its product check, and OpenSearch
// does not send X-Elastic-Product; setting the header through the client's
// documented interceptor hook is the explicit opt-in that flavor: opensearch
// stands for. The APIs used here behave the same on both servers.
func productHeader(next elastictransport.RoundTripFunc) elastictransport.RoundTripFunc {
	return func(req *http.Request) (*http.Response, error) {
		res, err := next(req)
		if res != nil && res.Header.Get("X-Elastic-Product") == "" {
			res.Header.Set("X-Elastic-Product", "Elasticsearch")
		}
		return res, err
	}
}

// Write indexes docs with bulk create and waits for the server's answer on
// every one. It returns nil when all were stored (or already present), a
// *outputs.BatchError naming each failed document otherwise, or ErrClosed.
//
// The batch is cut into cfg.Workers contiguous parts sent concurrently,
// each in requests of at most flush_bytes (a larger document goes alone).
func (ix *Indexer) Write(ctx context.Context, docs []outputs.Document) error {
	if len(docs) == 0 {
		return nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed.Load() {
		return ErrClosed
	}
	parts := min(ix.cfg.Workers, len(docs))
	per := (len(docs) + parts - 1) / parts
	failed := make([][]outputs.ItemError, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*per, min((p+1)*per, len(docs))
		if lo >= hi {
			break
		}
		if hi == len(docs) {
			failed[p] = ix.writePart(ctx, docs, lo, hi)
			break
		}
		wg.Go(func() { failed[p] = ix.writePart(ctx, docs, lo, hi) })
	}
	wg.Wait()
	var be outputs.BatchError
	for _, f := range failed {
		// Parts are in order and each lists its failures in order.
		be.Items = append(be.Items, f...)
	}
	if len(be.Items) == 0 {
		return nil
	}
	return &be
}

// writePart sends docs[lo:hi] in as many bulk requests as flush_bytes asks
// and returns their failures in ascending order.
func (ix *Indexer) writePart(ctx context.Context, docs []outputs.Document, lo, hi int) []outputs.ItemError {
	// Size each body once rather than grow it by doubling: the action
	// line is ~60 bytes plus the index name and the id.
	need := 0
	for _, d := range docs[lo:hi] {
		need += len(d.Body) + len(d.ID) + len(ix.cfg.EventsIndex) + 80
	}
	need = min(need, ix.cfg.FlushBytes+64<<10)
	var failed []outputs.ItemError
	sent := make([]int, 0, hi-lo)
	for i := lo; i < hi; {
		pb := newPooledBody(need)
		body, sent := (*pb.buf)[:0], sent[:0]
		var pre []outputs.ItemError // refused before sending, in order
		for ; i < hi; i++ {
			start := len(body)
			var err error
			if body, err = ix.appendItem(body, docs[i]); err != nil {
				pre = append(pre, outputs.ItemError{Index: i, Reason: err.Error()})
				continue
			}
			if len(body) >= ix.cfg.FlushBytes && len(sent) > 0 {
				// Full: this document opens the next request.
				body = body[:start]
				break
			}
			sent = append(sent, i)
			if len(body) >= ix.cfg.FlushBytes {
				i++
				break
			}
		}
		*pb.buf = body
		var reqFailed []outputs.ItemError
		if len(sent) > 0 {
			reqFailed = ix.bulk(ctx, pb, sent)
		}
		pb.release()
		failed = mergeFailures(failed, pre, reqFailed)
	}
	return failed
}

// mergeFailures appends a and b, each in ascending Index order, to dst in
// ascending order.
func mergeFailures(dst, a, b []outputs.ItemError) []outputs.ItemError {
	for len(a) > 0 && len(b) > 0 {
		if a[0].Index < b[0].Index {
			dst, a = append(dst, a[0]), a[1:]
		} else {
			dst, b = append(dst, b[0]), b[1:]
		}
	}
	return append(append(dst, a...), b...)
}

// bulk sends one bulk request whose actions are the documents sent (their
// docs indexes, in body order) and returns their failures in order.
func (ix *Indexer) bulk(ctx context.Context, body *pooledBody, sent []int) []outputs.ItemError {
	select {
	case ix.requests <- struct{}{}:
		defer func() { <-ix.requests }()
	case <-ctx.Done():
		return allRetryable(sent, truncate("not sent: "+context.Cause(ctx).Error()))
	}
	ctx, cancel := context.WithTimeoutCause(ctx, ix.cfg.RequestTimeout, requestTimeoutCause(ix.cfg.RequestTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, bulkURL, nil)
	if err != nil {
		return allRetryable(sent, truncate("bulk request: "+err.Error()))
	}
	// The transport closes each reader it is given when it is done
	// writing, which may be after the response: the buffer goes back to
	// the pool only then (GetBody serves the transport's retries).
	req.Body, req.GetBody = body.reader(), func() (io.ReadCloser, error) { return body.reader(), nil }
	req.ContentLength = int64(len(*body.buf))
	req.Header.Set("Content-Type", "application/json")
	res, err := ix.client.Perform(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && errors.Is(err, ctx.Err()) {
			err = cause
		}
		ix.log.Warn("elasticsearch bulk request failed", "docs", len(sent), "err", err)
		return allRetryable(sent, truncate("bulk request: "+err.Error()))
	}
	defer func() { _ = res.Body.Close() }()
	respp := bufPool.Get().(*[]byte)
	defer func() {
		if cap(*respp) <= maxPooledResponse {
			bufPool.Put(respp)
		}
	}()
	if n := res.ContentLength; n > int64(cap(*respp)) && n < maxBulkResponse {
		*respp = make([]byte, 0, n+1)
	}
	resp, err := readAll((*respp)[:0], io.LimitReader(res.Body, maxBulkResponse+1))
	*respp = resp
	if err == nil && len(resp) > maxBulkResponse {
		err = fmt.Errorf("over %d MiB", maxBulkResponse>>20)
	}
	if err != nil {
		ix.log.Warn("elasticsearch bulk response unreadable", "docs", len(sent), "err", err)
		return allRetryable(sent, truncate("bulk response: "+err.Error()))
	}
	if res.StatusCode > 299 {
		// The whole request failed (429, 5xx, 413...): no document's fault
		// is known, so every one is retryable.
		ix.log.Warn("elasticsearch bulk request failed", "docs", len(sent), "status", res.StatusCode)
		return allRetryable(sent, truncate(fmt.Sprintf("bulk request: %s: %s", res.Status, resp)))
	}
	if bulkAllOK(resp, len(sent)) {
		return nil
	}
	return bulkItemErrors(resp, sent)
}

// maxBulkResponse bounds a bulk response read into memory; a trimmed
// response is ~25 bytes per document, so only a misbehaving node or proxy
// sends more. Buffers over maxPooledResponse are not kept in the pool.
const (
	maxBulkResponse   = 64 << 20
	maxPooledResponse = 4 << 20
)

// bodyTimestamp reads @timestamp from a JSON document: first by a cheap scan
// for the compact form encoding/json writes, then by decoding.
func bodyTimestamp(body []byte) (time.Time, error) {
	const key = `"@timestamp":"`
	if i := bytes.Index(body, []byte(key)); i >= 0 {
		rest := body[i+len(key):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			if ts, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				return ts, nil
			}
		}
	}
	var doc struct {
		TS time.Time `json:"@timestamp"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.TS.IsZero() {
		return time.Time{}, errors.New("document has no valid @timestamp for a daily index name")
	}
	return doc.TS, nil
}

// Close waits for the Writes in flight (each bounded by request_timeout)
// and closes the client's connections. It is idempotent.
func (ix *Indexer) Close(ctx context.Context) error {
	if ix.closed.Swap(true) {
		return nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := ix.client.Close(ctx); err != nil && !errors.Is(err, es.ErrAlreadyClosed) {
		return fmt.Errorf("elasticsearch: close: %w", err)
	}
	return nil
}
