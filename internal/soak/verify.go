//go:build soak

package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// report is what the verifier found; table prints it.
type report struct {
	Sent, Logged, CopyOnly   int
	Indexed, Duplicates      int
	Missing, MissingCopyOnly int
	Invented, WrongFields    int
	Malformed, DLQ           int
	DLQNoReason              int
	AlertsExpected, Paged    int
	PagedTwice, NotPaged     int
	BenignPaged, OtherPages  int
	AlertDocs                map[string]int
	CanaryLeaks              []string
	Faults                   []string
	SlackRefused             map[int]int
	Fresh                    string
	Problems                 []string

	// The S3 feed: objects uploaded (CloudTrail, ALB), and per kind the
	// records uploaded, indexed, missing and indexed more than once.
	S3Objects, S3CTObjects, S3ALBObjects         int
	CTIn, CTIndexed, CTMissing, CTDuplicates     int
	ALBIn, ALBIndexed, ALBMissing, ALBDuplicates int
}

// ok reports whether the run proved what the soak promises.
func (r *report) ok() bool { return len(r.Problems) == 0 }

func (r *report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *report) table(w io.Writer) {
	fmt.Fprintf(w, "| measure | value |\n|---|---|\n")
	row := func(k string, v any) { fmt.Fprintf(w, "| %s | %v |\n", k, v) }
	row("requests sent", r.Sent)
	row("records in (lines the gateways logged)", r.Logged)
	row("  of which rotated away by copytruncate", r.CopyOnly)
	row("indexed (distinct requests)", r.Indexed)
	row("duplicates", r.Duplicates)
	row("missing", r.Missing)
	row("missing, rotated away by copytruncate before collected", r.MissingCopyOnly)
	row("invented", r.Invented)
	row("wrong fields", r.WrongFields)
	row("S3 objects uploaded (CloudTrail + ALB)", fmt.Sprintf("%d (%d + %d)", r.S3Objects, r.S3CTObjects, r.S3ALBObjects))
	row("CloudTrail records in / indexed / missing / duplicates", fmt.Sprintf("%d / %d / %d / %d", r.CTIn, r.CTIndexed, r.CTMissing, r.CTDuplicates))
	row("ALB lines in / indexed / missing / duplicates", fmt.Sprintf("%d / %d / %d / %d", r.ALBIn, r.ALBIndexed, r.ALBMissing, r.ALBDuplicates))
	row("malformed lines written", r.Malformed)
	row("malformed lines in DLQ (with reason)", r.DLQ)
	row("alerts expected", r.AlertsExpected)
	row("attacks paged exactly once", r.Paged)
	row("attacks paged twice or more", r.PagedTwice)
	row("attacks not paged", r.NotPaged)
	row("benign actors paged", r.BenignPaged)
	row("other pages (health monitor)", r.OtherPages)
	row("alert documents by rule", fmtMap(r.AlertDocs))
	row("slack refusals served (status: count)", fmtIntMap(r.SlackRefused))
	row("canary leaks", len(r.CanaryLeaks))
	row("fresh request after faults", r.Fresh)
	row("faults injected", fmt.Sprintf("%d: %s", len(r.Faults), strings.Join(r.Faults, "; ")))
}

func fmtMap(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func fmtIntMap(m map[int]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%d: %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// seqsIn counts, per request sequence number, the log lines naming it in
// files, and the malformed markers.
func seqsIn(files []string, run string) (map[int]int, map[string]bool) {
	re := regexp.MustCompile(`/soak/` + run + `/(\d+)`)
	bad := regexp.MustCompile(`SOAKBAD-` + run + `-\d+`)
	seqs, malformed := map[int]int{}, map[string]bool{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := bad.FindString(line); m != "" {
				malformed[m] = true
				continue
			}
			if m := re.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				seqs[n]++
			}
		}
		fh.Close()
	}
	return seqs, malformed
}

// otherLines counts gateway lines that are neither generator requests
// nor malformed markers (readiness probes, HAProxy's <BADREQ>).
func otherLines(files []string, run string) int {
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" && !strings.Contains(line, "/soak/"+run+"/") && !strings.Contains(line, "SOAKBAD-"+run) {
				n++
			}
		}
	}
	return n
}

type verifier struct {
	run      string
	brokers  []string
	es       search
	gw       *gateways
	gen      *generator
	slack    *slackServer
	pipeline *pipeline
	s3       *s3Feed // nil: no S3 feed in this run
}

// verify checks the trail against what the gateways logged.
func (v *verifier) verify(ctx context.Context, r *report) {
	sent := v.gen.sent()
	r.Sent = len(sent)
	nginx, ledger, haproxyLive := v.gw.logFiles()
	logged, malformed := seqsIn(append(nginx, ledger), v.run)
	live, _ := seqsIn(append(nginx, haproxyLive), v.run)
	// Lines the gateways logged but no longer in a live or renamed file:
	// copytruncate rotated them away, into its copy or its gap.
	copyOnly := map[int]bool{}
	for s := range logged {
		if live[s] == 0 {
			copyOnly[s] = true
		}
	}
	r.Logged, r.CopyOnly, r.Malformed = len(logged), len(copyOnly), len(malformed)
	for s, n := range logged {
		if n > 1 {
			r.problem("request %d logged %d times by the gateways", s, n)
		}
	}

	// The index: every logged request once, with its fields; nothing else.
	re := regexp.MustCompile(`^/[a-z]+/soak/` + v.run + `/(\d+)$`)
	seen := map[int]int{}
	leaks, otherIndexed := 0, 0
	s3c := &s3Check{events: map[string]int{}, lines: map[string]int{}}
	err := v.es.scan(ctx, v.run+"-events", func(id string, src json.RawMessage) {
		if strings.Contains(string(src), "CANARY") {
			leaks++
		}
		var d schema.Event
		if json.Unmarshal(src, &d) != nil {
			r.Invented++
			return
		}
		if v.s3 != nil && v.s3.take(s3c, &d) {
			return
		}
		m := re.FindStringSubmatch(d.URL.Path)
		if m == nil {
			// Readiness probes and HAProxy's <BADREQ> lines: logged by a
			// gateway, but not requests of the generator.
			otherIndexed++
			return
		}
		s, _ := strconv.Atoi(m[1])
		seen[s]++
		q, ok := sent[s]
		if !ok || logged[s] == 0 {
			r.Invented++
			return
		}
		if seen[s] == 1 && (d.Source.IP != q.ip || d.HTTP.Response.StatusCode != q.want || !strings.Contains(d.Event.Dataset, q.gateway)) {
			r.WrongFields++
			if r.WrongFields <= 3 {
				r.problem("request %d indexed as ip=%s status=%d dataset=%s, sent ip=%s status=%d via %s",
					s, d.Source.IP, d.HTTP.Response.StatusCode, d.Event.Dataset, q.ip, q.want, q.gateway)
			}
		}
	})
	if err != nil {
		r.problem("scanning the events index: %v", err)
	}
	if leaks > 0 {
		r.CanaryLeaks = append(r.CanaryLeaks, fmt.Sprintf("%d event documents", leaks))
	}
	if otherLogged := otherLines(append(nginx, ledger), v.run); otherIndexed > otherLogged {
		r.Invented += otherIndexed - otherLogged
	}
	for s, n := range seen {
		if logged[s] > 0 {
			r.Indexed++
		}
		if n > 1 {
			r.Duplicates += n - 1
		}
	}
	for s := range logged {
		if seen[s] == 0 {
			if copyOnly[s] {
				r.MissingCopyOnly++
			} else {
				r.Missing++
			}
		}
	}
	if r.Duplicates > 0 {
		r.problem("%d duplicate documents", r.Duplicates)
	}
	if r.Missing > 0 {
		r.problem("%d logged requests missing from the index", r.Missing)
	}
	if r.Invented > 0 {
		r.problem("%d documents in the index that no gateway logged", r.Invented)
	}
	if r.Logged == 0 {
		r.problem("the gateways logged nothing")
	}
	if v.s3 != nil {
		v.s3.report(s3c, r)
	}

	v.verifyAlerts(ctx, r)
	v.verifyTopics(ctx, r, malformed)
	if s := v.pipeline.stderrText(); strings.Contains(s, "CANARY") {
		r.CanaryLeaks = append(r.CanaryLeaks, "process logs")
	} else if strings.Contains(s, "xoxb-soak-secret-token") {
		r.problem("the Slack token appeared in a process log")
	}
	if len(r.CanaryLeaks) > 0 {
		r.problem("canary secrets found in: %s", strings.Join(r.CanaryLeaks, ", "))
	}
}

// verifyAlerts checks that each attack was paged once and alerted once,
// and that no benign address was paged.
func (v *verifier) verifyAlerts(ctx context.Context, r *report) {
	pages := v.slack.accepted()
	r.SlackRefused = v.slack.refusals()
	v.gen.mu.Lock()
	attacks := append([]*attack(nil), v.gen.attacks...)
	v.gen.mu.Unlock()
	r.AlertsExpected = len(attacks)
	attributed := make([]bool, len(pages))
	for _, a := range attacks {
		n := 0
		for i, p := range pages {
			if !strings.Contains(p.text, a.rule) {
				continue
			}
			for _, ip := range a.ips {
				if containsIP(p.text, ip) {
					attributed[i] = true
					n++
					break
				}
			}
		}
		switch {
		case n == 1:
			r.Paged++
		case n == 0:
			r.NotPaged++
		default:
			r.PagedTwice++
		}
	}
	for i, p := range pages {
		if attributed[i] {
			continue
		}
		if strings.Contains(p.text, "10.20.") {
			r.BenignPaged++
			continue
		}
		soak := false
		for _, id := range soakRuleIDs {
			soak = soak || strings.Contains(p.text, id)
		}
		if soak {
			r.problem("a page of a soak rule names no scripted attacker: %s", truncate(p.text, 300))
		} else {
			r.OtherPages++
		}
		if strings.Contains(p.text, "CANARY") {
			r.CanaryLeaks = append(r.CanaryLeaks, "a Slack message")
		}
	}
	if r.NotPaged > 0 || r.PagedTwice > 0 || r.BenignPaged > 0 {
		r.problem("pages: %d attacks not paged, %d paged more than once, %d benign actors paged", r.NotPaged, r.PagedTwice, r.BenignPaged)
	}
	r.AlertDocs = map[string]int{}
	err := v.es.scan(ctx, v.run+"-alerts", func(id string, src json.RawMessage) {
		var a struct {
			Rule struct {
				ID string `json:"id"`
			} `json:"rule"`
		}
		_ = json.Unmarshal(src, &a)
		r.AlertDocs[a.Rule.ID]++
		if strings.Contains(string(src), "CANARY") {
			r.CanaryLeaks = append(r.CanaryLeaks, "an alert document")
		}
	})
	if err != nil {
		r.problem("scanning the alerts index: %v", err)
	}
	want := map[string]int{}
	for _, a := range attacks {
		want[a.rule]++
	}
	for _, id := range soakRuleIDs {
		if r.AlertDocs[id] != want[id] {
			r.problem("alerts index holds %d %s alerts, want %d", r.AlertDocs[id], id, want[id])
		}
	}
}

// verifyTopics reads every topic of the run: the malformed lines must all
// be in the DLQ with a reason, and no record anywhere may hold a canary.
func (v *verifier) verifyTopics(ctx context.Context, r *report, malformed map[string]bool) {
	bad := regexp.MustCompile(`SOAKBAD-` + v.run + `-\d+`)
	inDLQ := map[string]bool{}
	for _, topic := range []string{"raw", "events", "enriched", "alerts", "dlq", "notified", "repartition"} {
		name := v.run + "." + topic
		leaks := 0
		err := readTopic(ctx, v.brokers, name, func(rec *kgo.Record) {
			if strings.Contains(string(rec.Value), "CANARY") || strings.Contains(string(rec.Key), "CANARY") {
				leaks++
			}
			if topic != "dlq" {
				return
			}
			m := bad.FindString(string(rec.Value))
			if m == "" {
				return
			}
			reason := ""
			for _, h := range rec.Headers {
				if h.Key == "tw.dlq.class" {
					reason = string(h.Value)
				}
			}
			if reason == "" {
				r.DLQNoReason++
				return
			}
			inDLQ[m] = true
		})
		if err != nil {
			r.problem("reading topic %s: %v", name, err)
		}
		if leaks > 0 {
			r.CanaryLeaks = append(r.CanaryLeaks, fmt.Sprintf("%d records of %s", leaks, name))
		}
	}
	for m := range malformed {
		if inDLQ[m] {
			r.DLQ++
		}
	}
	if r.DLQ != len(malformed) {
		r.problem("%d of %d malformed lines are in the DLQ with a reason (%d without a reason)", r.DLQ, len(malformed), r.DLQNoReason)
	}
}

// containsIP reports whether text names ip as a whole address (so
// 198.18.0.1 does not match 198.18.0.12).
func containsIP(text, ip string) bool {
	for i := 0; ; {
		j := strings.Index(text[i:], ip)
		if j < 0 {
			return false
		}
		end := i + j + len(ip)
		if end == len(text) || !(text[end] >= '0' && text[end] <= '9') {
			if i+j == 0 || !(text[i+j-1] >= '0' && text[i+j-1] <= '9' || text[i+j-1] == '.') {
				return true
			}
		}
		i = i + j + 1
	}
}
