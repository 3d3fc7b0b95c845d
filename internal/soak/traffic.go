//go:build soak

package soak

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// request is one request the generator sent; seq is unique in the run and
// is in the path, so an index document names the request it came from.
type request struct {
	seq     int
	path    string
	ip      string
	status  int // what the gateway answered (0: transport error)
	want    int // what the gateway should answer
	gateway string
	attack  int // index into generator.attacks, -1 for benign
	canary  bool
}

// attack is one scripted attack: a burst that trips exactly one soak rule.
type attack struct {
	rule string
	ips  []string // the attacker addresses (one, or many for a key spread)
	key  string   // the stolen key of a spread, else ""
	last time.Time
}

// generator sends benign traffic at a steady rate through both gateways,
// with a scripted attack every attackEvery.
type generator struct {
	run         string
	urls        map[string]string // gateway name → base URL
	rate        int               // requests per second, benign and attacks together
	attackEvery time.Duration
	workers     int

	mu       sync.Mutex
	seq      int
	reqs     []*request
	attacks  []*attack
	canaries []string
	odd      int // benign refusals and 404s so far (pacer goroutine only)
}

func newGenerator(run string, urls map[string]string, rate int, attackEvery time.Duration) *generator {
	return &generator{run: run, urls: urls, rate: rate, attackEvery: attackEvery, workers: 16}
}

// canaryPrefix starts every canary secret: it must appear nowhere the
// pipeline writes (topics, index, logs, Slack).
const canaryPrefix = "CANARYsoak"

const benignActors = 400

func (g *generator) next(path string, ip string, want int, gw string, attackIdx int) *request {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	r := &request{seq: g.seq, ip: ip, want: want, gateway: gw, attack: attackIdx}
	r.path = fmt.Sprintf(path, g.run, g.seq)
	g.reqs = append(g.reqs, r)
	return r
}

// benign returns a benign request: actor n uses its own key from its own
// address; 1 in 200 is refused (a mistyped password), 1 in 300 is a 404
// on an admin path, 1 in 100 carries a canary key instead of its usual one.
func (g *generator) benign(i int) *request {
	n := i % benignActors
	ip := fmt.Sprintf("10.20.%d.%d", n/200, n%200+1)
	gw := []string{"nginx", "haproxy"}[i%2]
	// The refusals and 404s walk the actors with their own stride, so no
	// actor collects more than one per few minutes.
	switch {
	case i%200 == 7:
		g.odd++
		ip = fmt.Sprintf("10.20.%d.%d", (g.odd*37%benignActors)/200, (g.odd*37%benignActors)%200+1)
		return g.next("/login/soak/%s/%d", ip, 401, gw, -1)
	case i%300 == 11:
		g.odd++
		ip = fmt.Sprintf("10.20.%d.%d", (g.odd*53%benignActors)/200, (g.odd*53%benignActors)%200+1)
		return g.next("/admin/soak/%s/%d", ip, 404, gw, -1)
	case i%100 == 3:
		key := fmt.Sprintf("%s%s%03d", canaryPrefix, g.run, n)
		r := g.next("/api/soak/%s/%d?api_key="+key, ip, 200, gw, -1)
		r.canary = true
		g.mu.Lock()
		g.canaries = append(g.canaries, key)
		g.mu.Unlock()
		return r
	default:
		return g.next(fmt.Sprintf("/api/soak/%%s/%%d?api_key=bk%s%03d", g.run, n), ip, 200, gw, -1)
	}
}

// newAttack scripts attack number k, rotating through the three kinds.
func (g *generator) newAttack(k int) []*request {
	gw := []string{"nginx", "haproxy"}[k%2]
	g.mu.Lock()
	idx := len(g.attacks)
	a := &attack{rule: soakRuleIDs[k%3]}
	g.attacks = append(g.attacks, a)
	g.mu.Unlock()
	var out []*request
	switch a.rule {
	case "soak-bruteforce":
		ip := fmt.Sprintf("198.18.%d.%d", k/250, k%250+1)
		a.ips = []string{ip}
		for range 14 {
			out = append(out, g.next("/login/soak/%s/%d", ip, 401, gw, idx))
		}
	case "soak-admin-probe":
		ip := fmt.Sprintf("198.18.%d.%d", k/250, k%250+1)
		a.ips = []string{ip}
		for range 8 {
			out = append(out, g.next("/admin/soak/%s/%d", ip, 404, gw, idx))
		}
	default:
		// Through either gateway, as the other attacks: both turn the
		// redacted api_key in the query into trailwatch.credential.
		a.key = fmt.Sprintf("stolen%s%04d", g.run, k)
		for j := range 9 {
			ip := fmt.Sprintf("198.19.%d.%d", k%250, j+1)
			a.ips = append(a.ips, ip)
			out = append(out, g.next("/api/soak/%s/%d?api_key="+a.key, ip, 200, gw, idx))
		}
	}
	return out
}

// run sends traffic until ctx ends or d passed.
func (g *generator) runFor(ctx context.Context, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: g.workers, MaxIdleConns: 4 * g.workers},
	}
	defer client.CloseIdleConnections()
	work := make(chan *request, g.workers)
	var wg sync.WaitGroup
	for range g.workers {
		wg.Go(func() {
			for r := range work {
				g.send(client, r)
			}
		})
	}
	// The pacer releases rate/100 requests every 10ms; an attack's burst
	// goes out at once, interleaved with benign requests by the workers.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := float64(g.rate) / 100
	budget := 0.0
	i, k := 0, 0
	nextAttack := time.Now().Add(g.attackEvery / 2)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			if g.attackEvery > 0 && now.After(nextAttack) {
				for _, r := range g.newAttack(k) {
					select {
					case work <- r:
					case <-ctx.Done():
						break loop
					}
				}
				k++
				nextAttack = now.Add(g.attackEvery)
			}
			budget += perTick
			for ; budget >= 1; budget-- {
				select {
				case work <- g.benign(i):
					i++
				case <-ctx.Done():
					break loop
				}
			}
		}
	}
	close(work)
	wg.Wait()
}

func (g *generator) send(client *http.Client, r *request) {
	req, err := http.NewRequest(http.MethodGet, g.urls[r.gateway]+r.path, nil)
	if err != nil {
		return
	}
	req.Header.Set("X-Forwarded-For", r.ip)
	req.Header.Set("User-Agent", "trailwatch-soak/1.0")
	resp, err := client.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	g.mu.Lock()
	r.status = resp.StatusCode
	if r.attack >= 0 {
		g.attacks[r.attack].last = time.Now()
	}
	g.mu.Unlock()
}

// sent returns every request, by sequence number.
func (g *generator) sent() map[int]*request {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[int]*request, len(g.reqs))
	for _, r := range g.reqs {
		out[r.seq] = r
	}
	return out
}
