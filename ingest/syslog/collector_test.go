package syslog

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

func TestTCPFramings(t *testing.T) {
	msgs := []string{
		"<190>Jan 21 10:00:00 web1 nginx: " + nginxLine,
		"<134>1 2025-01-21T10:00:00Z lb1 haproxy 77 - [x@1 a=\"]\"] GET /x",
		"<13>Jan 21 10:00:00 web1 other: third",
	}
	want := []string{nginxLine, "GET /x", "third"}
	octet := func(m string) string { return fmt.Sprintf("%d %s", len(m), m) }
	cases := []struct {
		name   string
		chunks func() []string // how the stream is cut into writes
	}{
		{"octet counted, one write", func() []string {
			var s string
			for _, m := range msgs {
				s += octet(m)
			}
			return []string{s}
		}},
		{"octet counted, split inside counts and messages", func() []string {
			var s string
			for _, m := range msgs {
				s += octet(m)
			}
			return []string{s[:1], s[1:3], s[3:40], s[40 : len(s)-5], s[len(s)-5:]}
		}},
		{"LF", func() []string { return []string{strings.Join(msgs, "\n") + "\n"} }},
		{"CRLF, split", func() []string {
			s := strings.Join(msgs, "\r\n") + "\r\n"
			return []string{s[:10], s[10:]}
		}},
		{"NUL", func() []string { return []string{strings.Join(msgs, "\x00") + "\x00"} }},
		{"LF, last unterminated", func() []string { return []string{strings.Join(msgs, "\n")} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink()
			cfg := testConfig()
			cfg.Sources = map[string]string{"haproxy": "haproxy"}
			c := start(t, cfg, s.emit)
			conn := dial(t, c.Collector, ProtoTCP)
			for _, ch := range tc.chunks() {
				write(t, conn, ch)
			}
			_ = conn.Close()
			recs := s.wait(t, len(msgs))
			if got := datas(recs); !slices.Equal(got, want) {
				t.Fatalf("data = %q, want %q", got, want)
			}
			local := conn.LocalAddr().String()
			for i, r := range recs {
				if r.Offset != int64(i) || r.Origin != "syslog/tcp/"+local || r.Collector != "syslog" ||
					r.Host != "collector-host" || r.Truncated || r.Observed.IsZero() ||
					!strings.HasPrefix(r.Stream, "syslog/tcp:"+c.Addr(ProtoTCP).String()+"/") {
					t.Errorf("record %d provenance: %+v", i, r)
				}
			}
			if got := []string{recs[0].Source, recs[1].Source, recs[2].Source}; !slices.Equal(got, []string{"nginx", "haproxy", "nginx"}) {
				t.Errorf("sources = %q", got)
			}
		})
	}
}

// Two connections are two streams: their offsets both start at 0, so only
// the stream keeps their record ids apart.
func TestRecordIDsUniqueAcrossConnections(t *testing.T) {
	s := newSink()
	c := start(t, testConfig(), s.emit)
	for range 3 {
		conn := dial(t, c.Collector, ProtoTCP)
		write(t, conn, "<13>a: 1\n<13>a: 2\n")
		_ = conn.Close()
	}
	recs := s.wait(t, 6)
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.ID()] = true
	}
	if len(ids) != 6 {
		t.Fatalf("%d distinct ids for 6 records", len(ids))
	}
}

func TestOversizedMessages(t *testing.T) {
	for _, framing := range []string{"octet", "line"} {
		t.Run(framing, func(t *testing.T) {
			s := newSink()
			cfg := testConfig()
			cfg.MaxMessageBytes = 64
			c := start(t, cfg, s.emit)
			long := "<13>Jan  1 00:00:00 h nginx: " + strings.Repeat("z", 1000)
			conn := dial(t, c.Collector, ProtoTCP)
			if framing == "octet" {
				write(t, conn, fmt.Sprintf("%d %s4 <1>x", len(long), long))
			} else {
				write(t, conn, long+"\n<1>x\n")
			}
			recs := s.wait(t, 2)
			wantData := long[len("<13>Jan  1 00:00:00 h nginx: "):64]
			if string(recs[0].Data) != wantData || !recs[0].Truncated {
				t.Errorf("first record %q truncated=%v, want %q truncated", recs[0].Data, recs[0].Truncated, wantData)
			}
			if string(recs[1].Data) != "x" || recs[1].Truncated {
				t.Errorf("second record %q truncated=%v", recs[1].Data, recs[1].Truncated)
			}
			if st := c.Stats(); st.Truncated != 1 {
				t.Errorf("Stats.Truncated = %d", st.Truncated)
			}
		})
	}
}

func TestGarbage(t *testing.T) {
	t.Run("no header: emitted whole, counted", func(t *testing.T) {
		s := newSink()
		c := start(t, testConfig(), s.emit)
		conn := dial(t, c.Collector, ProtoTCP)
		write(t, conn, "\xff\xfe binary \x01 junk\n\n\n"+nginxLine+"\n")
		recs := s.wait(t, 2)
		if got := datas(recs); !slices.Equal(got, []string{"\xff\xfe binary \x01 junk", nginxLine}) {
			t.Errorf("data = %q", got)
		}
		if st := c.Stats(); st.Unparsed != 2 || st.Empty != 2 {
			t.Errorf("Unparsed, Empty = %d, %d; want 2, 2", st.Unparsed, st.Empty)
		}
	})
	t.Run("bad octet count closes the connection", func(t *testing.T) {
		s := newSink()
		c := start(t, testConfig(), s.emit)
		conn := dial(t, c.Collector, ProtoTCP)
		write(t, conn, "4 <1>a9x9 <1>b")
		waitClosed(t, conn)
		if got := datas(s.wait(t, 1)); !slices.Equal(got, []string{"a"}) {
			t.Errorf("data = %q", got)
		}
		until(t, "framing error counted", func() bool { return c.Stats().FramingErrors == 1 })
	})
}

func TestSlowClients(t *testing.T) {
	cases := []struct {
		name string
		send string
	}{
		{"idle: sends nothing", ""},
		{"read_timeout: message never ends", "<13>Jan  1 00:00:00 h nginx: partial"},
		{"read_timeout: octet count promises more", "100 <13>short"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.IdleTimeout, cfg.ReadTimeout = 100*time.Millisecond, 100*time.Millisecond
			c := start(t, cfg, newSink().emit)
			conn := dial(t, c.Collector, ProtoTCP)
			if tc.send != "" {
				write(t, conn, tc.send)
			}
			waitClosed(t, conn)
			until(t, "timeout counted", func() bool { return c.Stats().Timeouts == 1 })
			if st := c.Stats(); st.Received != 0 {
				t.Errorf("Received = %d for a message that never completed", st.Received)
			}
		})
	}
}

func TestConnectionLimit(t *testing.T) {
	s := newSink()
	cfg := testConfig()
	cfg.MaxConnections = 2
	c := start(t, cfg, s.emit)
	a, b := dial(t, c.Collector, ProtoTCP), dial(t, c.Collector, ProtoTCP)
	write(t, a, "<1>a\n")
	write(t, b, "<1>b\n")
	s.wait(t, 2) // both are being served
	extra := dial(t, c.Collector, ProtoTCP)
	waitClosed(t, extra)
	if st := c.Stats(); st.Rejected != 1 || st.Connections != 2 {
		t.Errorf("Rejected, Connections = %d, %d; want 1, 2", st.Rejected, st.Connections)
	}
	// A slot freed is usable again.
	_ = a.Close()
	until(t, "connection released", func() bool { return c.Stats().Connections == 1 })
	d := dial(t, c.Collector, ProtoTCP)
	write(t, d, "<1>d\n")
	s.wait(t, 3)
}

func TestAllow(t *testing.T) {
	cfg := testConfig()
	cfg.UDP = "127.0.0.1:0"
	cfg.Allow = []string{"10.0.0.0/8"}
	s := newSink()
	c := start(t, cfg, s.emit)
	conn := dial(t, c.Collector, ProtoTCP)
	waitClosed(t, conn)
	u, err := net.Dial("udp", c.Addr(ProtoUDP).String())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	write(t, u, "<1>x")
	until(t, "both refused", func() bool { return c.Stats().Denied == 2 })
	if st := c.Stats(); st.Received != 0 {
		t.Errorf("Received = %d", st.Received)
	}
}

func TestUDP(t *testing.T) {
	s := newSink()
	cfg := testConfig()
	cfg.TCP, cfg.UDP = "", "127.0.0.1:0"
	cfg.MaxMessageBytes = 100
	c := start(t, cfg, s.emit)
	conn, err := net.Dial("udp", c.Addr(ProtoUDP).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 5 {
		write(t, conn, fmt.Sprintf("<190>Jan 21 10:00:00 web1 nginx: line %d\n", i))
	}
	write(t, conn, "<190>Jan 21 10:00:00 web1 nginx: "+strings.Repeat("u", 200))
	recs := s.wait(t, 6)
	for i, r := range recs[:5] {
		if string(r.Data) != fmt.Sprintf("line %d", i) || r.Offset != int64(i) ||
			r.Origin != "syslog/udp/"+conn.LocalAddr().String() || !strings.HasSuffix(r.Stream, "/0") {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if !recs[5].Truncated || len(recs[5].Data) != 100-len("<190>Jan 21 10:00:00 web1 nginx: ") {
		t.Errorf("oversized datagram: truncated=%v len=%d", recs[5].Truncated, len(recs[5].Data))
	}
}

// UDP cannot push back: with the queue full and emit blocked, datagrams are
// dropped and counted, and every datagram is either received or counted.
func TestUDPDropsWhenQueueFullAreCounted(t *testing.T) {
	s := newSink()
	s.gate = make(chan struct{})
	cfg := testConfig()
	cfg.TCP, cfg.UDP = "", "127.0.0.1:0"
	cfg.QueueSize, cfg.BatchLines = 1, 1
	c := start(t, cfg, s.emit)
	conn, err := net.Dial("udp", c.Addr(ProtoUDP).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 50
	for i := range sent {
		write(t, conn, fmt.Sprintf("<1>m%d", i))
	}
	until(t, "every datagram received or dropped", func() bool {
		st := c.Stats()
		return st.Received+st.UDPDropped == sent
	})
	close(s.gate)
	st := c.Stats()
	if st.UDPDropped == 0 {
		t.Fatal("no drop counted with a queue of 1 and emit blocked")
	}
	s.wait(t, int(st.Received))
}

// TCP pushes back: with emit blocked, the collector stops reading, holds at
// most queue + batch + one message per connection, and loses nothing.
func TestTCPBackpressureLosesNothing(t *testing.T) {
	s := newSink()
	s.gate = make(chan struct{})
	cfg := testConfig()
	cfg.QueueSize, cfg.BatchLines = 2, 1
	c := start(t, cfg, s.emit)
	conn := dial(t, c.Collector, ProtoTCP)
	const n = 200
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "<13>Jan  1 00:00:00 h nginx: %d\n", i)
	}
	write(t, conn, b.String())
	until(t, "queue full", func() bool { return c.Stats().Received == 3 })
	if st := c.Stats(); st.Received > uint64(cfg.QueueSize+cfg.BatchLines) {
		t.Fatalf("Received %d with emit blocked: not pushing back", st.Received)
	}
	close(s.gate)
	recs := s.wait(t, n)
	for i, r := range recs {
		if string(r.Data) != fmt.Sprint(i) || r.Offset != int64(i) {
			t.Fatalf("record %d = %q offset %d", i, r.Data, r.Offset)
		}
	}
}

func TestEmitErrorsRetried(t *testing.T) {
	s := newSink()
	s.failNext = 2
	c := start(t, testConfig(), s.emit)
	conn := dial(t, c.Collector, ProtoTCP)
	write(t, conn, "<1>a\n")
	if got := datas(s.wait(t, 1)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("data = %q", got)
	}
	// Messages are counted once emit has returned, a moment after the sink
	// saw them.
	until(t, "the message counted", func() bool { return c.Stats().Messages == 1 })
	if st := c.Stats(); st.EmitErrors != 2 || st.Messages != 1 || st.Bytes != 1 {
		t.Errorf("EmitErrors, Messages, Bytes = %d, %d, %d", st.EmitErrors, st.Messages, st.Bytes)
	}
}

func TestShutdown(t *testing.T) {
	t.Run("flushes what was received", func(t *testing.T) {
		s := newSink()
		s.gate = make(chan struct{})
		c := start(t, testConfig(), s.emit)
		conn := dial(t, c.Collector, ProtoTCP)
		write(t, conn, "<1>a\n<1>b\n<1>c\n")
		until(t, "received", func() bool { return c.Stats().Received == 3 })
		c.cancel()
		close(s.gate) // Kafka recovers during shutdown_timeout
		if err := c.stop(t); err != nil {
			t.Fatal(err)
		}
		if got := datas(s.records()); !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("data = %q", got)
		}
		if st := c.Stats(); st.Lost != 0 || st.Messages != 3 {
			t.Errorf("Lost, Messages = %d, %d", st.Lost, st.Messages)
		}
	})
	t.Run("counts what shutdown_timeout abandons", func(t *testing.T) {
		s := newSink()
		s.gate = make(chan struct{}) // never opened: Kafka stays down
		cfg := testConfig()
		cfg.ShutdownTimeout = 50 * time.Millisecond
		cfg.QueueSize, cfg.BatchLines = 2, 1
		c := start(t, cfg, s.emit)
		conn := dial(t, c.Collector, ProtoTCP)
		write(t, conn, "<1>a\n<1>b\n<1>c\n<1>d\n")
		until(t, "queue full", func() bool { return c.Stats().Received == 3 })
		if err := c.stop(t); err != nil {
			t.Fatal(err)
		}
		// 3 in queue or batch, and the one the reader held when abandoned.
		if st := c.Stats(); st.Lost != 4 || st.Messages != 0 {
			t.Errorf("Lost, Messages = %d, %d; want 4, 0", st.Lost, st.Messages)
		}
	})
}

func TestRunErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cases := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"port in use", func(c *Config) { c.UDP = "127.0.0.1:0"; c.TCP = busy.Addr().String() }, "tcp: listen tcp"},
		{"missing certificate", func(c *Config) {
			c.TLS, c.CertFile, c.KeyFile = "127.0.0.1:0", t.TempDir()+"/none.pem", t.TempDir()+"/none.key"
		}, "cert_file, key_file: open"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.modify(&cfg)
			c, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Run(t.Context(), newSink().emit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run error %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("already running", func(t *testing.T) {
		r := start(t, testConfig(), newSink().emit)
		if err := r.Run(context.Background(), newSink().emit); err == nil {
			t.Fatal("second Run accepted")
		}
	})
}

var _ ingest.Emit = (*sink)(nil).emit
