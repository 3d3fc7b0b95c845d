package sigma

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

var levels = map[string]string{"informational": "low", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}

var (
	idUnsafe  = regexp.MustCompile(`[^a-z0-9_.-]+`)
	attackTag = regexp.MustCompile(`^attack\.[a-z0-9][a-z0-9_.:-]*$`)
)

// ruleID derives the trailwatch id from the Sigma id, else the title.
func ruleID(r *sigmaRule) string {
	src := r.ID
	if src == "" {
		src = r.Title
	}
	s := strings.Trim(idUnsafe.ReplaceAllString(strings.ToLower(src), "-"), "-._")
	if len(s) > 64 {
		s = strings.TrimRight(s[:64], "-._")
	}
	if s == "" {
		return ""
	}
	return "sigma-" + s
}

// render builds the trailwatch YAML of a rule with the given condition and
// optional kind section (kindKey "window" or "sequence").
func render(d *doc, where ex, kindKey string, kind *yaml.Node) (Converted, []string) {
	r := &d.r
	var reasons []string
	id := ruleID(r)
	if strings.TrimSpace(r.Title) == "" {
		reasons = append(reasons, "title: required")
	}
	if id == "" {
		reasons = append(reasons, "id: required (and no title to derive one from)")
	}
	sev, ok := levels[strings.ToLower(strings.TrimSpace(r.Level))]
	if !ok && r.Level != "" {
		reasons = append(reasons, fmt.Sprintf("level: %q is not one of informational, low, medium, high, critical", r.Level))
	}
	if len(reasons) > 0 {
		return Converted{}, reasons
	}

	m := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) {
		m.Content = append(m.Content, str(key), v)
	}
	m.HeadComment = fmt.Sprintf("Converted from Sigma rule %s (%s).", cmp(r.ID, r.Title), filepath.Base(d.file))
	add("id", str(id))
	add("title", str(strings.TrimSpace(r.Title)))
	if desc := description(r); desc != "" {
		n := str(desc)
		if strings.Contains(desc, "\n") {
			n.Style = yaml.LiteralStyle
		}
		add("description", n)
	}
	if sev != "" {
		add("severity", str(sev))
	}
	var tags []string
	for _, t := range r.Tags {
		if t = strings.ToLower(strings.TrimSpace(t)); attackTag.MatchString(t) {
			tags = append(tags, t)
		}
	}
	if len(tags) > 0 {
		add("tags", list(tags, true))
	}
	if len(r.References) > 0 {
		add("references", list(r.References, false))
	}
	var authors []string
	for _, a := range r.Author {
		for _, part := range strings.Split(a, ",") {
			if part = strings.TrimSpace(part); part != "" {
				authors = append(authors, part)
			}
		}
	}
	if len(authors) > 0 {
		add("author", list(authors, true))
	}
	w := str(where.pretty(""))
	w.Style = yaml.LiteralStyle
	add("where", w)
	if kind != nil {
		add(kindKey, kind)
	}

	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return Converted{}, []string{"encoding YAML: " + err.Error()}
	}
	_ = enc.Close()
	return Converted{SigmaID: r.ID, ID: id, Title: strings.TrimSpace(r.Title), File: d.file, YAML: buf.Bytes()}, nil
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// description joins the Sigma description, false positives and status.
func description(r *sigmaRule) string {
	parts := []string{}
	if d := strings.TrimSpace(r.Description); d != "" {
		parts = append(parts, d)
	}
	var fps []string
	for _, fp := range r.FalsePositives {
		if fp = strings.TrimSpace(fp); fp != "" && !strings.EqualFold(strings.TrimSuffix(fp, "."), "unknown") {
			fps = append(fps, strings.TrimSuffix(fp, "."))
		}
	}
	if len(fps) > 0 {
		parts = append(parts, "False positives: "+strings.Join(fps, "; ")+".")
	}
	if s := strings.TrimSpace(r.Status); s != "" {
		parts = append(parts, "Sigma status: "+s+".")
	}
	return strings.Join(parts, "\n\n")
}

func str(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

func list(vs []string, flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	if flow {
		n.Style = yaml.FlowStyle
	}
	for _, v := range vs {
		n.Content = append(n.Content, str(v))
	}
	return n
}
