package slack

import (
	"bytes"
	"fmt"
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

// view is what a message shows beyond the alert itself: a group's running
// totals, its status line, and whether buttons are added.
type view struct {
	alerts      int   // alerts in the group; shown when above 1
	count       int64 // events counted
	first, last time.Time
	status      string // "Acknowledged by …", shown under the fields
	buttons     string // group id for the buttons; "" shows none
	silence     bool   // offer the Silence buttons (a store is configured)
}

// alertView is the view of a lone alert.
func alertView(a *schema.Alert) view {
	return view{alerts: 1, count: a.Trailwatch.Count, first: a.Trailwatch.FirstSeen, last: a.Trailwatch.LastSeen}
}

// message renders an alert as Block Kit.
func (n *Notifier) message(a *schema.Alert) message { return n.render(a, alertView(a)) }

// render builds the Block Kit message: header, fields, description,
// events link, status and buttons. Values from logs are escaped for mrkdwn
// so a crafted user name cannot inject links or mentions.
func (n *Notifier) render(a *schema.Alert, v view) message {
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
	field("Source IP", sourceText(&a.Source))
	if v.alerts > 1 {
		field("Alerts", strconv.Itoa(v.alerts))
	}
	if v.count > 0 {
		field("Count", strconv.FormatInt(v.count, 10))
	}
	field("Window", a.Trailwatch.Window)
	field("First seen", timeString(v.first))
	field("Last seen", timeString(v.last))
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
	if v.status != "" {
		blocks = append(blocks, statusBlock(v.status))
	}
	if v.buttons != "" {
		blocks = append(blocks, buttonsBlock(v.buttons, v.silence))
	}
	fallback := headline
	if a.Source.IP != "" {
		fallback += " from " + a.Source.IP
	}
	return message{text: fallback, blocks: blocks}
}

// followUp renders the thread reply for a batch of alerts that joined a
// paged group: how many, their events, the latest one's actor and times.
func (n *Notifier) followUp(a *schema.Alert, alerts int, count int64, total int) message {
	text := fmt.Sprintf("%d more alert(s) of %s, %d event(s); %d in this group so far", alerts, a.Rule.ID, count, total)
	var fields []*slack.TextBlockObject
	add := func(name, value string) {
		if value != "" {
			fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType, truncate("*"+name+"*\n"+escape(value), maxField), false, false))
		}
	}
	add("Latest actor", a.Trailwatch.Actor)
	add("Source IP", sourceText(&a.Source))
	add("Last seen", timeString(a.Trailwatch.LastSeen))
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, escape(text), false, false), fields, nil)}
	return message{text: text, blocks: blocks}
}

// Block and action ids of the interactive parts.
const (
	statusBlockID  = "trailwatch_status"
	actionsBlockID = "trailwatch_actions"
	actionAck      = "trailwatch_ack"
	actionSilence  = "trailwatch_silence_" // + duration: 1h, 24h
)

// silenceDurations are the Silence buttons offered.
var silenceDurations = []time.Duration{time.Hour, 24 * time.Hour}

func statusBlock(status string) slack.Block {
	return slack.NewContextBlock(statusBlockID, slack.NewTextBlockObject(slack.MarkdownType, truncate(status, maxContext), false, false))
}

func buttonsBlock(groupID string, silence bool) slack.Block {
	els := []slack.BlockElement{
		slack.NewButtonBlockElement(actionAck, groupID, slack.NewTextBlockObject(slack.PlainTextType, "Acknowledge", false, false)).WithStyle(slack.StylePrimary),
	}
	if silence {
		for _, d := range silenceDurations {
			label := "Silence " + durationLabel(d)
			els = append(els, slack.NewButtonBlockElement(actionSilence+durationLabel(d), groupID, slack.NewTextBlockObject(slack.PlainTextType, label, false, false)))
		}
	}
	return slack.NewActionBlock(actionsBlockID, els...)
}

// durationLabel prints whole hours as "1h", "24h".
func durationLabel(d time.Duration) string { return strconv.Itoa(int(d/time.Hour)) + "h" }

// sourceText is the address with its country and AS when enriched.
func sourceText(e *schema.Endpoint) string {
	if e.IP == "" {
		return ""
	}
	var extra []string
	if c := e.Geo.CountryISOCode; c != "" {
		extra = append(extra, c)
	}
	if e.AS.Number != 0 {
		as := "AS" + strconv.FormatInt(e.AS.Number, 10)
		if e.AS.Organization.Name != "" {
			as += " " + e.AS.Organization.Name
		}
		extra = append(extra, as)
	}
	if len(extra) == 0 {
		return e.IP
	}
	return e.IP + " (" + strings.Join(extra, ", ") + ")"
}

// eventsLink executes events_url_template; a template error is logged and
// the link left out rather than failing the page.
func (n *Notifier) eventsLink(a *schema.Alert) string {
	if n.eventsURL == nil {
		if n.eventsLinkFn == nil {
			return ""
		}
		return strings.NewReplacer("|", "%7C", ">", "%3E", "<", "%3C").Replace(n.eventsLinkFn(*a))
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
