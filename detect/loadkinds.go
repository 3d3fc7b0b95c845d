package detect

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"
)

var (
	sequenceFields = []string{"by", "within", "ordered", "steps"}
	stepFields     = []string{"name", "where", "count"}
	newTermsFields = []string{"by", "fields", "history", "learning", "max_terms"}
	rateFields     = []string{"by", "interval", "baseline", "factor", "min_count", "min_history"}
	stepName       = idPattern
)

// fields parses a list of field expressions (`by`, `new_terms.fields`),
// compiling each as a group key value.
func (p *parser) fields(n *yaml.Node, path string) ([]string, []*vm.Program) {
	names := p.strs(n, path)
	progs := make([]*vm.Program, 0, len(names))
	seen := map[string]bool{}
	for i, f := range names {
		at := n
		if n.Kind == yaml.SequenceNode {
			at = n.Content[i]
		}
		f = strings.TrimSpace(f)
		names[i] = f
		if seen[f] {
			p.errf(at, "%s[%d]: %q listed twice", path, i, f)
		}
		seen[f] = true
		prog, err := compileGroupBy(f, p.lib)
		if err != nil {
			p.errs = append(p.errs, p.exprError(at, fmt.Sprintf("%s[%d]", path, i), f, err))
		}
		progs = append(progs, prog)
	}
	return names, progs
}

// longDuration reads a duration that may also be a whole number of days,
// such as 30d.
func (p *parser) longDuration(n *yaml.Node, path string, allowZero bool) time.Duration {
	if days, ok := strings.CutSuffix(n.Value, "d"); ok && n.Kind == yaml.ScalarNode {
		if v, err := strconv.Atoi(days); err == nil && v >= 0 && v <= 36500 && (v > 0 || allowZero) {
			return time.Duration(v) * 24 * time.Hour
		}
		p.errf(n, "%s: want a positive duration such as 1h or 30d, got %s", path, kindName(n))
		return 0
	}
	return p.duration(n, path, allowZero)
}

func (p *parser) boolean(n *yaml.Node, path string) bool {
	v, err := strconv.ParseBool(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.errf(n, "%s: want true or false, got %s", path, kindName(n))
	}
	return v
}

// sequence parses a rule's `sequence:` mapping.
func (p *parser) sequence(n *yaml.Node, path string) *Sequence {
	s := &Sequence{Ordered: true}
	var stepsNode *yaml.Node
	if !p.mapping(n, path, sequenceFields, func(key string, _, v *yaml.Node) {
		switch strings.TrimPrefix(key, path+".") {
		case "by":
			s.By, s.programs = p.fields(v, key)
		case "within":
			s.Within = p.duration(v, key, false)
		case "ordered":
			s.Ordered = p.boolean(v, key)
		case "steps":
			stepsNode = v
			s.Steps = p.steps(v, key)
		}
	}) {
		return nil
	}
	if s.Within == 0 && !p.has(n, "within") {
		p.errf(n, "%s.within: required", path)
	}
	switch {
	case stepsNode == nil:
		p.errf(n, "%s.steps: required", path)
	case stepsNode.Kind == yaml.SequenceNode && len(stepsNode.Content) < 2:
		p.errf(stepsNode, "%s.steps: want at least 2 steps, got %d", path, len(stepsNode.Content))
	}
	return s
}

// has reports whether mapping n sets key.
func (p *parser) has(n *yaml.Node, key string) bool {
	n = deref(n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

func (p *parser) steps(n *yaml.Node, path string) []Step {
	if n.Kind != yaml.SequenceNode {
		p.errf(n, "%s: want a list of steps, got %s", path, kindName(n))
		return nil
	}
	out := make([]Step, 0, len(n.Content))
	names := map[string]bool{}
	for i, sn := range n.Content {
		sp := fmt.Sprintf("%s[%d]", path, i)
		st := Step{Name: fmt.Sprintf("step%d", i+1), Count: 1}
		var whereNode *yaml.Node
		if !p.mapping(sn, sp, stepFields, func(key string, _, v *yaml.Node) {
			switch strings.TrimPrefix(key, sp+".") {
			case "name":
				st.Name = p.str(v, key)
				if st.Name != "" && !stepName.MatchString(st.Name) {
					p.errf(v, "%s: %q must be lowercase letters, digits, '.', '_' or '-'", key, st.Name)
				}
			case "where":
				whereNode = v
				st.Where = p.str(v, key)
			case "count":
				st.Count = p.positiveInt(v, key)
				if st.Count > MaxStepEvents {
					p.errf(v, "%s: %d exceeds the %d events a step holds", key, st.Count, MaxStepEvents)
				}
			}
		}) {
			continue
		}
		if names[st.Name] {
			p.errf(sn, "%s.name: %q used by an earlier step", sp, st.Name)
		}
		names[st.Name] = true
		if whereNode == nil || strings.TrimSpace(st.Where) == "" {
			p.errf(sn, "%s.where: required", sp)
		} else {
			prog, err := compileWhere(st.Where, p.lib)
			if err != nil {
				p.errs = append(p.errs, p.exprError(whereNode, sp+".where", st.Where, err))
			} else {
				st.cond = newCond(prog)
			}
			st.where = prog
		}
		out = append(out, st)
	}
	return out
}

// newTerms parses a rule's `new_terms:` mapping.
func (p *parser) newTerms(n *yaml.Node, path string) *NewTerms {
	nt := &NewTerms{MaxTerms: DefaultMaxTerms, Learning: -1}
	var fieldsNode, learningNode *yaml.Node
	if !p.mapping(n, path, newTermsFields, func(key string, _, v *yaml.Node) {
		switch strings.TrimPrefix(key, path+".") {
		case "by":
			nt.By, nt.programs = p.fields(v, key)
		case "fields":
			fieldsNode = v
			nt.Fields, nt.fields = p.fields(v, key)
		case "history":
			nt.History = p.longDuration(v, key, false)
		case "learning":
			learningNode = v
			nt.Learning = p.longDuration(v, key, true)
		case "max_terms":
			nt.MaxTerms = p.positiveInt(v, key)
		}
	}) {
		return nil
	}
	if !p.has(n, "history") {
		p.errf(n, "%s.history: required", path)
	}
	if fieldsNode == nil {
		p.errf(n, "%s.fields: required", path)
	} else if len(nt.Fields) == 0 && fieldsNode.Kind == yaml.SequenceNode {
		p.errf(fieldsNode, "%s.fields: want at least one field", path)
	}
	for i, f := range nt.Fields {
		for _, b := range nt.By {
			if f == b && f != "" {
				at := fieldsNode
				if fieldsNode.Kind == yaml.SequenceNode {
					at = fieldsNode.Content[i]
				}
				p.errf(at, "%s.fields[%d]: %q is also in by, so each key holds one term", path, i, f)
			}
		}
	}
	if learningNode == nil {
		nt.Learning = min(DefaultLearning, nt.History)
	} else if nt.History > 0 && nt.Learning > nt.History {
		p.errf(learningNode, "%s.learning: %s exceeds history %s", path, nt.Learning, nt.History)
	}
	return nt
}

// rate parses a rule's `rate:` mapping.
func (p *parser) rate(n *yaml.Node, path string) *Rate {
	r := &Rate{MinHistory: -1}
	var baselineNode, minNode *yaml.Node
	if !p.mapping(n, path, rateFields, func(key string, _, v *yaml.Node) {
		switch strings.TrimPrefix(key, path+".") {
		case "by":
			r.By, r.programs = p.fields(v, key)
		case "interval":
			r.Interval = p.duration(v, key, false)
		case "baseline":
			baselineNode = v
			r.Baseline = p.duration(v, key, false)
		case "factor":
			r.Factor = p.positiveNumber(v, key)
		case "min_count":
			r.MinCount = p.positiveInt(v, key)
		case "min_history":
			minNode = v
			r.MinHistory = p.duration(v, key, true)
		}
	}) {
		return nil
	}
	for _, req := range []string{"interval", "baseline", "factor", "min_count"} {
		if !p.has(n, req) {
			p.errf(n, "%s.%s: required", path, req)
		}
	}
	if r.Interval > 0 && r.Baseline > 0 {
		switch {
		case r.Baseline%r.Interval != 0 || r.Baseline < r.Interval:
			p.errf(baselineNode, "%s.baseline: %s is not a multiple of interval %s", path, r.Baseline, r.Interval)
		case r.buckets() > MaxRateBuckets:
			p.errf(baselineNode, "%s.baseline: %d buckets of %s exceed %d; use a longer interval", path, r.buckets(), r.Interval, MaxRateBuckets)
		}
	}
	if minNode == nil {
		r.MinHistory = r.Baseline
	} else if r.MinHistory > r.Baseline && r.Baseline > 0 {
		p.errf(minNode, "%s.min_history: %s exceeds baseline %s", path, r.MinHistory, r.Baseline)
	}
	return r
}

// kindDefaults applies the rule-level defaults of the newer kinds: where
// may be omitted (every event), and suppress defaults to the sequence's
// within, the rate's interval, or none for new_terms.
func (p *parser) kindDefaults(r *Rule, n *yaml.Node, kinds []*yaml.Node, suppressSet bool) {
	if len(kinds) == 0 {
		return
	}
	for _, k := range kinds[1:] {
		p.errf(k, "%s: only one of window, sequence, new_terms, rate per rule (%s already set at %d:%d)", k.Value, kinds[0].Value, kinds[0].Line, kinds[0].Column)
	}
	if r.ruleKind() == nil {
		return
	}
	if strings.TrimSpace(r.Where) == "" && !p.has(n, "where") {
		r.Where = "true"
		r.where, _ = compileWhere(r.Where, p.lib)
	}
	if suppressSet {
		return
	}
	switch {
	case r.Sequence != nil:
		r.Suppress = r.Sequence.Within
	case r.Rate != nil:
		r.Suppress = r.Rate.Interval
	}
}

// kind parses the mapping of a rule's sequence, new_terms or rate key.
func (p *parser) kind(r *Rule, key string, v *yaml.Node) {
	switch key {
	case "sequence":
		r.Sequence = p.sequence(v, key)
	case "new_terms":
		r.NewTerms = p.newTerms(v, key)
	case "rate":
		r.Rate = p.rate(v, key)
	}
}
