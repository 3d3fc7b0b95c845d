package syslog

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/ingest"
)

// BenchmarkTCP sends 100k nginx access lines with an RFC 3164 header over
// TCP connections and waits until a no-op emit has seen all of them: the
// collector's throughput without Kafka.
func BenchmarkTCP(b *testing.B) {
	const perRound = 100_000
	for _, bc := range []struct {
		name    string
		octet   bool
		senders int
	}{
		{"octet-counted 1 conn", true, 1},
		{"LF 1 conn", false, 1},
		{"octet-counted 4 conns", true, 4},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var sb strings.Builder
			per := perRound / bc.senders
			for i := range per {
				m := fmt.Sprintf("<190>Jan 21 10:00:00 web1 nginx: %s %d", nginxLine, i)
				if bc.octet {
					fmt.Fprintf(&sb, "%d %s", len(m), m)
				} else {
					sb.WriteString(m + "\n")
				}
			}
			payload := []byte(sb.String())

			var seen, want atomic.Int64
			reached := make(chan struct{}, 1)
			emit := func(_ context.Context, recs []ingest.Record) error {
				if seen.Add(int64(len(recs))) >= want.Load() {
					select {
					case reached <- struct{}{}:
					default:
					}
				}
				return nil
			}
			cfg := DefaultConfig()
			cfg.TCP, cfg.Source, cfg.Host = "127.0.0.1:0", "nginx", "bench"
			c, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(b.Context())
			done := make(chan error, 1)
			go func() { done <- c.Run(ctx, emit) }()
			defer func() { cancel(); <-done }()
			<-c.Ready()
			conns := make([]net.Conn, bc.senders)
			for i := range conns {
				if conns[i], err = net.Dial("tcp", c.Addr(ProtoTCP).String()); err != nil {
					b.Fatal(err)
				}
				defer conns[i].Close()
			}

			b.SetBytes(int64(len(payload) * bc.senders))
			b.ReportAllocs()
			start := time.Now()
			rounds := 0
			for b.Loop() {
				rounds++
				want.Store(int64(rounds * per * bc.senders))
				var wg sync.WaitGroup
				for _, conn := range conns {
					wg.Go(func() {
						if _, err := conn.Write(payload); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				for seen.Load() < want.Load() {
					<-reached
				}
			}
			b.ReportMetric(float64(rounds*per*bc.senders)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
