package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/trailwatch/trailwatch/internal/silence"
)

// maxInteractionBody bounds a request body; Slack's payloads are a few KB.
const maxInteractionBody = 1 << 20

// StartInteractivity listens on interactivity.listen (HTTPS when a
// certificate is configured) and serves the button endpoint until Close.
// It does nothing when the endpoint is not configured.
func (n *Notifier) StartInteractivity() error {
	ic := n.cfg.Interactivity
	if !ic.enabled() {
		return nil
	}
	l, err := net.Listen("tcp", ic.Listen)
	if err != nil {
		return fmt.Errorf("slack: interactivity.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(ic.Path, n.InteractivityHandler())
	srv := &http.Server{
		Handler: mux,
		// Slack waits 3s for an answer; slow clients get no more.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
	}
	n.mu.Lock()
	n.srv, n.srvAddr = srv, l.Addr().String()
	n.mu.Unlock()
	go func() {
		var err error
		if ic.TLSCertFile != "" {
			err = srv.ServeTLS(l, ic.TLSCertFile, ic.TLSKeyFile)
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("slack interactivity listener stopped", "err", err)
		}
	}()
	n.log.Info("slack interactivity endpoint listening", "addr", l.Addr().String(), "path", ic.Path, "tls", ic.TLSCertFile != "")
	return nil
}

// InteractivityAddr is the address the endpoint listens on ("" before
// StartInteractivity).
func (n *Notifier) InteractivityAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srvAddr
}

// InteractivityHandler serves Slack's interactivity requests: it verifies
// X-Slack-Signature (v0, HMAC-SHA256 of "v0:timestamp:body" with the
// signing secret; timestamps older than 5 minutes are refused as replays),
// then acts on the buttons: Acknowledge marks the group and its message,
// Silence 1h/24h stores a silence for the group and marks the message.
// Unverified requests get 401 and change nothing.
func (n *Notifier) InteractivityHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInteractionBody))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := n.verify(r.Header, body); err != nil {
			n.log.Warn("slack interactivity request refused", "remote", r.RemoteAddr, "err", err)
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		form, err := parseForm(body)
		if err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		var cb slack.InteractionCallback
		if err := json.Unmarshal([]byte(form), &cb); err != nil {
			http.Error(w, "bad payload", http.StatusBadRequest)
			return
		}
		for _, act := range cb.ActionCallback.BlockActions {
			if err := n.act(r.Context(), &cb, act); err != nil {
				n.log.Warn("slack interaction failed", "action", act.ActionID, "err", err)
				http.Error(w, "action failed", http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	})
}

// verify checks the request signature.
func (n *Notifier) verify(h http.Header, body []byte) error {
	if !n.signing.IsSet() {
		return errors.New("no signing secret configured")
	}
	sv, err := slack.NewSecretsVerifier(h, n.signing.Value())
	if err != nil {
		return err // missing headers, expired timestamp
	}
	if _, err := sv.Write(body); err != nil {
		return err
	}
	return sv.Ensure()
}

func parseForm(body []byte) (string, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return "", err
	}
	p := vals.Get("payload")
	if p == "" {
		return "", errors.New("no payload")
	}
	return p, nil
}

// act performs one button click.
func (n *Notifier) act(ctx context.Context, cb *slack.InteractionCallback, act *slack.BlockAction) error {
	rule, key, ok := parseButtonValue(act.Value)
	if !ok {
		return nil // not one of ours
	}
	who := "@" + cb.User.Name
	if cb.User.Name == "" {
		who = "<@" + cb.User.ID + ">"
	}
	now := n.now()
	var status string
	switch {
	case act.ActionID == actionAck:
		n.gmu.Lock()
		if g := n.groups[groupID(rule, key)]; g != nil {
			g.AckedBy, g.dirty = who, true
		}
		n.gmu.Unlock()
		n.stats.acks.Add(1)
		status = ":eyes: Acknowledged by " + who
	case strings.HasPrefix(act.ActionID, actionSilence):
		if n.silences == nil {
			return errors.New("no silence store")
		}
		d, err := time.ParseDuration(strings.TrimPrefix(act.ActionID, actionSilence))
		if err != nil {
			return nil // not one of ours
		}
		sl, err := n.silences.Add(silence.Silence{Rule: rule, Key: key, Until: now.Add(d), By: who, Reason: "silenced from Slack"}, now)
		if err != nil {
			return err
		}
		n.stats.silences.Add(1)
		status = fmt.Sprintf(":no_bell: Silenced by %s until %s (silence %s)", who, sl.Until.UTC().Format(time.RFC3339), sl.ID)
	default:
		return nil
	}
	n.log.Info("slack interaction", "action", act.ActionID, "rule_id", rule, "group", key, "by", who)
	return n.markMessage(ctx, cb, status)
}

// markMessage replaces the clicked message through the response URL: the
// same blocks with the status line set (replacing an earlier one).
func (n *Notifier) markMessage(ctx context.Context, cb *slack.InteractionCallback, status string) error {
	if cb.ResponseURL == "" {
		return nil
	}
	var blocks []slack.Block
	placed := false
	for _, b := range cb.Message.Blocks.BlockSet {
		if b.ID() == statusBlockID {
			continue
		}
		if b.ID() == actionsBlockID {
			blocks = append(blocks, statusBlock(status))
			placed = true
		}
		blocks = append(blocks, b)
	}
	if !placed {
		blocks = append(blocks, statusBlock(status))
	}
	ctx, cancel := context.WithTimeoutCause(ctx, n.cfg.Timeout, errors.New("slack response_url timed out"))
	defer cancel()
	err := slack.PostWebhookCustomHTTPContext(ctx, cb.ResponseURL, n.http, &slack.WebhookMessage{
		Text: cb.Message.Text, Blocks: &slack.Blocks{BlockSet: blocks}, ReplaceOriginal: true,
	})
	if err != nil {
		// The response URL is a bearer of its own: keep it out of the text.
		return errors.New("slack: response_url: " + strings.ReplaceAll(err.Error(), cb.ResponseURL, "<response_url>"))
	}
	return nil
}
