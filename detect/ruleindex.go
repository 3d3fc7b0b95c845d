package detect

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"sort"

	"github.com/expr-lang/expr/ast"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Rule prefilter.
//
// Most events can only match a few rules: a CloudTrail record none of the
// web rules, a 404 none of the rules that require a 200. Before running
// the conditions, the detector classifies each event by a few
// discriminating fields (those the most conditions require values of,
// such as http.response.status_code and event.provider) and skips the
// rules whose requirement the event's values fail.
//
// A requirement is read from the same checked tree the fast path compiles
// (fast.go), and only from conditions that are on the fast path, which
// cannot fail: a skipped rule is one whose condition would have returned
// false, so results, rule errors and counters (a skipped rule still counts
// an evaluation) are unchanged (TestRuleIndexSound, TestRuleIndexSameResults).
//
// What is read: `field == constant`, `field in [constants]` (all of the
// field's type), for integer fields < <= > >= against an integer, and
// constant `matches` on a string field (or its lower or upper), which
// need one of the pattern's required literals (ruleindex_scan.go);
// under && both sides' requirements hold, under || only a field both sides
// require is kept, with either side's values. Anything else requires
// nothing.

// valueSet is the values a requirement allows for one field: closed
// intervals (sorted, disjoint) for an integer field, a set for a string.
type valueSet struct {
	ivs  []interval
	strs map[string]struct{}
	// pats, under the key scanKey(path): the field holds a literal of one
	// of these matchers (ruleindex_scan.go).
	pats []scanAtom
}

type interval struct{ lo, hi int64 }

// requirement maps field paths to the values a condition needs them to have.
type requirement map[string]valueSet

func (s valueSet) hasInt(v int64) bool {
	i := sort.Search(len(s.ivs), func(i int) bool { return s.ivs[i].hi >= v })
	return i < len(s.ivs) && s.ivs[i].lo <= v
}

// normalize sorts and merges intervals.
func normalize(ivs []interval) []interval {
	slices.SortFunc(ivs, func(a, b interval) int { return cmp.Compare(a.lo, b.lo) })
	out := ivs[:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 && (out[n-1].hi == math.MaxInt64 || iv.lo <= out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, iv.hi)
			continue
		}
		out = append(out, iv)
	}
	return out
}

func (s valueSet) intersect(t valueSet) valueSet {
	if s.pats != nil {
		return s // either side's literals are required: keep one
	}
	if s.strs != nil {
		out := map[string]struct{}{}
		for v := range s.strs {
			if _, ok := t.strs[v]; ok {
				out[v] = struct{}{}
			}
		}
		return valueSet{strs: out}
	}
	var out []interval
	for _, a := range s.ivs {
		for _, b := range t.ivs {
			if lo, hi := max(a.lo, b.lo), min(a.hi, b.hi); lo <= hi {
				out = append(out, interval{lo, hi})
			}
		}
	}
	return valueSet{ivs: normalize(out)}
}

func (s valueSet) union(t valueSet) valueSet {
	if s.pats != nil {
		return valueSet{pats: append(slices.Clip(s.pats), t.pats...)}
	}
	if s.strs != nil {
		out := maps.Clone(s.strs)
		maps.Copy(out, t.strs)
		return valueSet{strs: out}
	}
	return valueSet{ivs: normalize(append(slices.Clone(s.ivs), t.ivs...))}
}

// need returns what condition tree n requires; nil means nothing.
func need(n ast.Node) requirement {
	if c, ok := n.(*ast.CallNode); ok {
		return scanNeed(c)
	}
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return nil
	}
	switch b.Operator {
	case "&&", "and":
		l, r := need(b.Left), need(b.Right)
		out := maps.Clone(l)
		if out == nil {
			out = requirement{}
		}
		for f, rs := range r {
			if ls, ok := out[f]; ok {
				out[f] = ls.intersect(rs)
			} else {
				out[f] = rs
			}
		}
		return out
	case "||", "or":
		l, r := need(b.Left), need(b.Right)
		var out requirement
		for f, ls := range l {
			if rs, ok := r[f]; ok {
				if out == nil {
					out = requirement{}
				}
				out[f] = ls.union(rs)
			}
		}
		return out
	case "==", "in", "<", "<=", ">", ">=":
		return compareNeed(b)
	}
	return nil
}

// compareNeed reads the requirement of a comparison of a field with a
// constant.
func compareNeed(b *ast.BinaryNode) requirement {
	op, fieldNode, constNode := b.Operator, b.Left, b.Right
	path, ok := fastPath(fieldNode)
	if !ok && op != "in" {
		op, fieldNode, constNode = fastMirror[op], b.Right, b.Left
		path, ok = fastPath(fieldNode)
	}
	if !ok {
		return nil
	}
	f, ok := fastFields[path]
	if !ok || f.kind != kInt && f.kind != kString {
		return nil
	}
	c, err := compileFast(constNode)
	if err != nil || !c.konst {
		return nil
	}
	values := []any{c.val}
	switch {
	case op == "in" && c.kind == kList:
		values = c.list
	case op == "in":
		return nil
	}
	set := valueSet{}
	if f.kind == kString {
		if op != "==" && op != "in" {
			return nil
		}
		set.strs = map[string]struct{}{}
		for _, v := range values {
			s, ok := v.(string)
			if !ok {
				return nil // a mixed list: leave it to the condition
			}
			set.strs[s] = struct{}{}
		}
		return requirement{path: set}
	}
	for _, v := range values {
		x, ok := v.(int64)
		if !ok {
			return nil // a float or another type compares differently
		}
		var iv interval
		switch op {
		case "==", "in":
			iv = interval{x, x}
		case "<":
			if x == math.MinInt64 {
				return requirement{path: valueSet{}}
			}
			iv = interval{math.MinInt64, x - 1}
		case "<=":
			iv = interval{math.MinInt64, x}
		case ">":
			if x == math.MaxInt64 {
				return requirement{path: valueSet{}}
			}
			iv = interval{x + 1, math.MaxInt64}
		case ">=":
			iv = interval{x, math.MaxInt64}
		}
		set.ivs = append(set.ivs, iv)
	}
	set.ivs = normalize(set.ivs)
	return requirement{path: set}
}

// Index limits: at most this many fields, and classes across them.
const (
	maxIndexFields  = 3
	maxIndexCells   = 1024
	minIndexedRules = 3 // a field must be required by this many rules
)

// ruleIndex classifies events by the index fields and caches, per class,
// which rules to skip.
type ruleIndex struct {
	fields []indexField
	reqs   []requirement // per rule; nil for rules never skipped
	cells  [][]bool      // per class (mixed radix over fields), built on first use
	scans  []scanField   // literal scans, shared by the rules that need them
	buf    []bool        // scratch: a class's skips plus the scans'
}

// indexField is one discriminating field and its classes: for an integer
// field, the cells between the bounds of every interval (class k holds
// starts[k] up to the next start); for a string, one class per value some
// rule requires, and class 0 for any other value.
type indexField struct {
	path   string
	i      func(*schema.Event) int64
	s      func(*schema.Event) string
	starts []int64
	ids    map[string]int
	strs   []string // class id-1 -> value
	n      int      // classes
}

func (f *indexField) class(ev *schema.Event) int {
	if f.i != nil {
		v := f.i(ev)
		return sort.Search(len(f.starts), func(k int) bool { return f.starts[k] > v }) - 1
	}
	return f.ids[f.s(ev)]
}

// allows reports whether values of class k are in set.
func (f *indexField) allows(k int, set valueSet) bool {
	if f.i != nil {
		return set.hasInt(f.starts[k])
	}
	if k == 0 {
		return false // no requirement names an unlisted value
	}
	_, ok := set.strs[f.strs[k-1]]
	return ok
}

// newRuleIndex builds the index of rules, or returns nil when no field is
// worth indexing.
func newRuleIndex(rules []*ruleState) *ruleIndex {
	x := &ruleIndex{reqs: make([]requirement, len(rules))}
	uses := map[string]int{}
	for i, rs := range rules {
		if rs.cond == nil || rs.cond.fast == nil || rs.cond.prog == nil {
			continue
		}
		x.reqs[i] = need(rs.cond.prog.Node())
		for f := range x.reqs[i] {
			uses[f]++
		}
	}
	paths := slices.Collect(maps.Keys(uses))
	slices.SortFunc(paths, func(a, b string) int {
		return cmp.Or(cmp.Compare(uses[b], uses[a]), cmp.Compare(a, b))
	})
	x.scans = newScanFields(x.reqs)
	cells := 1
	for _, p := range paths {
		if isScanKey(p) {
			continue
		}
		if uses[p] < minIndexedRules || len(x.fields) == maxIndexFields {
			break
		}
		f := newIndexField(p, x.reqs)
		if cells*f.n > maxIndexCells {
			continue
		}
		cells *= f.n
		x.fields = append(x.fields, f)
	}
	if len(x.fields) == 0 && len(x.scans) == 0 {
		return nil
	}
	x.cells = make([][]bool, cells)
	x.buf = make([]bool, len(rules))
	return x
}

func newIndexField(path string, reqs []requirement) indexField {
	f := indexField{path: path}
	ff := fastFields[path]
	if ff.kind == kInt {
		f.i = ff.i
		starts := []int64{math.MinInt64}
		for _, r := range reqs {
			for _, iv := range r[path].ivs {
				starts = append(starts, iv.lo)
				if iv.hi < math.MaxInt64 {
					starts = append(starts, iv.hi+1)
				}
			}
		}
		slices.Sort(starts)
		f.starts = slices.Compact(starts)
		f.n = len(f.starts)
		return f
	}
	f.s, f.ids = ff.s, map[string]int{}
	for _, r := range reqs {
		for v := range r[path].strs {
			if _, ok := f.ids[v]; !ok {
				f.strs = append(f.strs, v)
				f.ids[v] = len(f.strs)
			}
		}
	}
	f.n = len(f.strs) + 1
	return f
}

// skips returns, per rule, whether ev cannot match it.
func (x *ruleIndex) skips(ev *schema.Event) []bool {
	k := 0
	for i := range x.fields {
		k = k*x.fields[i].n + x.fields[i].class(ev)
	}
	s := x.cells[k]
	if s == nil {
		s = x.build(k)
	}
	if len(x.scans) == 0 {
		return s
	}
	copy(x.buf, s)
	for i := range x.scans {
		x.scans[i].skip(ev, x.buf)
	}
	return x.buf
}

// build computes the skips of class k.
func (x *ruleIndex) build(k int) []bool {
	classes := make([]int, len(x.fields))
	for i, rest := len(x.fields)-1, k; i >= 0; i-- {
		classes[i] = rest % x.fields[i].n
		rest /= x.fields[i].n
	}
	s := make([]bool, len(x.reqs))
	for r, req := range x.reqs {
		for i := range x.fields {
			if set, ok := req[x.fields[i].path]; ok && !x.fields[i].allows(classes[i], set) {
				s[r] = true
				break
			}
		}
	}
	x.cells[k] = s
	return s
}
