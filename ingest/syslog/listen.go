package syslog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// listener is one bound socket: a TCP/TLS listener or a UDP socket.
type listener struct {
	proto string
	name  string // "tcp:127.0.0.1:5514", the bound address, in Record.Stream
	ln    net.Listener
	pc    *net.UDPConn
	tls   *tls.Config
}

func (l *listener) close() {
	if l.ln != nil {
		_ = l.ln.Close()
	}
	if l.pc != nil {
		// Unblock the reader after drainGrace rather than closing at once,
		// so datagrams already in the socket buffer are still read.
		_ = l.pc.SetReadDeadline(time.Now().Add(drainGrace))
	}
}

// bind opens every configured listener, or none: on error those already
// open are closed.
func (c *Collector) bind(ctx context.Context, tlsCfg *tls.Config) ([]*listener, error) {
	var ls []*listener
	fail := func(err error) ([]*listener, error) {
		for _, l := range ls {
			if l.ln != nil {
				_ = l.ln.Close()
			}
			if l.pc != nil {
				_ = l.pc.Close()
			}
		}
		return nil, err
	}
	var lc net.ListenConfig
	if c.cfg.UDP != "" {
		pc, err := lc.ListenPacket(ctx, "udp", c.cfg.UDP)
		if err != nil {
			return fail(fmt.Errorf("udp: %w", err))
		}
		u := pc.(*net.UDPConn)
		ls = append(ls, &listener{proto: ProtoUDP, pc: u})
		if c.cfg.UDPReadBuffer > 0 {
			if err := u.SetReadBuffer(c.cfg.UDPReadBuffer); err != nil {
				return fail(fmt.Errorf("udp_read_buffer: %w", err))
			}
		}
	}
	for _, s := range []struct{ proto, addr string }{{ProtoTCP, c.cfg.TCP}, {ProtoTLS, c.cfg.TLS}} {
		if s.addr == "" {
			continue
		}
		ln, err := lc.Listen(ctx, "tcp", s.addr)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", s.proto, err))
		}
		l := &listener{proto: s.proto, ln: ln}
		if s.proto == ProtoTLS {
			l.tls = tlsCfg
		}
		ls = append(ls, l)
	}
	c.mu.Lock()
	for _, l := range ls {
		var a net.Addr
		if l.ln != nil {
			a = l.ln.Addr()
		} else {
			a = l.pc.LocalAddr()
		}
		l.name = l.proto + ":" + a.String()
		c.addrs[l.proto] = a
		if len(c.allow) == 0 && !isLoopback(a) && (l.proto != ProtoTLS || c.cfg.ClientCAFile == "") {
			c.log.Warn("listener accepts unauthenticated senders from any address; set allow, or use tls with client_ca_file",
				"listener", l.name)
		}
	}
	select {
	case <-c.ready:
	default:
		close(c.ready)
	}
	c.mu.Unlock()
	return ls, nil
}

func isLoopback(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().IsLoopback()
}

// serve runs one listener until it is closed. TCP/TLS connections are
// served by goroutines added to wg, so Run waits for them too.
func (c *Collector) serve(l *listener, start int64, q chan<- ingest.Record, abandon <-chan struct{}, conns *connSet, wg *sync.WaitGroup) {
	if l.pc != nil {
		c.serveUDP(l, start, q)
		return
	}
	var seq atomic.Int64
	backoff := 5 * time.Millisecond
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait rather than spin; the backlog
			// holds connections meanwhile.
			c.log.Warn("accept failed", "listener", l.name, "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil && !c.allowed(ap.Addr()) {
			c.denied.Add(1)
			if c.deniedLog.allow() {
				c.log.Warn("sender not in allow, connection refused", "listener", l.name, "remote", conn.RemoteAddr().String())
			}
			_ = conn.Close()
			continue
		}
		if c.conns.Add(1) > int64(c.cfg.MaxConnections) {
			c.conns.Add(-1)
			c.rejected.Add(1)
			c.log.Warn("max_connections reached, connection refused",
				"listener", l.name, "remote", conn.RemoteAddr().String(), "max_connections", c.cfg.MaxConnections)
			_ = conn.Close()
			continue
		}
		stream := c.cfg.Name + "/" + l.name + "/" + strconv.FormatInt(start, 10) + "/" + strconv.FormatInt(seq.Add(1), 10)
		wg.Go(func() {
			defer c.conns.Add(-1)
			if !conns.add(conn) {
				_ = conn.Close() // shutdown already began
				return
			}
			defer conns.remove(conn)
			c.serveConn(l, conn, stream, q, abandon)
		})
	}
}

// serveConn reads frames from one connection into q until the sender
// closes, a timeout or framing error, or shutdown. Sending to q blocks
// while the queue is full: the connection is then not read, and TCP flow
// control pushes back on the sender.
func (c *Collector) serveConn(l *listener, conn net.Conn, stream string, q chan<- ingest.Record, abandon <-chan struct{}) {
	defer func() { _ = conn.Close() }()
	remote := conn.RemoteAddr().String()
	log := c.log.With("listener", l.name, "remote", remote)
	if l.tls != nil {
		tc := tls.Server(conn, l.tls)
		hd := time.Now().Add(c.cfg.ReadTimeout)
		c.setDeadline(conn, hd)
		_ = conn.SetWriteDeadline(hd)
		if err := tc.Handshake(); err != nil {
			c.tlsErrors.Add(1)
			log.Warn("TLS handshake failed", "err", err)
			return
		}
		conn = tc
	}
	origin := "syslog/" + l.proto + "/" + remote
	dc := &deadlineConn{Conn: conn, c: c}
	f := newFramer(dc, c.cfg.MaxMessageBytes)
	var arena []byte
	var off int64
	for {
		if f.r.Buffered() == 0 {
			// Between messages: the next read may wait idle_timeout.
			dc.idle = true
			_, err := f.r.Peek(1)
			dc.idle = false
			if err != nil {
				c.connDone(log, err, off)
				return
			}
		}
		dc.frameStart = time.Time{} // a new message starts here
		frame, truncated, err := f.next()
		if err != nil {
			c.connDone(log, err, off)
			return
		}
		rec, a, ok := c.record(frame, truncated, arena, dc.lastRead)
		arena = a
		if !ok {
			continue
		}
		if truncated {
			log.Warn("message longer than max_message_bytes, truncated", "offset", off, "max_message_bytes", c.cfg.MaxMessageBytes)
		}
		rec.Origin, rec.Stream, rec.Offset = origin, stream, off
		off++
		select {
		case q <- rec:
			c.received.Add(1)
		case <-abandon:
			c.lost.Add(1)
			return
		}
	}
}

// deadlineConn sets the read deadline before each read from the socket,
// not before each message: a read fills a 64 KiB buffer holding hundreds of
// messages, and time.Now plus SetReadDeadline per message cost a quarter
// of the CPU. Waiting for a message's first byte (idle) may take
// idle_timeout; once a message is partly read, the rest must arrive within
// read_timeout of the first read it needed beyond that (frameStart), so a
// sender trickling bytes cannot hold the connection.
type deadlineConn struct {
	net.Conn
	c          *Collector
	idle       bool      // set by serveConn while waiting between messages
	frameStart time.Time // zeroed by serveConn at each message start
	lastRead   time.Time // when the last read returned: Record.Observed
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	now := time.Now()
	var dl time.Time
	if d.idle {
		dl = now.Add(d.c.cfg.IdleTimeout)
	} else {
		if d.frameStart.IsZero() {
			d.frameStart = now
		}
		dl = d.frameStart.Add(d.c.cfg.ReadTimeout)
	}
	d.c.setDeadline(d.Conn, dl)
	n, err := d.Conn.Read(p)
	if n > 0 {
		d.lastRead = time.Now()
	}
	return n, err
}

// setDeadline sets conn's read deadline to d, or to the shutdown deadline
// if that is earlier. Run stores stopAt before setting it on every
// connection; re-reading it after our own Set closes the race where this
// Set would overwrite Run's.
func (c *Collector) setDeadline(conn net.Conn, d time.Time) {
	if s := c.stopAt.Load(); s != 0 && d.UnixNano() > s {
		d = time.Unix(0, s)
	}
	_ = conn.SetReadDeadline(d)
	if s := c.stopAt.Load(); s != 0 && d.UnixNano() > s {
		_ = conn.SetReadDeadline(time.Unix(0, s))
	}
}

// connDone classifies why a connection ended, counting and logging the
// abnormal cases.
func (c *Collector) connDone(log *slog.Logger, err error, messages int64) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		log.Debug("connection closed", "messages", messages)
	case errors.Is(err, errFraming):
		c.framingErrors.Add(1)
		log.Warn("invalid octet count, connection closed", "messages", messages)
	case errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded):
		if c.stopAt.Load() != 0 {
			return // shutdown, not the sender's fault
		}
		c.timeouts.Add(1)
		log.Warn("connection timed out (idle_timeout or read_timeout), closed", "messages", messages)
	default:
		log.Warn("connection read failed", "err", err, "messages", messages)
	}
}

// serveUDP reads datagrams, one message each, until the socket's deadline
// (set at shutdown) passes. A datagram that finds the queue full is
// dropped: UDP senders cannot be slowed down, and blocking here would only
// move the loss to the kernel's socket buffer, uncounted.
func (c *Collector) serveUDP(l *listener, start int64, q chan<- ingest.Record) {
	defer func() { _ = l.pc.Close() }()
	stream := c.cfg.Name + "/" + l.name + "/" + strconv.FormatInt(start, 10) + "/0"
	buf := make([]byte, c.cfg.MaxMessageBytes+1)
	var arena []byte
	var off int64
	var lastAddr netip.AddrPort
	var origin string
	for {
		n, addr, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			c.log.Warn("udp read failed", "listener", l.name, "err", err)
			continue
		}
		if !c.allowed(addr.Addr()) {
			c.denied.Add(1)
			if c.deniedLog.allow() {
				c.log.Warn("sender not in allow, datagram discarded", "listener", l.name, "remote", addr.String())
			}
			continue
		}
		truncated := n > c.cfg.MaxMessageBytes
		if truncated {
			n = c.cfg.MaxMessageBytes
		}
		rec, a, ok := c.record(buf[:n], truncated, arena, time.Now())
		arena = a
		if !ok {
			continue
		}
		if addr != lastAddr {
			lastAddr, origin = addr, "syslog/udp/"+addr.String()
		}
		rec.Origin, rec.Stream, rec.Offset = origin, stream, off
		off++
		select {
		case q <- rec:
			c.received.Add(1)
		default:
			if d := c.udpDropped.Add(1); c.dropLog.allow() {
				c.log.Warn("queue full, UDP message dropped (UDP has no flow control; use TCP, or raise queue_size)",
					"listener", l.name, "dropped_total", d)
			}
		}
	}
}

// connSet tracks open connections so shutdown can set their deadlines.
type connSet struct {
	mu     sync.Mutex
	m      map[net.Conn]struct{}
	closed bool
}

func newConnSet() *connSet { return &connSet{m: map[net.Conn]struct{}{}} }

func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// deadline stops new connections and sets every open one's read deadline.
func (s *connSet) deadline(d time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.m {
		_ = c.SetReadDeadline(d)
	}
}
