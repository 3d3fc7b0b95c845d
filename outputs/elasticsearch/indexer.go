// Package elasticsearch indexes trailwatch documents (events and alerts)
// into Elasticsearch 8/9 or OpenSearch through go-elasticsearch's
// esutil.BulkIndexer.
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
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

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
	bulk   esutil.BulkIndexer

	// mu is held shared by every Write and exclusively by Close: Add on a
	// closed BulkIndexer panics, so Close waits for in-flight Writes.
	mu     sync.RWMutex
	closed atomic.Bool
}

var _ outputs.EventWriter = (*Indexer)(nil)

// New validates cfg, resolves its secrets and builds the client and bulk
// indexer. It does not contact the server.
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
	ix := &Indexer{cfg: cfg, log: logger, client: client}
	ix.bulk, err = esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:        client,
		NumWorkers:    cfg.Workers,
		FlushBytes:    cfg.FlushBytes,
		FlushInterval: cfg.FlushInterval,
		// The workers send bulk requests under context.Background(); these
		// hooks bound each request by request_timeout so a hung node cannot
		// hold a Write forever.
		OnFlushStart: ix.flushStart,
		OnFlushEnd:   flushEnd,
		OnError: func(_ context.Context, err error) {
			logger.Warn("elasticsearch bulk request failed", "err", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: bulk indexer: %w", err)
	}
	return ix, nil
}

// Client returns the underlying go-elasticsearch client (for admin calls).
func (ix *Indexer) Client() *es.Client { return ix.client }

type cancelKey struct{}

func (ix *Indexer) flushStart(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeoutCause(ctx, ix.cfg.RequestTimeout,
		fmt.Errorf("elasticsearch: bulk request exceeded request_timeout %s", ix.cfg.RequestTimeout))
	return context.WithValue(ctx, cancelKey{}, cancel)
}

func flushEnd(ctx context.Context) {
	if cancel, ok := ctx.Value(cancelKey{}).(context.CancelFunc); ok {
		cancel()
	}
}

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
func (ix *Indexer) Write(ctx context.Context, docs []outputs.Document) error {
	if len(docs) == 0 {
		return nil
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.closed.Load() {
		return ErrClosed
	}
	res := newResults(len(docs))
	for i, d := range docs {
		index, err := ix.indexFor(d)
		if err != nil {
			res.fail(i, false, err.Error())
			continue
		}
		item := esutil.BulkIndexerItem{
			Index:      index,
			Action:     "create",
			DocumentID: d.ID,
			Body:       bytes.NewReader(d.Body),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) {
				res.ok(i)
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, r esutil.BulkIndexerResponseItem, err error) {
				ok, retry, reason := classify(r, err)
				if ok {
					res.ok(i)
					return
				}
				res.fail(i, retry, reason)
			},
		}
		if err := ix.bulk.Add(ctx, item); err != nil {
			// Nothing from i on was queued: all of it is the caller's to retry.
			for j := i; j < len(docs); j++ {
				res.fail(j, true, "not sent: "+err.Error())
			}
			break
		}
	}
	// Flush sends every worker's buffer and returns after the responses are
	// handled, so every item queued above has had its callback unless ctx
	// ended first; finish marks the rest retryable.
	flushErr := ix.bulk.Flush(ctx)
	return res.finish(flushErr)
}

// indexFor names the index a document goes to.
func (ix *Indexer) indexFor(d outputs.Document) (string, error) {
	if d.ID == "" {
		return "", errors.New("document has no id: refusing to index without a deterministic _id")
	}
	var base string
	switch d.Kind {
	case outputs.KindEvents:
		base = ix.cfg.EventsIndex
	case outputs.KindAlerts:
		base = ix.cfg.AlertsIndex
	default:
		return "", fmt.Errorf("unknown document kind %q", d.Kind)
	}
	if ix.cfg.Mode != ModeDaily {
		// single: the index; data_stream: the stream, which routes a
		// create to its write index.
		return base, nil
	}
	ts := d.Timestamp
	if ts.IsZero() {
		var err error
		if ts, err = bodyTimestamp(d.Body); err != nil {
			return "", err
		}
	}
	return base + "-" + ts.UTC().Format("2006.01.02"), nil
}

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

// Close flushes what is queued and stops the bulk workers, waiting at most
// until ctx ends. It is idempotent.
func (ix *Indexer) Close(ctx context.Context) error {
	if ix.closed.Swap(true) {
		return nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	err := ix.bulk.Close(ctx)
	if cerr := ix.client.Close(ctx); cerr != nil && !errors.Is(cerr, es.ErrAlreadyClosed) {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("elasticsearch: close: %w", err)
	}
	return nil
}
