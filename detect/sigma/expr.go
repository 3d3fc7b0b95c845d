package sigma

import (
	"strconv"
	"strings"
)

// Operator levels of an ex, loosest last: an operand is parenthesised when
// its level is looser than its context allows.
const (
	lvPrimary = iota // literal, call, parenthesised: safe anywhere
	lvCompare        // a == b, a contains b, a in [..]
	lvAnd            // a && b && ...
	lvOr             // a || b || ...
	lvNot            // !a
)

// ex is a piece of expr source kept as a tree, so it can be printed on one
// line or broken across lines at its and/or chains.
type ex struct {
	lv   int
	s    string // leaf source (lvPrimary, lvCompare)
	neg  string // the leaf's negation, when it has a direct form (!=, not in)
	kids []ex   // operands of lvAnd, lvOr; the one operand of lvNot
}

func leaf(s string) ex { return ex{lv: lvCompare, s: s} }

func chain(lv int, xs []ex) ex {
	var kids []ex
	for _, x := range xs {
		if x.lv == lv {
			kids = append(kids, x.kids...)
		} else {
			kids = append(kids, x)
		}
	}
	if len(kids) == 1 {
		return kids[0]
	}
	return ex{lv: lv, kids: kids}
}

func and(xs ...ex) ex { return chain(lvAnd, xs) }
func or(xs ...ex) ex  { return chain(lvOr, xs) }

func not(x ex) ex {
	if x.lv == lvNot {
		return x.kids[0]
	}
	if x.neg != "" {
		return ex{lv: lvCompare, s: x.neg, neg: x.s}
	}
	return ex{lv: lvNot, kids: []ex{x}}
}

// maxLine is the width past which and/or chains are broken across lines.
const maxLine = 88

// String prints x on one line.
func (x ex) String() string { return x.format("", false) }

// pretty prints x, breaking chains that do not fit on a line; indent is
// the column continuation lines start at.
func (x ex) pretty(indent string) string { return x.format(indent, true) }

func (x ex) format(indent string, wrap bool) string {
	switch x.lv {
	case lvPrimary, lvCompare:
		return x.s
	case lvNot:
		k := x.kids[0]
		if k.lv == lvPrimary {
			return "!" + k.s
		}
		return "!(" + k.format(indent+"  ", wrap) + ")"
	}
	sep := " && "
	if x.lv == lvOr {
		sep = " || "
	}
	if wrap && len(indent)+len(x.String()) > maxLine {
		sep = strings.TrimRight(sep, " ") + "\n" + indent
	} else {
		wrap = false
	}
	parts := make([]string, len(x.kids))
	for i, k := range x.kids {
		// && binds tighter than ||, but an and-chain inside an or-chain
		// is bracketed anyway: it reads unambiguously.
		if k.lv == lvOr || k.lv == lvAnd {
			parts[i] = "(" + k.format(indent+" ", wrap) + ")"
		} else {
			parts[i] = k.format(indent, wrap)
		}
	}
	return strings.Join(parts, sep)
}

// quote writes s as an expr string literal.
func quote(s string) string { return strconv.Quote(s) }
