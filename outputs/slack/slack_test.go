package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"go.uber.org/goleak"

	"github.com/trailwatch/trailwatch/internal/config"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// slacktest's chat.postMessage handler queues every message for an
		// RTM websocket client in a goroutine that blocks until one reads
		// it; these tests connect none.
		goleak.IgnoreTopFunction("github.com/slack-go/slack/slacktest.(*Server).queueForWebsocket"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

func testAlert() schema.Alert {
	first := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	return schema.Alert{
		Event:  schema.EventMeta{ID: "alert-1"},
		Rule:   schema.Rule{ID: "auth-bruteforce", Name: "Brute force against login", Description: "Many failed logins from one address."},
		Source: schema.Endpoint{IP: "203.0.113.9"},
		User:   schema.User{Name: "<!channel> alice"},
		Tags:   []string{"attack.t1110", "owasp.api2"},
		Trailwatch: schema.AlertTrailwatch{
			Severity: "high", Actor: "cred:fp9f2c", Count: 12, Window: "1m0s",
			FirstSeen: first, LastSeen: first.Add(50 * time.Second),
		},
	}
}

// server starts slack-go's test server with extra handlers and stops it
// when the test ends.
func server(t *testing.T, handlers map[string]http.HandlerFunc) *slacktest.Server {
	t.Helper()
	s := slacktest.NewTestServer(func(c slacktest.Customize) {
		for p, h := range handlers {
			c.Handle(p, h)
		}
	})
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// recorder is an http.RoundTripper that keeps a copy of every request body
// sent to the Slack server, then forwards the request unchanged: the
// server's real handler answers.
type recorder struct {
	mu     sync.Mutex
	bodies []recorded
}

type recorded struct {
	path string
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(b))
		r.mu.Lock()
		r.bodies = append(r.bodies, recorded{req.URL.Path, b})
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) all() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.bodies...)
}

func newNotifier(t *testing.T, cfg Config, opts ...Option) *Notifier {
	t.Helper()
	n, err := New(cfg, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(t.Context()) })
	return n
}

// blockText flattens a Block Kit message to its visible text.
func blockText(t *testing.T, blocks slack.Blocks) string {
	t.Helper()
	var sb strings.Builder
	for _, b := range blocks.BlockSet {
		switch b := b.(type) {
		case *slack.HeaderBlock:
			sb.WriteString("header:" + b.Text.Text + "\n")
		case *slack.SectionBlock:
			if b.Text != nil {
				sb.WriteString("section:" + b.Text.Text + "\n")
			}
			for _, f := range b.Fields {
				sb.WriteString("field:" + f.Text + "\n")
			}
		case *slack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if to, ok := e.(*slack.TextBlockObject); ok {
					sb.WriteString("context:" + to.Text + "\n")
				}
			}
		}
	}
	return sb.String()
}

var wantInMessage = []string{
	"header:HIGH: Brute force against login",
	"field:*Actor*\ncred:fp9f2c",
	"field:*User*\n&lt;!channel&gt; alice", // escaped: no @channel ping from a log value
	"field:*Source IP*\n203.0.113.9",
	"field:*Count*\n12",
	"field:*Window*\n1m0s",
	"field:*First seen*\n2024-05-01T10:00:00Z",
	"field:*Last seen*\n2024-05-01T10:00:50Z",
	"field:*Rule*\nauth-bruteforce",
	"field:*Tags*\nattack.t1110, owasp.api2",
	"context:Many failed logins from one address.",
	"section:<https://kibana.example/app/discover#/?q=trailwatch.actor%3Acred%3Afp9f2c&rule=auth-bruteforce|View events>",
}

const eventsTmpl = `https://kibana.example/app/discover#/?q={{ printf "trailwatch.actor:%s" .Trailwatch.Actor | urlquery }}&rule={{ .Rule.ID | urlquery }}`

func TestBotPostsBlockKitMessage(t *testing.T) {
	s := server(t, nil)
	rec := &recorder{}
	n := newNotifier(t, Config{Token: "xoxb-test", Channel: "C0SEC", APIURL: s.GetAPIURL(), EventsURLTemplate: eventsTmpl},
		WithHTTPClient(&http.Client{Transport: rec}))

	if retry, err := n.Notify(t.Context(), testAlert()); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	// A retry of the same batch does not post again.
	if _, err := n.Notify(t.Context(), testAlert()); err != nil {
		t.Fatal(err)
	}
	got := rec.all()
	if len(got) != 1 || got[0].path != "/chat.postMessage" {
		t.Fatalf("requests = %v, want one chat.postMessage", got)
	}
	form, err := url.ParseQuery(string(got[0].body))
	if err != nil {
		t.Fatal(err)
	}
	if form.Get("channel") != "C0SEC" || !strings.HasPrefix(form.Get("text"), "HIGH: Brute force") {
		t.Errorf("channel=%q text=%q", form.Get("channel"), form.Get("text"))
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(form.Get("blocks")), &blocks); err != nil {
		t.Fatal(err)
	}
	text := blockText(t, blocks)
	for _, w := range wantInMessage {
		if !strings.Contains(text, w) {
			t.Errorf("message lacks %q:\n%s", w, text)
		}
	}
}

func TestWebhookPostsBlockKitMessage(t *testing.T) {
	// slacktest has no incoming-webhook endpoint; this handler on its
	// server plays Slack's webhook answer (200 "ok") and hands over the
	// JSON body that slack-go's PostWebhook sent.
	got := make(chan slack.WebhookMessage, 4)
	s := server(t, map[string]http.HandlerFunc{
		"/services/T000/B000/hooksecret": func(w http.ResponseWriter, r *http.Request) {
			var m slack.WebhookMessage
			if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
				http.Error(w, "invalid_payload", http.StatusBadRequest)
				return
			}
			got <- m
			_, _ = io.WriteString(w, "ok")
		},
	})
	hook := "http://" + s.ServerAddr + "/services/T000/B000/hooksecret"
	n := newNotifier(t, Config{WebhookURL: config.Secret(hook), EventsURLTemplate: eventsTmpl})
	second := testAlert()
	second.Event.ID = "alert-2"
	if retry, err := n.Notify(t.Context(), testAlert(), second); err != nil {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	for i := range 2 {
		select {
		case m := <-got:
			text := blockText(t, *m.Blocks)
			for _, w := range wantInMessage {
				if !strings.Contains(text, w) {
					t.Errorf("message %d lacks %q:\n%s", i, w, text)
				}
			}
		case <-t.Context().Done():
			t.Fatal("webhook message never arrived")
		}
	}
}

func TestRetryClassification(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		retry   bool
		want    string
	}{
		{
			name: "503 is retryable",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "upstream down", http.StatusServiceUnavailable)
			},
			retry: true, want: "503",
		},
		{
			name: "channel_not_found is not",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
			},
			want: "channel_not_found",
		},
		{
			name: "invalid_auth is not",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
			},
			want: "invalid_auth",
		},
		{
			name: "Slack internal_error is retryable",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, `{"ok":false,"error":"internal_error"}`)
			},
			retry: true, want: "internal_error",
		},
		{
			name: "403 is not",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "forbidden", http.StatusForbidden)
			},
			want: "403",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := server(t, map[string]http.HandlerFunc{"/chat.postMessage": tt.handler})
			n := newNotifier(t, Config{Token: "xoxb-test", Channel: "C0SEC", APIURL: s.GetAPIURL()})
			retry, err := n.Notify(t.Context(), testAlert())
			if err == nil || retry != tt.retry || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Notify = (%v, %v), want (%v, error containing %q)", retry, err, tt.retry, tt.want)
			}
		})
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	var hits atomic.Int64
	limited := atomic.Bool{}
	limited.Store(true)
	s := server(t, map[string]http.HandlerFunc{
		"/chat.postMessage": func(w http.ResponseWriter, _ *http.Request) {
			hits.Add(1)
			if limited.Load() {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_, _ = io.WriteString(w, `{"ok":true,"channel":"C0SEC","ts":"1.2"}`)
		},
	})
	now := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	n := newNotifier(t, Config{Token: "xoxb-test", Channel: "C0SEC", APIURL: s.GetAPIURL()},
		withClock(func() time.Time { return now }))

	retry, err := n.Notify(t.Context(), testAlert())
	var rl *slack.RateLimitedError
	if !retry || !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Fatalf("Notify = (%v, %v), want retryable RateLimitedError of 7s", retry, err)
	}
	// Within Retry-After the notifier does not call Slack at all.
	now = now.Add(3 * time.Second)
	retry, err = n.Notify(t.Context(), testAlert())
	if !retry || !errors.As(err, &rl) || rl.RetryAfter != 4*time.Second || hits.Load() != 1 {
		t.Fatalf("Notify during Retry-After = (%v, %v) after %d requests, want a local 4s RateLimitedError and 1 request", retry, err, hits.Load())
	}
	limited.Store(false)
	now = now.Add(5 * time.Second)
	if retry, err := n.Notify(t.Context(), testAlert()); err != nil {
		t.Fatalf("Notify after Retry-After = (%v, %v)", retry, err)
	}
	if hits.Load() != 2 {
		t.Errorf("%d requests, want 2", hits.Load())
	}
}

// TestNotifyLeaksNoSecret is alertmanager's AssertNotifyLeaksNoSecret: for
// every failure mode, neither the returned error nor the logs show the
// webhook URL's secret path or the token.
func TestNotifyLeaksNoSecret(t *testing.T) {
	const hookSecret, token = "T0SECRET/B0SECRET/xyzSECRETxyz", "xoxb-SECRET-token"
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	_ = l.Close()

	// The hanging handler waits for the test's end: slacktest hands
	// handlers a request context that is not cancelled when the client
	// gives up. Cleanups run last-in first-out, so release is closed before
	// the server's Stop waits for its connections.
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "x", code) }
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: the server is unreachable
		hang    bool             // the handler never answers
		bot     bool
		timeout time.Duration
	}{
		{name: "webhook unreachable"},
		{name: "webhook 500", handler: status(http.StatusInternalServerError)},
		{name: "webhook 404", handler: status(http.StatusNotFound)},
		{name: "webhook timeout", hang: true, timeout: 50 * time.Millisecond},
		{name: "bot unreachable", bot: true},
		{name: "bot 500", bot: true, handler: status(http.StatusInternalServerError)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := dead
			release := make(chan struct{})
			if tt.hang {
				tt.handler = func(http.ResponseWriter, *http.Request) { <-release }
			}
			if tt.handler != nil {
				s := server(t, map[string]http.HandlerFunc{
					"/services/" + hookSecret: tt.handler,
					"/chat.postMessage":       tt.handler,
				})
				base = "http://" + s.ServerAddr
				t.Cleanup(func() { close(release) })
			}
			cfg := Config{Timeout: tt.timeout}
			if tt.bot {
				cfg.Token, cfg.Channel, cfg.APIURL = token, "C0SEC", base+"/"
			} else {
				cfg.WebhookURL = config.Secret(base + "/services/" + hookSecret)
			}
			var logs bytes.Buffer
			n, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Close(t.Context()) })
			retry, err := n.Notify(t.Context(), testAlert())
			if err == nil {
				t.Fatal("Notify succeeded against a failing server")
			}
			for _, out := range []string{err.Error(), logs.String()} {
				if strings.Contains(out, "SECRET") {
					t.Errorf("secret leaked: %s", out)
				}
			}
			if strings.Contains(tt.name, "unreachable") || strings.Contains(tt.name, "500") || strings.Contains(tt.name, "timeout") {
				if !retry {
					t.Errorf("retry = false for %s (%v)", tt.name, err)
				}
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "webhook", cfg: Config{WebhookURL: "https://hooks.slack.com/services/x"}},
		{name: "bot", cfg: Config{Token: "xoxb", Channel: "C1"}},
		{name: "nothing", cfg: Config{}, want: []string{"webhook_url: required"}},
		{name: "both modes", cfg: Config{WebhookURL: "https://h/x", Token: "t", Channel: "c"}, want: []string{"not both"}},
		{name: "token without channel", cfg: Config{TokenFile: "/run/token"}, want: []string{"channel: required"}},
		{name: "webhook not a URL", cfg: Config{WebhookURL: "hooks.slack.com/SECRET"}, want: []string{"webhook_url: must be"}},
		{name: "bad template", cfg: Config{WebhookURL: "https://h/x", EventsURLTemplate: "{{.Rule"}, want: []string{"events_url_template:"}},
		{name: "secret twice", cfg: Config{Token: "t", TokenFile: "/f", Channel: "c"}, want: []string{"token: set either"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 && err != nil {
				t.Fatalf("Validate = %v", err)
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want %q", err, w)
				}
			}
			if err != nil && strings.Contains(err.Error(), "SECRET") {
				t.Errorf("Validate leaked the secret: %v", err)
			}
		})
	}
}

func BenchmarkMessage(b *testing.B) {
	n, err := New(Config{WebhookURL: "https://hooks.slack.com/services/x", EventsURLTemplate: eventsTmpl}, nil)
	if err != nil {
		b.Fatal(err)
	}
	a := testAlert()
	b.ReportAllocs()
	for b.Loop() {
		_ = n.message(&a)
	}
}

// TestEventsLinkFromKibana links the card to the Discover view built by
// WithEventsLink when no events_url_template is set, escaping what would
// end a mrkdwn link early.
func TestEventsLinkFromKibana(t *testing.T) {
	n := newNotifier(t, Config{WebhookURL: "https://hooks.slack.com/services/x"}, WithEventsLink(func(a schema.Alert) string {
		return "https://kibana.example/app/discover#/?_a=(query:'rule|" + a.Rule.ID + "')"
	}))
	a := testAlert()
	got := n.eventsLink(&a)
	want := "https://kibana.example/app/discover#/?_a=(query:'rule%7C" + a.Rule.ID + "')"
	if got != want {
		t.Errorf("events link %q, want %q", got, want)
	}
	plain := newNotifier(t, Config{WebhookURL: "https://hooks.slack.com/services/x"})
	if l := plain.eventsLink(&a); l != "" {
		t.Errorf("without kibana.url or a template the card has a link: %q", l)
	}
}
