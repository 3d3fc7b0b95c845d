//go:build soak

package soak

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
)

// page is one message Slack accepted.
type page struct {
	text string // text and blocks, as posted
	at   time.Time
}

// slackServer is slack-go's test server with a chat.postMessage handler
// that records accepted messages and, while a fault is on, answers 429
// (with Retry-After) or 500 without recording: a refused message was not
// posted, so a retry must post it, once.
type slackServer struct {
	srv *slacktest.Server

	mu       sync.Mutex
	status   int // 0: accept; else the status to answer
	pages    []page
	refused  map[int]int
	onAccept func(page)
}

func startSlack(t testing.TB) *slackServer {
	t.Helper()
	s := &slackServer{refused: map[int]int{}}
	s.srv = slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", s.postMessage)
	})
	s.srv.Start()
	t.Cleanup(s.srv.Stop)
	return s
}

func (s *slackServer) postMessage(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	v, _ := url.ParseQuery(string(body))
	s.mu.Lock()
	status := s.status
	if status != 0 {
		s.refused[status]++
		s.mu.Unlock()
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
		return
	}
	p := page{text: v.Get("text") + "\n" + v.Get("blocks") + "\n" + v.Get("attachments"), at: time.Now()}
	s.pages = append(s.pages, p)
	n := len(s.pages)
	cb := s.onAccept
	s.mu.Unlock()
	if cb != nil {
		cb(p)
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.%06d"}`, v.Get("channel"), n)
}

// fail makes Slack answer status (429 or 500) until cleared with 0.
func (s *slackServer) fail(status int) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func (s *slackServer) accepted() []page {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]page(nil), s.pages...)
}

func (s *slackServer) refusals() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.refused {
		out[k] = v
	}
	return out
}
