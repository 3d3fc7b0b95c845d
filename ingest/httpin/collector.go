package httpin

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/config"
)

// Collector is the HTTP receiver. Build it with New.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	routes  map[string]string   // path → source
	tokens  [][sha256.Size]byte // SHA-256 of each accepted token
	tlsConf *tls.Config         // nil serves plain HTTP
	sem     chan struct{}       // one slot per in-flight request

	running atomic.Bool
	ready   chan struct{} // closed once the listener is bound
	addr    atomic.Value  // net.Addr

	requests, accepted, records, bytes, truncated   atomic.Uint64
	unauthorized, tooLarge, badRequest, unsupported atomic.Uint64
	throttled, emitErrors                           atomic.Uint64
}

// Stats are the collector's counters since New.
type Stats struct {
	// Requests counts requests to the ingest routes, whatever their outcome.
	Requests uint64
	// Accepted counts requests answered 200 (their records acknowledged).
	Accepted uint64
	// Records counts records Emit acknowledged.
	Records uint64
	// Bytes counts record data bytes Emit acknowledged.
	Bytes uint64
	// Truncated counts acknowledged records cut at max_record_bytes.
	Truncated uint64
	// Unauthorized counts 401 answers.
	Unauthorized uint64
	// TooLarge counts 413 answers.
	TooLarge uint64
	// BadRequest counts 400 answers (undecodable body, nesting too deep).
	BadRequest uint64
	// Unsupported counts 415 answers (unknown Content-Type or -Encoding).
	Unsupported uint64
	// Throttled counts 429 answers (in-flight limit or ack timeout).
	Throttled uint64
	// EmitErrors counts 503 answers (Emit failed before the ack timeout).
	EmitErrors uint64
}

var _ ingest.Collector = (*Collector)(nil)

// New validates cfg, reads the token file and the TLS material, and builds
// a collector. It does not listen: Run does. A nil logger discards logs.
func New(cfg Config, logger *slog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("http collector: host: %w", err)
		}
		cfg.Host = h
	}
	c := &Collector{
		cfg:    cfg,
		log:    logger.With("collector", cfg.Name),
		routes: map[string]string{},
		sem:    make(chan struct{}, cfg.MaxInFlight),
		ready:  make(chan struct{}),
	}
	for _, r := range cfg.routes() {
		c.routes[r.Path] = r.Source
	}
	tokens := append([]config.Secret(nil), cfg.Tokens...)
	if cfg.TokensFile != "" {
		more, err := readTokens(cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("http collector: tokens_file: %w", err)
		}
		tokens = append(tokens, more...)
	}
	for _, t := range tokens {
		c.tokens = append(c.tokens, sha256.Sum256([]byte(t.Value())))
	}
	if cfg.CertFile != "" {
		tc, err := serverTLS(cfg)
		if err != nil {
			return nil, fmt.Errorf("http collector: %w", err)
		}
		c.tlsConf = tc
	}
	return c, nil
}

// readTokens reads one token per line, skipping blank and "#" lines.
func readTokens(path string) ([]config.Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []config.Secret
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, config.Secret(line))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return out, nil
}

// serverTLS loads the server certificate and, for mTLS, the client CAs.
func serverTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCAFile != "" {
		pool, err := config.LoadCAPool(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_%w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Ready is closed once Run has bound its listener; Addr is valid from then.
func (c *Collector) Ready() <-chan struct{} { return c.ready }

// Addr returns the address Run listens on, or nil before Ready.
func (c *Collector) Addr() net.Addr {
	a, _ := c.addr.Load().(net.Addr)
	return a
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (c *Collector) Stats() Stats {
	return Stats{
		Requests:     c.requests.Load(),
		Accepted:     c.accepted.Load(),
		Records:      c.records.Load(),
		Bytes:        c.bytes.Load(),
		Truncated:    c.truncated.Load(),
		Unauthorized: c.unauthorized.Load(),
		TooLarge:     c.tooLarge.Load(),
		BadRequest:   c.badRequest.Load(),
		Unsupported:  c.unsupported.Load(),
		Throttled:    c.throttled.Load(),
		EmitErrors:   c.emitErrors.Load(),
	}
}

// Run listens on cfg.Listen and serves until ctx is done, handing each
// request's records to emit in one call. It returns nil after ctx is done
// and every handler has returned, or an error if it cannot listen or is
// already running. Run may be called once per Collector.
//
// Shutdown: the listener closes at once, so no new request is read; requests
// in flight get shutdown_timeout to finish (their emit to be acknowledged and
// their 200 sent). Then their contexts are cancelled, which makes emit
// return, and they are answered 503 or not at all: either way the shipper
// retries them, and the ids dedupe what was stored.
func (c *Collector) Run(ctx context.Context, emit ingest.Emit) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("http collector: Run may be called only once")
	}
	if ctx.Err() != nil {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http collector %s: listen: %w", c.cfg.Name, err)
	}
	c.addr.Store(ln.Addr())
	close(c.ready)

	// Handlers run under base, not ctx: cancelling ctx starts a graceful
	// shutdown, and only once its budget is spent are handlers cancelled.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	// handlers counts running handlers so Run can wait for them: Server.Close
	// does not. stopping keeps Add from racing with Wait.
	var (
		handlers sync.WaitGroup
		mu       sync.Mutex
		stopping bool
	)
	stop := func() {
		mu.Lock()
		stopping = true
		mu.Unlock()
		handlers.Wait()
	}
	h := c.handler(emit)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if stopping {
				mu.Unlock()
				c.unavailable(w, "shutting down")
				return
			}
			handlers.Add(1)
			mu.Unlock()
			defer handlers.Done()
			h.ServeHTTP(w, r)
		}),
		TLSConfig:         c.tlsConf,
		ReadHeaderTimeout: c.cfg.ReadHeaderTimeout,
		ReadTimeout:       c.cfg.ReadTimeout,
		WriteTimeout:      c.cfg.WriteTimeout,
		IdleTimeout:       c.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	c.log.Info("listening", "addr", ln.Addr().String(), "tls", c.tlsConf != nil,
		"mtls", c.cfg.ClientCAFile != "", "auth", len(c.tokens) > 0)
	if len(c.tokens) == 0 && c.cfg.ClientCAFile == "" {
		c.log.Warn("no tokens and no client_ca_file: any client that reaches the listener can write records")
	}

	served := make(chan error, 1)
	go func() {
		if c.tlsConf != nil {
			// ServeTLS takes the certificate from TLSConfig and adds h2.
			served <- srv.ServeTLS(ln, "", "")
			return
		}
		served <- srv.Serve(ln)
	}()
	select {
	case err := <-served:
		// Serve failed on its own (the listener broke).
		cancelBase()
		stop()
		return fmt.Errorf("http collector %s: %w", c.cfg.Name, err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		c.log.Warn("shutdown budget spent, cancelling in-flight requests", "err", err)
	}
	// Cancel what is left, close its connections and wait for its handlers
	// so no goroutine outlives Run.
	cancelBase()
	_ = srv.Close()
	stop()
	<-served
	return nil
}
