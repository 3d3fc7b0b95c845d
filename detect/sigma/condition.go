package sigma

import (
	"regexp"
	"strings"
	"unicode"
)

// condParser parses a Sigma condition: search identifiers combined with
// and, or, not and parentheses, and `1 of x*` / `all of x*` / `... of them`.
// Selections are converted when first referenced.
type condParser struct {
	c     *conv
	toks  []string
	pos   int
	names []string        // search identifiers, in detection order
	sel   func(string) ex // converts a search identifier
	err   string          // first syntax problem
}

func tokenize(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		r := rune(s[i])
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '(' || r == ')' || r == '|':
			out = append(out, s[i:i+1])
			i++
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && strings.IndexByte("()|", s[j]) < 0 {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *condParser) next() string {
	t := p.peek()
	if p.pos < len(p.toks) {
		p.pos++
	}
	return t
}

func (p *condParser) syntax(format string) {
	if p.err == "" {
		p.err = format
	}
}

// parse parses the whole condition.
func (p *condParser) parse(src string) ex {
	p.toks = tokenize(src)
	if len(p.toks) == 0 {
		p.syntax("empty condition")
		return leaf("false")
	}
	x := p.or()
	switch t := p.peek(); {
	case t == "|":
		p.syntax("aggregation expressions (`| count() ...`) are not supported; use a correlation rule")
	case strings.EqualFold(t, "near"):
		p.syntax("`near` is not supported")
	case t != "":
		p.syntax("unexpected " + quote(t))
	}
	return x
}

func (p *condParser) or() ex {
	xs := []ex{p.and()}
	for strings.EqualFold(p.peek(), "or") {
		p.next()
		xs = append(xs, p.and())
	}
	return or(xs...)
}

func (p *condParser) and() ex {
	xs := []ex{p.not()}
	for strings.EqualFold(p.peek(), "and") {
		p.next()
		xs = append(xs, p.not())
	}
	return and(xs...)
}

func (p *condParser) not() ex {
	if strings.EqualFold(p.peek(), "not") {
		p.next()
		return not(p.not())
	}
	return p.primary()
}

func (p *condParser) primary() ex {
	t := p.next()
	switch {
	case t == "":
		p.syntax("condition ends early")
		return leaf("false")
	case t == "(":
		x := p.or()
		if p.next() != ")" {
			p.syntax("missing )")
		}
		return x
	case t == ")" || t == "|":
		p.syntax("unexpected " + quote(t))
		return leaf("false")
	case strings.EqualFold(p.peek(), "of"):
		p.next()
		return p.of(t, p.next())
	}
	for _, kw := range []string{"and", "or", "not", "of", "them"} {
		if strings.EqualFold(t, kw) {
			p.syntax("unexpected " + quote(t))
			return leaf("false")
		}
	}
	if strings.ContainsAny(t, "*?") {
		p.syntax("wildcard " + quote(t) + " outside `1 of` / `all of`")
		return leaf("false")
	}
	for _, n := range p.names {
		if n == t {
			return p.sel(t)
		}
	}
	p.syntax("unknown search identifier " + quote(t))
	return leaf("false")
}

// of converts `1 of pattern`, `all of pattern`, `any of` (a synonym of
// `1 of`) and their `them` forms.
func (p *condParser) of(quant, pattern string) ex {
	q := strings.ToLower(quant)
	if q != "1" && q != "all" && q != "any" {
		p.syntax(quote(quant+" of") + " is not supported: use `1 of` or `all of`")
		return leaf("false")
	}
	var re *regexp.Regexp
	if !strings.EqualFold(pattern, "them") {
		if pattern == "" || pattern == "(" || pattern == ")" || pattern == "|" {
			p.syntax("`of` wants a pattern or `them`")
			return leaf("false")
		}
		re = regexp.MustCompile("^" + strings.ReplaceAll(strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*"), `\?`, ".") + "$")
	}
	var xs []ex
	for _, n := range p.names {
		if re == nil && strings.HasPrefix(n, "_") || re != nil && !re.MatchString(n) {
			continue
		}
		xs = append(xs, p.sel(n))
	}
	if len(xs) == 0 {
		p.syntax(quote(quant+" of "+pattern) + " matches no search identifier")
		return leaf("false")
	}
	if q == "all" {
		return and(xs...)
	}
	return or(xs...)
}
