package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/internal/config"
)

// Listener protocols, as used in Record.Origin and by Collector.Addr.
const (
	ProtoUDP = "udp"
	ProtoTCP = "tcp"
	ProtoTLS = "tls"
)

// Collector receives syslog messages over UDP, TCP and TLS. Build it with New.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	allow   []netip.Prefix
	sources map[string]string
	running atomic.Bool

	mu    sync.Mutex
	addrs map[string]net.Addr
	ready chan struct{}

	// stopAt is the read deadline (unix nanos) every connection gets once
	// Run's context ended; 0 while running. See serveConn.
	stopAt atomic.Int64

	messages, bytes, received, truncated, unparsed, empty, udpDropped, lost atomic.Uint64
	denied, rejected, framingErrors, tlsErrors, timeouts, emitErrors        atomic.Uint64
	conns                                                                   atomic.Int64

	dropLog, deniedLog logLimiter
}

// Stats are the collector's counters since New.
type Stats struct {
	// Messages is the number of records Emit acknowledged.
	Messages uint64
	// Bytes is the number of record data bytes Emit acknowledged.
	Bytes uint64
	// Received counts messages accepted into the queue.
	Received uint64
	// Truncated counts messages longer than max_message_bytes, emitted cut.
	Truncated uint64
	// Unparsed counts messages without a recognisable syslog header,
	// emitted whole with the default source.
	Unparsed uint64
	// Empty counts frames skipped because their message was empty
	// (keep-alive newlines, a header without MSG).
	Empty uint64
	// UDPDropped counts datagrams discarded because the queue was full.
	UDPDropped uint64
	// Lost counts received messages abandoned because shutdown_timeout
	// passed before Emit acknowledged them.
	Lost uint64
	// Denied counts connections and datagrams refused by allow.
	Denied uint64
	// Rejected counts connections closed on accept by max_connections.
	Rejected uint64
	// FramingErrors counts TCP/TLS connections closed on an invalid octet
	// count.
	FramingErrors uint64
	// TLSErrors counts failed TLS handshakes (bad or missing client
	// certificate, plain TCP on the TLS port, timeouts).
	TLSErrors uint64
	// Timeouts counts connections closed by idle_timeout or read_timeout.
	Timeouts uint64
	// EmitErrors counts failed Emit calls (each one was retried).
	EmitErrors uint64
	// Connections is the number of TCP and TLS connections open now.
	Connections int
}

var _ ingest.Collector = (*Collector)(nil)

// New validates cfg and builds a collector. It binds nothing and reads no
// file: listeners and certificates are opened by Run. A nil logger
// discards logs.
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
			return nil, fmt.Errorf("syslog collector: host: %w", err)
		}
		cfg.Host = h
	}
	allow, _ := parseAllow(cfg.Allow) // validated above
	return &Collector{
		cfg:     cfg,
		log:     logger.With("collector", cfg.Name),
		allow:   allow,
		sources: cfg.Sources,
		addrs:   map[string]net.Addr{},
		ready:   make(chan struct{}),
	}, nil
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (c *Collector) Stats() Stats {
	return Stats{
		Messages:      c.messages.Load(),
		Bytes:         c.bytes.Load(),
		Received:      c.received.Load(),
		Truncated:     c.truncated.Load(),
		Unparsed:      c.unparsed.Load(),
		Empty:         c.empty.Load(),
		UDPDropped:    c.udpDropped.Load(),
		Lost:          c.lost.Load(),
		Denied:        c.denied.Load(),
		Rejected:      c.rejected.Load(),
		FramingErrors: c.framingErrors.Load(),
		TLSErrors:     c.tlsErrors.Load(),
		Timeouts:      c.timeouts.Load(),
		EmitErrors:    c.emitErrors.Load(),
		Connections:   int(c.conns.Load()),
	}
}

// Ready is closed once the first Run has bound every configured listener.
func (c *Collector) Ready() <-chan struct{} { return c.ready }

// Addr returns the bound address of the listener for proto (ProtoUDP,
// ProtoTCP or ProtoTLS), or nil before Ready or if it is not configured.
// It tells the real port when the configured one is 0.
func (c *Collector) Addr(proto string) net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[proto]
}

// Run binds the configured listeners and receives until ctx is done, handing
// batches of records to emit. It returns an error if a listener cannot be
// bound or a TLS file cannot be loaded, or if Run is already running;
// otherwise nil after ctx ended and what was received was emitted (or
// shutdown_timeout passed). Run may be called again after it returned.
//
// A batch is offered to emit until it succeeds, backing off 100ms..5s; while
// emit is failing or blocked, the queue fills and the listeners stop
// reading. After ctx ends, listeners stop accepting, connections are read
// for what is already in flight (up to drainGrace), and the queue is emitted
// within shutdown_timeout; what is still unacknowledged then is counted in
// Stats.Lost and logged.
func (c *Collector) Run(ctx context.Context, emit ingest.Emit) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("syslog collector: Run is already running")
	}
	defer c.running.Store(false)
	c.stopAt.Store(0)

	var tlsCfg *tls.Config
	if c.cfg.TLS != "" {
		var err error
		if tlsCfg, err = c.loadTLS(); err != nil {
			return fmt.Errorf("syslog collector %s: %w", c.cfg.Name, err)
		}
	}
	ls, err := c.bind(ctx, tlsCfg)
	if err != nil {
		return fmt.Errorf("syslog collector %s: %w", c.cfg.Name, err)
	}

	start := time.Now().UnixNano()
	queue := make(chan ingest.Record, c.cfg.QueueSize)
	abandon := make(chan struct{})
	conns := newConnSet()

	// The emitter gets a context that outlives ctx by shutdown_timeout so
	// what was received is still delivered after cancellation.
	emitCtx, cancelEmit := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelEmit()

	var readers sync.WaitGroup
	for _, l := range ls {
		readers.Go(func() { c.serve(l, start, queue, abandon, conns, &readers) })
	}

	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		c.emitLoop(emitCtx, emit, queue, abandon)
	}()

	<-ctx.Done()
	// Shutdown order: stop accepting and receiving first, so nothing new
	// enters; give connections drainGrace to deliver bytes already sent;
	// then close the queue so the emitter flushes and returns.
	c.stopAt.Store(time.Now().Add(drainGrace).UnixNano())
	for _, l := range ls {
		l.close()
	}
	conns.deadline(time.Unix(0, c.stopAt.Load()))
	budget := time.AfterFunc(c.cfg.ShutdownTimeout, cancelEmit)
	defer budget.Stop()
	readers.Wait()
	close(queue)
	<-emitted
	return nil
}

// drainGrace is how long connections are still read after shutdown starts:
// long enough to take in what a sender already wrote, short enough that a
// sender that keeps writing cannot hold shutdown up.
const drainGrace = 200 * time.Millisecond

func (c *Collector) loadTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.cfg.CertFile, c.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file, key_file: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.cfg.ClientCAFile != "" {
		var pool *x509.CertPool
		if pool, err = config.LoadCAPool(c.cfg.ClientCAFile); err != nil {
			return nil, fmt.Errorf("client_%w", err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// allowed reports whether a sender address passes Config.Allow.
func (c *Collector) allowed(a netip.Addr) bool {
	if len(c.allow) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range c.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// record builds the Record for one frame, copying the message into arena
// (returned grown); observed is when its bytes were read. ok is false for an empty frame, which is skipped.
func (c *Collector) record(frame []byte, truncated bool, arena []byte, observed time.Time) (ingest.Record, []byte, bool) {
	if len(trimTrailer(frame)) == 0 {
		c.empty.Add(1) // keep-alive newline
		return ingest.Record{}, arena, false
	}
	msg, err := Parse(frame)
	data := msg.Msg
	src := c.cfg.Source
	if err != nil {
		c.unparsed.Add(1)
		data = trimTrailer(frame)
	} else if len(msg.AppName) > 0 && c.sources != nil {
		if s, ok := c.sources[string(msg.AppName)]; ok {
			src = s
		}
	}
	if len(data) == 0 {
		// Keep-alive newlines, or a header with an empty MSG: nothing for
		// a normalizer to read.
		c.empty.Add(1)
		return ingest.Record{}, arena, false
	}
	if truncated {
		c.truncated.Add(1)
	}
	// Copy into a shared arena: one allocation per ~32 KiB instead of one
	// per message. Records only keep their own sub-slice.
	if cap(arena)-len(arena) < len(data) {
		arena = make([]byte, 0, max(32<<10, len(data)))
	}
	s := len(arena)
	arena = append(arena, data...)
	return ingest.Record{
		Data:      arena[s:len(arena):len(arena)],
		Source:    src,
		Collector: c.cfg.Name,
		Host:      c.cfg.Host,
		Truncated: truncated,
		Observed:  observed,
	}, arena, true
}

// logLimiter lets a repeated warning through at most once per interval.
type logLimiter struct{ last atomic.Int64 }

const logEvery = 10 * time.Second

func (l *logLimiter) allow() bool {
	now := time.Now().UnixNano()
	last := l.last.Load()
	return now-last >= int64(logEvery) && l.last.CompareAndSwap(last, now)
}
