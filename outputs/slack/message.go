package slack

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Block Kit limits (api.slack.com/reference/block-kit/blocks).
const (
	maxHeader  = 150
	maxField   = 2000
	maxContext = 2000
	maxFields  = 10
)

// message is one alert rendered for Slack.
type message struct {
	text   string // notification fallback
	blocks []slack.Block
}

var severityEmoji = map[string]string{
	"critical": ":rotating_light:",
	"high":     ":red_circle:",
	"medium":   ":large_orange_circle:",
	"low":      ":large_blue_circle:",
}

// message renders an alert as Block Kit: header, fields, description,
// events link. Values from logs are escaped for mrkdwn so a crafted user
// name cannot inject links or mentions.
func (n *Notifier) message(a *schema.Alert) message {
	sev := a.Trailwatch.Severity
	if sev == "" {
		sev = "unknown"
	}
	title := a.Rule.Name
	if title == "" {
		title = a.Rule.ID
	}
	headline := truncate(strings.ToUpper(sev)+": "+title, maxHeader)
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, headline, true, false)),
	}

	var fields []*slack.TextBlockObject
	field := func(name, value string) {
		if value != "" && len(fields) < maxFields {
			fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType,
				truncate("*"+name+"*\n"+escape(value), maxField), false, false))
		}
	}
	actor := a.Trailwatch.Actor
	if actor == "" && a.Trailwatch.Credential.Fingerprint != "" {
		actor = "cred:" + a.Trailwatch.Credential.Fingerprint
	}
	field("Actor", actor)
	field("User", a.User.Name)
	field("Source IP", a.Source.IP)
	if a.Trailwatch.Count > 0 {
		field("Count", strconv.FormatInt(a.Trailwatch.Count, 10))
	}
	field("Window", a.Trailwatch.Window)
	field("First seen", timeString(a.Trailwatch.FirstSeen))
	field("Last seen", timeString(a.Trailwatch.LastSeen))
	field("Rule", a.Rule.ID)
	field("Tags", strings.Join(a.Tags, ", "))
	if len(fields) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	}

	desc := a.Rule.Description
	if desc == "" {
		desc = a.Message
	}
	if desc != "" {
		blocks = append(blocks, slack.NewContextBlock("",
			slack.NewTextBlockObject(slack.MarkdownType, truncate(escape(desc), maxContext), false, false)))
	}
	if link := n.eventsLink(a); link != "" {
		blocks = append(blocks, slack.NewSectionBlock(
			slack.NewTextBlockObject(slack.MarkdownType, "<"+link+"|View events>", false, false), nil, nil))
	}
	fallback := headline
	if a.Source.IP != "" {
		fallback += " from " + a.Source.IP
	}
	return message{text: fallback, blocks: blocks}
}

// eventsLink executes events_url_template; a template error is logged and
// the link left out rather than failing the page.
func (n *Notifier) eventsLink(a *schema.Alert) string {
	if n.eventsURL == nil {
		return ""
	}
	var b bytes.Buffer
	if err := n.eventsURL.Execute(&b, a); err != nil {
		n.log.Warn("slack events_url_template failed", "rule_id", a.Rule.ID, "err", err)
		return ""
	}
	// '|' and '>' would end the mrkdwn link early.
	return strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(b.String())
}

// escape makes s literal in Slack mrkdwn: &, < and > are the control
// characters (links, mentions).
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary, leaving room for the ellipsis (3 bytes).
	cut := n - 3
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
