package detect

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var windowFields = []string{"count", "over", "group_by", "distinct", "sum", "avg", "threshold", "max_distinct"}

// window parses a rule's `window:` mapping. Exactly one aggregation applies:
// count alone, distinct (with count), sum or avg (with threshold).
func (p *parser) window(n *yaml.Node, path string) *Window {
	w := &Window{}
	nodes := map[string]*yaml.Node{} // key nodes, for positions
	var aggNode, aggKey, countNode, maxNode *yaml.Node
	if !p.mapping(n, path, windowFields, func(key string, k, v *yaml.Node) {
		name := strings.TrimPrefix(key, path+".")
		nodes[name] = k
		switch name {
		case "count":
			countNode = v
			w.Count = p.positiveInt(v, key)
		case "over":
			w.Over = p.duration(v, key, false)
		case "group_by":
			w.GroupBy = p.strs(v, key)
			seen := map[string]bool{}
			for i, g := range w.GroupBy {
				at := v
				if v.Kind == yaml.SequenceNode {
					at = v.Content[i]
				}
				g = strings.TrimSpace(g)
				w.GroupBy[i] = g
				if seen[g] {
					p.errf(at, "%s[%d]: %q listed twice", key, i, g)
				}
				seen[g] = true
				prog, err := compileGroupBy(g, p.lib)
				if err != nil {
					p.errs = append(p.errs, p.exprError(at, fmt.Sprintf("%s[%d]", key, i), g, err))
				}
				w.programs = append(w.programs, prog)
			}
		case "distinct", "sum", "avg":
			if aggKey != nil {
				p.errf(k, "%s: only one of distinct, sum, avg per window (%s already set at %d:%d)", key, aggKey.Value, aggKey.Line, aggKey.Column)
				return
			}
			aggKey, aggNode = k, v
			w.Agg = map[string]Agg{"distinct": AggDistinct, "sum": AggSum, "avg": AggAvg}[name]
			w.Field = strings.TrimSpace(p.str(v, key))
		case "threshold":
			w.Threshold = p.positiveNumber(v, key)
		case "max_distinct":
			maxNode = v
			w.MaxDistinct = p.positiveInt(v, key)
		}
	}) {
		return nil
	}
	if nodes["over"] == nil {
		p.errf(n, "%s.over: required", path)
	}
	if aggNode != nil && w.Field != "" {
		compile := compileNumeric
		if w.Agg == AggDistinct {
			compile = compileGroupBy
		}
		prog, err := compile(w.Field, p.lib)
		if err != nil {
			p.errs = append(p.errs, p.exprError(aggNode, path+"."+w.Agg.String(), w.Field, err))
		}
		w.field = prog
	}
	switch w.Agg {
	case AggCount, AggDistinct:
		if countNode == nil {
			p.errf(n, "%s.count: required", path)
		}
		if k := nodes["threshold"]; k != nil {
			p.errf(k, "%s.threshold: only with sum or avg; %s fires on %s.count", path, w.Agg, path)
		}
	case AggSum, AggAvg:
		if k := nodes["count"]; k != nil {
			p.errf(k, "%s.count: not used with %s; set %s.threshold", path, w.Agg, path)
		}
		if nodes["threshold"] == nil {
			p.errf(n, "%s.threshold: required with %s.%s", path, path, w.Agg)
		}
	}
	if w.Agg == AggDistinct {
		if w.MaxDistinct == 0 && maxNode == nil {
			w.MaxDistinct = DefaultMaxDistinct
		}
		if w.MaxDistinct > 0 && w.Count > w.MaxDistinct {
			p.errf(countNode, "%s.count: %d exceeds %s.max_distinct %d, so the rule could never fire", path, w.Count, path, w.MaxDistinct)
		}
		if slices.Contains(w.GroupBy, w.Field) {
			p.errf(aggNode, "%s.distinct: %q is also in group_by, so each group holds one value", path, w.Field)
		}
	} else if k := nodes["max_distinct"]; k != nil {
		p.errf(k, "%s.max_distinct: only with distinct", path)
	}
	return w
}

// positiveNumber reads a positive, finite number.
func (p *parser) positiveNumber(n *yaml.Node, path string) float64 {
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || !(v > 0) || math.IsInf(v, 0) {
		p.errf(n, "%s: want a positive number, got %s", path, kindName(n))
		return 0
	}
	return v
}
