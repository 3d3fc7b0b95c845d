package redact

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: on a shared machine it
// measures the benchmark's own work better than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchLines are nginx combined lines as a busy API writes them.
func benchLines(secret bool) [][]byte {
	out := make([][]byte, 1000)
	for i := range out {
		target := fmt.Sprintf("/api/v1/items/%d", i)
		if i%3 == 0 {
			target += fmt.Sprintf("?page=%d&sort=asc", i%17)
		}
		if secret {
			target = fmt.Sprintf("/api/v1/items/%d?api_key=sk_live_%024d", i, i)
		}
		out[i] = fmt.Appendf(nil, `203.0.113.%d - - [10/Oct/2025:13:55:36 +0000] "GET %s HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"`, i%256, target)
	}
	return out
}

func BenchmarkRedact(b *testing.B) {
	r := newTest(b, testKey)
	for _, bc := range []struct {
		name  string
		lines [][]byte
	}{
		{"nginx, no secrets, 1 in 3 with a query", benchLines(false)},
		{"nginx, api_key in every line", benchLines(true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			size := 0
			for _, l := range bc.lines {
				size += len(l)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				for _, l := range bc.lines {
					r.Redact(l)
				}
			}
			lines := float64(len(bc.lines)) * float64(b.N)
			b.ReportMetric(lines/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/lines, "cpu-ns/line")
		})
	}
}
