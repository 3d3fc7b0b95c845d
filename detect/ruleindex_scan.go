package detect

import (
	"slices"
	"strings"

	"github.com/expr-lang/expr/ast"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Shared literal scans.
//
// Six pack rules test url.original against a pattern, five more
// lower(url.path): each matcher would scan the same string for its own
// required literals (prefilter.go). The rule index instead scans each
// such field once per event for the union of the literals, noting which
// matchers' literals occur, and skips the rules none of whose matchers
// can match. A rule that is not skipped runs its condition as usual.
//
// Soundness: matchFunc(x, m) is true only if m.mayMatch(x) is: x contains
// one of m.lits (ASCII case folded), or m.hazard and x is not ASCII. For
// x = lower(f) or upper(f), an ASCII f gives an x with the same folded
// bytes, and any other f counts as a possible match.

// scanAtom is one matcher applied to a field, or to its lower or upper
// (fold).
type scanAtom struct {
	m    *matcher
	fold bool
}

// scanKey is the requirement key of the literal scans of field path.
func scanKey(path string) string { return "~" + path }

func isScanKey(key string) bool { return strings.HasPrefix(key, "~") }

// scanNeed reads the requirement of matchFunc(field, m) or
// matchFunc(lower(field), m), upper likewise.
func scanNeed(c *ast.CallNode) requirement {
	id, ok := c.Callee.(*ast.IdentifierNode)
	if !ok || id.Value != matchFunc || len(c.Arguments) != 2 {
		return nil
	}
	mc, ok := c.Arguments[1].(*ast.ConstantNode)
	if !ok {
		return nil
	}
	m, _ := mc.Value.(*matcher)
	if m == nil || m.lits == nil {
		return nil
	}
	arg, fold := c.Arguments[0], false
	if b, ok := arg.(*ast.BuiltinNode); ok && (b.Name == "lower" || b.Name == "upper") && len(b.Arguments) == 1 && b.Map == nil && b.Threshold == nil {
		arg, fold = b.Arguments[0], true
	}
	path, ok := fastPath(arg)
	if !ok || fastFields[path].kind != kString {
		return nil
	}
	return requirement{scanKey(path): {pats: []scanAtom{{m, fold}}}}
}

// maxScanAtoms is how many matchers one field's scan tells apart.
const maxScanAtoms = 64

// scanField is the shared scan of one field: the union of its matchers'
// literals, each with the bitmask of the matchers (atoms) requiring it.
type scanField struct {
	key      string // scanKey of the field
	get      func(*schema.Event) string
	lits     []string // lowercased, sorted, distinct; two or more bytes
	masks    []uint64 // parallel to lits
	single   [256]uint64
	starts   *[1 << 16 / 64]uint64 // as matcher.starts
	nonASCII uint64                // atoms any non-ASCII input satisfies
	all      uint64
	rules    []int    // the rules needing this scan
	needs    []uint64 // parallel: the atoms any of which the rule needs
}

// newScanFields builds a scan per field that two or more rules need.
func newScanFields(reqs []requirement) []scanField {
	var keys []string
	count := map[string]int{}
	for _, req := range reqs {
		for k := range req {
			if isScanKey(k) {
				if count[k]++; count[k] == 2 {
					keys = append(keys, k)
				}
			}
		}
	}
	slices.Sort(keys)
	var out []scanField
	for _, key := range keys {
		if f, ok := newScanField(key, reqs); ok {
			out = append(out, f)
		}
	}
	return out
}

func newScanField(key string, reqs []requirement) (scanField, bool) {
	f := scanField{key: key, get: fastFields[key[1:]].s}
	ids := map[scanAtom]int{}
	litMask := map[string]uint64{}
rules:
	for r, req := range reqs {
		set, ok := req[key]
		if !ok {
			continue
		}
		var need uint64
		for _, a := range set.pats {
			id, ok := ids[a]
			if !ok {
				if len(ids) == maxScanAtoms {
					continue rules // not told apart: the rule is never skipped
				}
				id = len(ids)
				ids[a] = id
				bit := uint64(1) << id
				f.all |= bit
				if a.fold || a.m.hazard {
					f.nonASCII |= bit
				}
				for _, l := range a.m.lits {
					litMask[l] |= bit
				}
			}
			need |= 1 << id
		}
		f.rules = append(f.rules, r)
		f.needs = append(f.needs, need)
	}
	if len(f.rules) < 2 {
		return f, false
	}
	for l, mask := range litMask {
		if len(l) == 1 {
			for _, c := range bothCases(l[0]) {
				f.single[c] |= mask
			}
			continue
		}
		f.lits = append(f.lits, l)
		if f.starts == nil {
			f.starts = new([1 << 16 / 64]uint64)
		}
		for _, a := range bothCases(l[0]) {
			for _, b := range bothCases(l[1]) {
				k := uint16(a)<<8 | uint16(b)
				f.starts[k>>6] |= 1 << (k & 63)
			}
		}
	}
	slices.Sort(f.lits)
	f.masks = make([]uint64, len(f.lits))
	for i, l := range f.lits {
		f.masks[i] = litMask[l]
	}
	return f, true
}

// scan returns the atoms whose literals s holds (or that any non-ASCII s
// satisfies).
func (f *scanField) scan(s string) uint64 {
	var got uint64
	if f.nonASCII != 0 && !isASCII(s) {
		got = f.nonASCII
	}
	for i := 0; i < len(s) && got != f.all; i++ {
		got |= f.single[s[i]]
		if f.starts == nil || i+1 == len(s) {
			continue
		}
		if k := uint16(s[i])<<8 | uint16(s[i+1]); f.starts[k>>6]&(1<<(k&63)) != 0 {
			got |= f.verify(s[i:])
		}
	}
	return got
}

// verify returns the masks of the literals s starts with; len(s) >= 2.
func (f *scanField) verify(s string) uint64 {
	a, b := lowerASCII[s[0]], lowerASCII[s[1]]
	lo, hi := 0, len(f.lits)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if l := f.lits[h]; l[0] < a || l[0] == a && l[1] < b {
			lo = h + 1
		} else {
			hi = h
		}
	}
	var got uint64
	for i := lo; i < len(f.lits); i++ {
		l := f.lits[i]
		if l[0] != a || l[1] != b {
			break
		}
		if hasPrefixFold(s, l) {
			got |= f.masks[i]
		}
	}
	return got
}

// skip marks in skips the rules none of whose atoms ev's field satisfies.
func (f *scanField) skip(ev *schema.Event, skips []bool) {
	got := f.scan(f.get(ev))
	for i, r := range f.rules {
		if got&f.needs[i] == 0 {
			skips[r] = true
		}
	}
}
