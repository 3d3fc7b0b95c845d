package sigma

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// conv converts the detection of one rule, collecting every unsupported
// construct rather than stopping at the first.
type conv struct {
	ls       *logsource
	problems []string
}

func (c *conv) fail(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// selection converts one search identifier: a mapping is the AND of its
// field conditions, a list of mappings the OR of them.
func (c *conv) selection(path string, n *yaml.Node) ex {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return c.fieldMap(path, n)
	case yaml.SequenceNode:
		var alts []ex
		for i, item := range n.Content {
			item = deref(item)
			switch item.Kind {
			case yaml.MappingNode:
				alts = append(alts, c.fieldMap(fmt.Sprintf("%s[%d]", path, i), item))
			case yaml.ScalarNode:
				c.fail("%s: keyword (field-less) search is not supported; name the field", path)
				return leaf("false")
			default:
				c.fail("%s[%d]: want a field mapping", path, i)
			}
		}
		if len(alts) == 0 {
			c.fail("%s: empty list", path)
			return leaf("false")
		}
		return or(alts...)
	}
	c.fail("%s: want a mapping of fields or a list of them", path)
	return leaf("false")
}

func (c *conv) fieldMap(path string, n *yaml.Node) ex {
	if len(n.Content) == 0 {
		c.fail("%s: empty mapping", path)
		return leaf("false")
	}
	var all []ex
	for i := 0; i+1 < len(n.Content); i += 2 {
		all = append(all, c.fieldItem(path, n.Content[i].Value, n.Content[i+1]))
	}
	return and(all...)
}

// mods are the modifiers of one field condition.
type mods struct {
	match   string // contains, startswith, endswith or ""
	all     bool
	re      bool
	reFlags string
	cased   bool
	exists  bool
	cidr    bool
	cmp     string // gt, gte, lt, lte or ""
}

var cmpOps = map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

func (c *conv) parseMods(path string, list []string) mods {
	var m mods
	var kinds []string // the mutually exclusive matching modifiers used
	for _, mod := range list {
		switch mod {
		case "contains", "startswith", "endswith":
			m.match = mod
			kinds = append(kinds, mod)
		case "all":
			m.all = true
		case "re":
			m.re = true
			kinds = append(kinds, mod)
		case "i", "m", "s":
			m.reFlags += mod
		case "cased":
			m.cased = true
		case "exists":
			m.exists = true
			kinds = append(kinds, mod)
		case "cidr":
			m.cidr = true
			kinds = append(kinds, mod)
		case "gt", "gte", "lt", "lte":
			m.cmp = mod
			kinds = append(kinds, mod)
		case "base64", "base64offset", "windash", "wide", "utf16", "utf16le", "utf16be", "expand", "fieldref":
			c.fail("%s: modifier |%s is not supported", path, mod)
		default:
			c.fail("%s: unknown modifier |%s", path, mod)
		}
	}
	if len(kinds) > 1 {
		c.fail("%s: modifiers |%s cannot be combined", path, strings.Join(kinds, " and |"))
	}
	if m.reFlags != "" && !m.re {
		c.fail("%s: modifiers |i, |m, |s only apply to |re", path)
	}
	return m
}

// term is the expr of one value; eq terms (subject == literal) are merged
// into `subject in [...]` when OR-ed.
type term struct {
	x       ex
	subject string
	lit     string // rendered literal of an eq term, "" otherwise
}

func (c *conv) fieldItem(sel, key string, vn *yaml.Node) ex {
	parts := strings.Split(key, "|")
	name := parts[0]
	path := sel + "." + name
	m := c.parseMods(path, parts[1:])
	f, ok := c.ls.lookup(name)
	if !ok {
		c.fail("%s: field %q has no trailwatch mapping for %s", path, name, c.ls.name)
		return leaf("false")
	}
	vn = deref(vn)
	var vals []*yaml.Node
	switch vn.Kind {
	case yaml.ScalarNode:
		vals = []*yaml.Node{vn}
	case yaml.SequenceNode:
		for _, v := range vn.Content {
			if v = deref(v); v.Kind != yaml.ScalarNode {
				c.fail("%s: values must be scalars, got a nested %s", path, kindName(v))
				return leaf("false")
			}
			vals = append(vals, v)
		}
		if len(vals) == 0 {
			c.fail("%s: empty value list", path)
			return leaf("false")
		}
	default:
		c.fail("%s: want a value or a list of values, got %s", path, kindName(vn))
		return leaf("false")
	}
	terms := make([]term, 0, len(vals))
	for _, v := range vals {
		terms = append(terms, c.value(path, f, m, v))
	}
	if m.all {
		xs := make([]ex, len(terms))
		for i, t := range terms {
			xs[i] = t.x
		}
		return and(xs...)
	}
	return mergeEq(terms)
}

// mergeEq ORs terms, folding equality terms on one subject into `in`.
func mergeEq(terms []term) ex {
	var xs []ex
	done := map[int]bool{}
	for i, t := range terms {
		if done[i] {
			continue
		}
		if t.lit == "" {
			xs = append(xs, t.x)
			continue
		}
		lits := []string{t.lit}
		for j := i + 1; j < len(terms); j++ {
			if terms[j].lit != "" && terms[j].subject == t.subject && !slices.Contains(lits, terms[j].lit) {
				lits = append(lits, terms[j].lit)
				done[j] = true
			} else if terms[j].lit != "" && terms[j].subject == t.subject {
				done[j] = true
			}
		}
		if len(lits) == 1 {
			xs = append(xs, t.x)
		} else {
			list := " in [" + strings.Join(lits, ", ") + "]"
			xs = append(xs, ex{lv: lvCompare, s: t.subject + list, neg: t.subject + " not" + list})
		}
	}
	return or(xs...)
}

// eq is the term subject == lit.
func eq(subject, lit string) term {
	return term{x: ex{lv: lvCompare, s: subject + " == " + lit, neg: subject + " != " + lit}, subject: subject, lit: lit}
}

func isNull(v *yaml.Node) bool { return v.Tag == "!!null" }

// value converts one value of a field condition.
func (c *conv) value(path string, f field, m mods, v *yaml.Node) term {
	zero := `""`
	if f.numeric {
		zero = "0"
	}
	switch {
	case m.exists:
		b, err := strconv.ParseBool(v.Value)
		if err != nil || v.Tag != "!!bool" {
			c.fail("%s: |exists wants true or false, got %q", path, v.Value)
		}
		isSet, unset := f.path+" != "+zero, f.path+" == "+zero
		if b {
			return term{x: ex{lv: lvCompare, s: isSet, neg: unset}}
		}
		return term{x: ex{lv: lvCompare, s: unset, neg: isSet}}
	case isNull(v):
		return eq(f.path, zero)
	case m.cmp != "":
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if !f.numeric || err != nil {
			c.fail("%s: |%s needs a numeric field and an integer, got %q", path, m.cmp, v.Value)
		}
		return term{x: leaf(fmt.Sprintf("%s %s %d", f.path, cmpOps[m.cmp], n))}
	case m.cidr:
		return term{x: c.cidr(path, f, v.Value)}
	case m.re:
		return term{x: c.regex(path, f, m, v.Value)}
	}
	if f.numeric && m.match == "" && !strings.ContainsAny(v.Value, "*?\\") {
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err == nil {
			lit := strconv.FormatInt(n, 10)
			return eq(f.path, lit)
		}
	}
	return c.match(f, m, v.Value)
}

// tok is a piece of a Sigma value: a literal run or a wildcard.
type tok struct {
	wild byte // '*', '?' or 0 for a literal
	lit  string
}

// parsePattern splits a Sigma value into literals and wildcards. A
// backslash escapes *, ? and itself; before anything else it is literal.
func parsePattern(s string) []tok {
	var out []tok
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, tok{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s) && strings.IndexByte(`*?\`, s[i+1]) >= 0:
			lit.WriteByte(s[i+1])
			i++
		case ch == '*' || ch == '?':
			flush()
			if ch == '*' && len(out) > 0 && out[len(out)-1].wild == '*' {
				continue
			}
			out = append(out, tok{wild: ch})
		default:
			lit.WriteByte(ch)
		}
	}
	flush()
	return out
}

// match converts a plain, contains, startswith or endswith value, with
// wildcards, into the simplest expr operator that is exact.
func (c *conv) match(f field, m mods, s string) term {
	toks := parsePattern(s)
	star := tok{wild: '*'}
	if m.match == "contains" || m.match == "endswith" {
		if len(toks) == 0 || toks[0].wild != '*' {
			toks = append([]tok{star}, toks...)
		}
	}
	if m.match == "contains" || m.match == "startswith" {
		if len(toks) == 0 || toks[len(toks)-1].wild != '*' {
			toks = append(toks, star)
		}
	}
	subject := f.path
	if f.numeric {
		subject = "string(" + f.path + ")"
	}
	fold := func(lit string) (string, string) {
		if m.cased || strings.ToLower(lit) == strings.ToUpper(lit) {
			return subject, quote(lit)
		}
		return "lower(" + subject + ")", quote(strings.ToLower(lit))
	}
	isLit := func(t tok) bool { return t.wild == 0 }
	switch {
	case len(toks) == 0:
		return eq(subject, `""`)
	case len(toks) == 1 && isLit(toks[0]):
		subj, lit := fold(toks[0].lit)
		return eq(subj, lit)
	case len(toks) == 1 && toks[0].wild == '*':
		return term{x: leaf(subject + ` != ""`)}
	case len(toks) == 3 && toks[0].wild == '*' && isLit(toks[1]) && toks[2].wild == '*':
		subj, lit := fold(toks[1].lit)
		return term{x: leaf(subj + " contains " + lit)}
	case len(toks) == 2 && isLit(toks[0]) && toks[1].wild == '*':
		subj, lit := fold(toks[0].lit)
		return term{x: leaf(subj + " startsWith " + lit)}
	case len(toks) == 2 && toks[0].wild == '*' && isLit(toks[1]):
		subj, lit := fold(toks[1].lit)
		return term{x: leaf(subj + " endsWith " + lit)}
	}
	var re strings.Builder
	re.WriteString("(?s")
	if !m.cased {
		re.WriteString("i")
	}
	re.WriteString(")^")
	for _, t := range toks {
		switch t.wild {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(t.lit))
		}
	}
	re.WriteString("$")
	return term{x: leaf(subject + " matches " + quote(re.String()))}
}

// regex converts a |re value; Sigma regexes are case-sensitive unless |i.
func (c *conv) regex(path string, f field, m mods, s string) ex {
	pat := s
	if m.reFlags != "" {
		pat = "(?" + m.reFlags + ")" + pat
	}
	if _, err := regexp.Compile(pat); err != nil {
		c.fail("%s: regular expression not supported by Go's RE2 syntax: %v", path, err)
		return leaf("false")
	}
	subject := f.path
	if f.numeric {
		subject = "string(" + f.path + ")"
	}
	return leaf(subject + " matches " + quote(pat))
}

// cidr converts a |cidr value. expr has no network functions, so only
// IPv4 prefixes on octet boundaries are supported, as string prefixes of
// the dotted address.
func (c *conv) cidr(path string, f field, s string) ex {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		c.fail("%s: |cidr: %v", path, err)
		return leaf("false")
	}
	p = p.Masked()
	if f.numeric || !p.Addr().Is4() || p.Bits()%8 != 0 || p.Bits() == 0 {
		c.fail("%s: |cidr %s is not supported: only IPv4 prefixes of /8, /16, /24 or /32", path, s)
		return leaf("false")
	}
	octets := strings.Split(p.Addr().String(), ".")
	if p.Bits() == 32 {
		return leaf(f.path + " == " + quote(p.Addr().String()))
	}
	return leaf(f.path + " startsWith " + quote(strings.Join(octets[:p.Bits()/8], ".")+"."))
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	}
	if isNull(n) {
		return "null"
	}
	return "scalar"
}
