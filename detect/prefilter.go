package detect

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Literal prefilter for constant `matches` patterns.
//
// Most shipped rules test url.original, url.path or user_agent.original
// against a large (?i) alternation, and nearly every event fails it. Go's
// regexp spends microseconds proving that; a scan for the pattern's
// required literals takes tens of nanoseconds. A matcher therefore first
// asks whether the input contains at least one string of a set that every
// match must contain, and runs the regexp only if it does. The set is
// derived conservatively from the parsed pattern, so the answer is always
// the regexp's own (see TestPrefilterConservative and FuzzPrefilter).

const (
	// maxLits caps a literal set; a larger set is dropped, which means
	// "no requirement known".
	maxLits = 64
	// minLitLen is the shortest literal worth scanning for, except for
	// the rare single bytes in rareByte.
	minLitLen = 2
)

// rareByte holds the bytes seldom seen in URLs and user agents, worth
// scanning for on their own (`;`, `|`, `~`, ...).
var rareByte = func() (t [256]bool) {
	for _, c := range []byte("~`!$^*;|<>{}[]'\"\\") {
		t[c] = true
	}
	return t
}()

// litSet is a finite set of strings, lowercased (ASCII only). nil means
// unknown (no information); an empty non-nil set is never built.
type litSet []string

// info is what the prefilter knows about the strings a regexp node
// matches. Every set is lowercased; comparisons fold ASCII case, which is
// conservative for case-sensitive literals too.
type info struct {
	exact  litSet // every match is one of these
	prefix litSet // every match starts with one of these
	suffix litSet // every match ends with one of these
	req    litSet // every match contains one of these (usable sets only)
	// hazard: a literal came from a case-folded ASCII letter that also
	// folds to a non-ASCII rune (k: U+212A, s: U+017F), so an input with
	// non-ASCII bytes may match without containing the ASCII literal.
	hazard bool
}

// matcher is a compiled constant `matches` pattern with its prefilter.
type matcher struct {
	re     *regexp.Regexp
	lits   []string // lowercased, sorted; nil: no prefilter, always run re
	hazard bool
	// starts is a bitmap over the two input bytes at a position (first
	// byte high) marking where a literal of two or more bytes may start,
	// with ASCII case folded in; nil when there is no such literal.
	starts *[1 << 16 / 64]uint64
	single [256]bool // the one-byte literals, in either case
}

// newMatcher compiles pattern with regexp.Compile (the same semantics as
// expr's `matches`) and derives its prefilter.
func newMatcher(pattern string) (*matcher, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	m := &matcher{re: re}
	// regexp.Compile parses with syntax.Perl; parse again to read the tree.
	tree, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return m, nil // cannot happen after Compile; run the regexp
	}
	in := analyze(tree)
	if usable(in.req) {
		m.lits, m.hazard = slices.Sorted(slices.Values(in.req)), in.hazard
		for _, l := range m.lits {
			if len(l) == 1 {
				for _, c := range bothCases(l[0]) {
					m.single[c] = true
				}
				continue
			}
			if m.starts == nil {
				m.starts = new([1 << 16 / 64]uint64)
			}
			for _, a := range bothCases(l[0]) {
				for _, b := range bothCases(l[1]) {
					k := uint16(a)<<8 | uint16(b)
					m.starts[k>>6] |= 1 << (k & 63)
				}
			}
		}
	}
	return m, nil
}

// bothCases returns the bytes whose ASCII lowercase is c (c is lowercase).
func bothCases(c byte) []byte {
	if 'a' <= c && c <= 'z' {
		return []byte{c, c - 'a' + 'A'}
	}
	return []byte{c}
}

// match reports whether s matches the pattern.
func (m *matcher) match(s string) bool {
	if m.lits != nil && !m.mayMatch(s) {
		return false
	}
	return m.re.MatchString(s)
}

// matchBytes is match for an input the caller built in a buffer (a
// concatenation): the buffer is only scanned, and copied for the regexp.
func (m *matcher) matchBytes(b []byte) bool {
	if m.lits != nil && !mayMatchIn(m, b) {
		return false
	}
	return m.re.MatchString(string(b))
}

// mayMatch is the prefilter: false means s cannot match the pattern.
func (m *matcher) mayMatch(s string) bool { return mayMatchIn(m, s) }

// mayMatchIn is mayMatch over a string or a byte slice. It looks at each
// position once: a one-byte literal there, or a two-byte start of a
// longer one, which is then verified against the literals sharing those
// two bytes (m.lits is sorted, so they are adjacent).
func mayMatchIn[T string | []byte](m *matcher, s T) bool {
	if m.lits == nil {
		return true
	}
	if m.hazard && !isASCII(s) {
		return true
	}
	n := len(s)
	if n == 0 {
		return false
	}
	for i := 0; i+1 < n; i++ {
		if m.single[s[i]] {
			return true
		}
		if m.starts == nil {
			continue
		}
		k := uint16(s[i])<<8 | uint16(s[i+1])
		if m.starts[k>>6]&(1<<(k&63)) != 0 && verify(m, s[i:]) {
			return true
		}
	}
	return m.single[s[n-1]]
}

// verify reports whether s starts with one of the literals of two or more
// bytes, folding ASCII case; len(s) >= 2.
func verify[T string | []byte](m *matcher, s T) bool {
	a, b := lowerASCII[s[0]], lowerASCII[s[1]]
	// The first literal not below a+b: literals are sorted bytewise.
	lits := m.lits
	lo, hi := 0, len(lits)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		l := lits[h]
		if l[0] < a || l[0] == a && (len(l) < 2 || l[1] < b) {
			lo = h + 1
		} else {
			hi = h
		}
	}
	for _, l := range lits[lo:] {
		if len(l) < 2 || l[0] != a || l[1] != b {
			return false
		}
		if hasPrefixFold(s, l) {
			return true
		}
	}
	return false
}

var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()

// hasPrefixFold reports whether s starts with lit (lowercased), folding
// ASCII case.
func hasPrefixFold[T string | []byte](s T, lit string) bool {
	if len(s) < len(lit) {
		return false
	}
	for j := 0; j < len(lit); j++ {
		if lowerASCII[s[j]] != lit[j] {
			return false
		}
	}
	return true
}

func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// usable reports whether a required set is selective enough to scan for.
func usable(s litSet) bool {
	if s == nil || len(s) > maxLits {
		return false
	}
	for _, l := range s {
		if len(l) < minLitLen && (len(l) == 0 || !rareByte[l[0]]) {
			return false
		}
	}
	return true
}

// better reports whether required set a is more selective than b: a longer
// shortest literal (three bytes are plenty), then fewer literals, which
// keeps the sets of enclosing alternations under maxLits.
func better(a, b litSet) bool {
	if !usable(a) {
		return false
	}
	if !usable(b) {
		return true
	}
	ma, mb := min(minLen(a), 3), min(minLen(b), 3)
	if ma != mb {
		return ma > mb
	}
	return len(a) < len(b)
}

func minLen(s litSet) int {
	n := -1
	for _, l := range s {
		if n < 0 || len(l) < n {
			n = len(l)
		}
	}
	return n
}

// product is {x+y : x in a, y in b}, or nil if unknown or too large.
func product(a, b litSet) litSet {
	if a == nil || b == nil || len(a)*len(b) > maxLits {
		return nil
	}
	out := make(litSet, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return dedup(out)
}

// union is a ∪ b, or nil if either is unknown or the result is too large.
func union(a, b litSet) litSet {
	if a == nil || b == nil {
		return nil
	}
	out := dedup(append(slices.Clone(a), b...))
	if len(out) > maxLits {
		return nil
	}
	return out
}

func dedup(s litSet) litSet {
	slices.Sort(s)
	return slices.Compact(s)
}

// foldHazard holds the ASCII letters whose simple case folding orbit
// leaves ASCII.
var foldHazard = func() (t [128]bool) {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				t[r] = true
			}
		}
	}
	return t
}()

// literal is the info of an OpLiteral node.
func literal(re *syntax.Regexp) info {
	fold := re.Flags&syntax.FoldCase != 0
	b := make([]byte, 0, len(re.Rune))
	var in info
	for _, r := range re.Rune {
		if r >= utf8.RuneSelf {
			if fold {
				return info{} // non-ASCII folding: give up on this literal
			}
			b = utf8.AppendRune(b, r)
			continue
		}
		if fold && foldHazard[r] {
			in.hazard = true
		}
		b = append(b, lowerASCII[r])
	}
	in.exact = litSet{string(b)}
	return in
}

// class is the info of a small all-ASCII OpCharClass node.
func class(re *syntax.Regexp) info {
	var out litSet
	for i := 0; i+1 < len(re.Rune); i += 2 {
		lo, hi := re.Rune[i], re.Rune[i+1]
		if hi >= utf8.RuneSelf || hi-lo >= maxLits {
			return info{}
		}
		for r := lo; r <= hi; r++ {
			out = append(out, string(rune(lowerASCII[r])))
		}
	}
	out = dedup(out)
	if len(out) > maxLits || len(out) == 0 {
		return info{}
	}
	return info{exact: out}
}

// analyze computes what every match of re must look like.
func analyze(re *syntax.Regexp) info {
	var in info
	switch re.Op {
	case syntax.OpLiteral:
		in = literal(re)
	case syntax.OpCharClass:
		in = class(re)
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		in.exact = litSet{""}
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpQuest:
		sub := analyze(re.Sub[0])
		in.hazard = sub.hazard
		in.exact = union(sub.exact, litSet{""})
	case syntax.OpPlus:
		sub := analyze(re.Sub[0])
		in = info{prefix: sub.prefix, suffix: sub.suffix, req: sub.req, hazard: sub.hazard}
	case syntax.OpRepeat:
		if re.Min < 1 {
			return info{}
		}
		sub := analyze(re.Sub[0])
		if re.Min == 1 && re.Max == 1 {
			return sub
		}
		in = info{prefix: sub.prefix, suffix: sub.suffix, req: sub.req, hazard: sub.hazard}
	case syntax.OpAlternate:
		in = alternate(re.Sub)
	case syntax.OpConcat:
		in = concat(re.Sub)
	default:
		// OpStar, OpAnyChar, OpAnyCharNotNL, OpNoMatch: nothing known.
		return info{}
	}
	if in.exact != nil {
		in.prefix, in.suffix = in.exact, in.exact
		if better(in.exact, in.req) {
			in.req = in.exact
		}
	}
	if !usable(in.req) {
		in.req = nil
	}
	return in
}

func alternate(subs []*syntax.Regexp) info {
	var in info
	for i, s := range subs {
		si := analyze(s)
		in.hazard = in.hazard || si.hazard
		if i == 0 {
			in.exact, in.prefix, in.suffix, in.req = si.exact, si.prefix, si.suffix, si.req
			continue
		}
		in.exact = union(in.exact, si.exact)
		in.prefix = union(in.prefix, si.prefix)
		in.suffix = union(in.suffix, si.suffix)
		in.req = union(in.req, si.req)
	}
	return in
}

func concat(subs []*syntax.Regexp) info {
	infos := make([]info, len(subs))
	var in info
	for i, s := range subs {
		infos[i] = analyze(s)
		in.hazard = in.hazard || infos[i].hazard
	}
	// Exact: the product of all children, if every child is exact.
	in.exact = litSet{""}
	for _, c := range infos {
		in.exact = product(in.exact, c.exact)
	}
	// Prefix: exact children from the left, then one child's prefix.
	in.prefix = litSet{""}
	for _, c := range infos {
		if c.exact != nil {
			if p := product(in.prefix, c.exact); p != nil {
				in.prefix = p
				continue
			}
			break
		}
		if p := product(in.prefix, c.prefix); p != nil {
			in.prefix = p
		}
		break
	}
	// Suffix: exact children from the right, then one child's suffix.
	in.suffix = litSet{""}
	for i := len(infos) - 1; i >= 0; i-- {
		c := infos[i]
		if c.exact != nil {
			if p := product(c.exact, in.suffix); p != nil {
				in.suffix = p
				continue
			}
			break
		}
		if p := product(c.suffix, in.suffix); p != nil {
			in.suffix = p
		}
		break
	}
	// Required: the best of each child's own requirement and every
	// contiguous run "suffix of child i, exact children, prefix of
	// child j", which a match contains as one substring.
	for i, c := range infos {
		if better(c.req, in.req) {
			in.req = c.req
		}
		run := c.suffix
		for j := i + 1; run != nil && j < len(infos); j++ {
			d := infos[j]
			if better(product(run, d.prefix), in.req) {
				in.req = product(run, d.prefix)
			}
			if d.exact == nil {
				break
			}
			run = product(run, d.exact)
		}
	}
	return in
}
