package sigma

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// corr is a Sigma correlation rule's `correlation:` section.
type corr struct {
	Type      string            `yaml:"type"`
	Rules     strList           `yaml:"rules"`
	GroupBy   strList           `yaml:"group-by"`
	Timespan  string            `yaml:"timespan"`
	Condition map[string]string `yaml:"condition"`
	Generate  bool              `yaml:"generate"`
	Aliases   yaml.Node         `yaml:"aliases"`
}

// correlation converts an event_count or value_count correlation into a
// threshold rule over the OR of the rules it references, and a temporal
// (or temporal_ordered) correlation into a sequence rule with one step per
// referenced rule, unordered (ordered).
func (s *set) correlation(d *doc) (Converted, []string) {
	co := d.r.Correlation
	var reasons []string
	fail := func(format string, args ...any) { reasons = append(reasons, fmt.Sprintf(format, args...)) }
	switch co.Type {
	case "event_count", "value_count", "temporal", "temporal_ordered":
	default:
		fail("correlation.type: %q is not a Sigma correlation type", co.Type)
	}
	if co.Aliases.Kind != 0 && !isNull(&co.Aliases) {
		fail("correlation.aliases: field aliases are not supported")
	}
	var bases []*doc
	for _, ref := range co.Rules {
		b := s.byRef[ref]
		switch {
		case b == nil:
			fail("correlation.rules: %q is not among the rules converted with it", ref)
		case b.r.Correlation != nil:
			fail("correlation.rules: %q is a correlation rule; chained correlations are not supported", ref)
		case b.bad != nil || len(b.probs) > 0:
			fail("correlation.rules: base rule %q cannot be converted (see its problems)", ref)
		default:
			bases = append(bases, b)
		}
	}
	if len(co.Rules) == 0 {
		fail("correlation.rules: required")
	}
	over, err := timespan(co.Timespan)
	if err != nil {
		fail("correlation.timespan: %v", err)
	}
	temporal := strings.HasPrefix(co.Type, "temporal")
	if temporal && len(co.Condition) > 0 {
		fail("correlation.condition: not used by %s correlations", co.Type)
	}
	count := 0
	for _, k := range slices.Sorted(maps.Keys(co.Condition)) {
		v := co.Condition[k]
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch k {
		case "field":
			continue
		case "gte", "gt":
			if err != nil || n < 0 || k == "gte" && n == 0 {
				fail("correlation.condition.%s: want a positive integer, got %q", k, v)
				continue
			}
			if count != 0 {
				fail("correlation.condition: set only one of gte, gt")
			}
			count = n
			if k == "gt" {
				count++
			}
		case "lt", "lte", "eq", "neq":
			fail("correlation.condition.%s: not supported: trailwatch windows fire on at least a count (gte or gt)", k)
		default:
			fail("correlation.condition.%s: unknown condition", k)
		}
	}
	if count == 0 && len(co.Condition) > 0 && !slices.ContainsFunc(reasons, func(r string) bool { return strings.HasPrefix(r, "correlation.condition") }) {
		fail("correlation.condition: needs gte or gt")
	}
	if len(co.Condition) == 0 && !temporal {
		fail("correlation.condition: required")
	}
	if len(reasons) > 0 {
		return Converted{}, reasons
	}

	// mapField maps a Sigma field through every base rule's log source;
	// they must agree.
	mapField := func(path, name string) string {
		var got string
		for _, b := range bases {
			f, ok := b.ls.lookup(name)
			switch {
			case !ok:
				fail("%s: field %q has no trailwatch mapping for %s", path, name, b.ls.name)
				return ""
			case got != "" && f.path != got:
				fail("%s: field %q maps to different fields in the referenced rules", path, name)
				return ""
			}
			got = f.path
		}
		return got
	}
	win := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { win.Content = append(win.Content, str(k), v) }
	add("count", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(count)})
	add("over", str(over))
	var groupBy []string
	for _, g := range co.GroupBy {
		if p := mapField("correlation.group-by", g); p != "" {
			groupBy = append(groupBy, p)
		}
	}
	if temporal {
		return s.sequence(d, bases, groupBy, over, reasons)
	}
	if len(groupBy) > 0 {
		add("group_by", list(groupBy, true))
	}
	if co.Type == "value_count" {
		fieldName := co.Condition["field"]
		if fieldName == "" {
			fail("correlation.condition.field: required for value_count")
		} else if p := mapField("correlation.condition.field", fieldName); p != "" {
			if slices.Contains(groupBy, p) {
				fail("correlation.condition.field: %q is also in group-by", fieldName)
			}
			add("distinct", str(p))
		}
	}
	if len(reasons) > 0 {
		return Converted{}, reasons
	}
	xs := make([]ex, len(bases))
	for i, b := range bases {
		xs[i] = and(leaf(b.ls.guard), b.where)
	}
	return render(d, or(xs...), "window", win)
}

// sequence renders a temporal correlation as a sequence rule: one step per
// referenced rule, named after it, within the timespan.
func (s *set) sequence(d *doc, bases []*doc, groupBy []string, over string, reasons []string) (Converted, []string) {
	if len(reasons) > 0 {
		return Converted{}, reasons
	}
	if len(bases) < 2 {
		return Converted{}, []string{"correlation.rules: a temporal correlation needs at least 2 rules"}
	}
	seq := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { seq.Content = append(seq.Content, str(k), v) }
	if len(groupBy) > 0 {
		add("by", list(groupBy, true))
	}
	add("within", str(over))
	add("ordered", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(d.r.Correlation.Type == "temporal_ordered")})
	steps := &yaml.Node{Kind: yaml.SequenceNode}
	xs := make([]ex, len(bases))
	used := map[string]bool{}
	for i, b := range bases {
		xs[i] = and(leaf(b.ls.guard), b.where)
		name := stepName(d.r.Correlation.Rules[i], i, used)
		w := str(xs[i].pretty(""))
		w.Style = yaml.LiteralStyle
		steps.Content = append(steps.Content, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("name"), str(name), str("where"), w}})
	}
	add("steps", steps)
	return render(d, or(xs...), "sequence", seq)
}

// stepName turns a correlation's rule reference into a unique step name
// (lowercase letters, digits, '.', '_', '-').
func stepName(ref string, i int, used map[string]bool) string {
	var b strings.Builder
	for _, r := range strings.ToLower(ref) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-._")
	if name == "" || used[name] {
		name = fmt.Sprintf("step%d", i+1)
	}
	used[name] = true
	return name
}

// timespan converts a Sigma timespan (30s, 5m, 1h, 2d) into a Go duration
// string detect accepts.
func timespan(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("required")
	}
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 {
			return "", fmt.Errorf("want a duration such as 30s, 5m, 1h or 1d, got %q", s)
		}
		h := strconv.Itoa(n*24) + "h"
		if n > 100_000 {
			return "", fmt.Errorf("%q is too long", s)
		}
		return h, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || strings.ContainsAny(s, ".") {
		return "", fmt.Errorf("want a duration such as 30s, 5m, 1h or 1d, got %q", s)
	}
	return s, nil
}
