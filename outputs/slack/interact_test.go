package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/internal/silence"
)

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// sign is Slack's v0 request signature.
func sign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("v0:" + ts + ":"))
	m.Write(body)
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// clickBody is the form Slack posts for a block_actions click.
func clickBody(t *testing.T, actionID, value, responseURL string) []byte {
	t.Helper()
	payload := map[string]any{
		"type":         "block_actions",
		"user":         map[string]any{"id": "U1", "name": "alice"},
		"response_url": responseURL,
		"message": map[string]any{
			"text": "HIGH: Brute force",
			"blocks": []any{
				map[string]any{"type": "section", "block_id": "b1", "text": map[string]any{"type": "mrkdwn", "text": "fields"}},
				map[string]any{"type": "actions", "block_id": actionsBlockID, "elements": []any{
					map[string]any{"type": "button", "action_id": actionAck, "value": value, "text": map[string]any{"type": "plain_text", "text": "Acknowledge"}},
				}},
			},
		},
		"actions": []any{map[string]any{"type": "button", "action_id": actionID, "block_id": actionsBlockID, "value": value}},
	}
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(url.Values{"payload": {string(b)}}.Encode())
}

func TestInteractivity(t *testing.T) {
	value := buttonValue("auth-bruteforce", "source.ip=203.0.113.9")
	tests := []struct {
		name     string
		action   string
		secret   string        // signs with this
		age      time.Duration // timestamp this far in the past
		status   int
		silenced bool
		mark     string // in the replaced message
	}{
		{name: "silence 1h", action: actionSilence + "1h", secret: signingSecret, status: 200, silenced: true, mark: "Silenced by @alice until"},
		{name: "acknowledge", action: actionAck, secret: signingSecret, status: 200, mark: "Acknowledged by @alice"},
		{name: "bad signature", action: actionSilence + "1h", secret: "wrong", status: 401},
		{name: "stale timestamp", action: actionSilence + "24h", secret: signingSecret, age: 6 * time.Minute, status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replaced := make(chan map[string]any, 1)
			resp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var m map[string]any
				_ = json.NewDecoder(r.Body).Decode(&m)
				replaced <- m
				_, _ = w.Write([]byte("ok"))
			}))
			t.Cleanup(resp.Close)
			store := silence.Open(filepath.Join(t.TempDir(), silence.FileName))
			n := newNotifier(t, Config{
				Token: "xoxb-test", Channel: "C1",
				Interactivity: InteractivityConfig{Listen: "127.0.0.1:0", SigningSecret: signingSecret},
			}, WithSilences(store))

			body := clickBody(t, tt.action, value, resp.URL+"/actions/T1/123/abc")
			ts := strconv.FormatInt(time.Now().Add(-tt.age).Unix(), 10)
			req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/slack/interactivity", strings.NewReader(string(body)))
			req.Header.Set("X-Slack-Request-Timestamp", ts)
			req.Header.Set("X-Slack-Signature", sign(tt.secret, ts, body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			n.InteractivityHandler().ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("status = %d (%s), want %d", w.Code, w.Body, tt.status)
			}
			_, ok, err := store.Silenced("auth-bruteforce", "source.ip=203.0.113.9", time.Now())
			if err != nil || ok != tt.silenced {
				t.Fatalf("silenced = %v (%v), want %v", ok, err, tt.silenced)
			}
			if tt.mark == "" {
				select {
				case m := <-replaced:
					t.Fatalf("message replaced by a refused request: %v", m)
				default:
				}
				return
			}
			select {
			case m := <-replaced:
				b, _ := json.Marshal(m)
				if m["replace_original"] != true || !strings.Contains(string(b), tt.mark) || !strings.Contains(string(b), actionsBlockID) {
					t.Errorf("replacement = %s, want replace_original with %q and the buttons kept", b, tt.mark)
				}
			default:
				t.Fatal("message not replaced")
			}
		})
	}
}

func TestButtonsOnlyWithInteractivity(t *testing.T) {
	a := testAlert()
	plain := newNotifier(t, Config{Token: "x", Channel: "C"})
	if text := blockJSON(t, plain.render(&a, view{buttons: plain.buttonsFor("r", "k")})); strings.Contains(text, actionAck) {
		t.Error("buttons without an interactivity endpoint")
	}
	ia := newNotifier(t, Config{Token: "x", Channel: "C", Interactivity: InteractivityConfig{Listen: ":0", SigningSecret: "s"}},
		WithSilences(silence.Open(filepath.Join(t.TempDir(), "s.json"))))
	text := blockJSON(t, ia.render(&a, view{buttons: ia.buttonsFor("r", "k"), silence: true}))
	for _, w := range []string{actionAck, actionSilence + "1h", actionSilence + "24h"} {
		if !strings.Contains(text, w) {
			t.Errorf("message lacks button %s: %s", w, text)
		}
	}
}

func blockJSON(t *testing.T, m message) string {
	t.Helper()
	b, err := json.Marshal(m.blocks)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInteractivityListenerRefusesUnsigned(t *testing.T) {
	n := newNotifier(t, Config{Token: "x", Channel: "C",
		Interactivity: InteractivityConfig{Listen: "127.0.0.1:0", SigningSecret: signingSecret}})
	if err := n.StartInteractivity(); err != nil {
		t.Fatal(err)
	}
	body := clickBody(t, actionAck, buttonValue("r", "k"), "")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+n.InteractivityAddr()+"/slack/interactivity", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned request: %d, want 401", resp.StatusCode)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}
