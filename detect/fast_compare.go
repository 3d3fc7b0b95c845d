package detect

import (
	"reflect"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// Comparisons and `in` for the fast path (see fast.go), following expr's
// runtime.Equal, runtime.Less and runtime.In: an int compared with a float
// is converted to float64; scalars of different kinds are never equal;
// nil equals only nil and nil slices and maps.

// compare compiles == != < <= > >=.
func fastCompare(op string, l, r fastExpr) (func(*schema.Event) bool, error) {
	if op == "!=" {
		eq, err := fastCompare("==", l, r)
		if err != nil {
			return nil, err
		}
		if l.kind == r.kind && (l.kind == kString || l.kind == kInt) {
			return fastOrdered(op, l, r), nil // one closure instead of two
		}
		return func(e *schema.Event) bool { return !eq(e) }, nil
	}
	numeric := func(k fastKind) bool { return k == kInt || k == kFloat }
	switch {
	case l.kind == kString && r.kind == kString, l.kind == kInt && r.kind == kInt:
		return fastOrdered(op, l, r), nil
	case numeric(l.kind) && numeric(r.kind):
		return fastOrdered(op, fastToFloat(l), fastToFloat(r)), nil
	case op != "==":
		return nil, fastUnsupported("%s on %v and %v", op, l.kind, r.kind)
	case l.kind == kBool && r.kind == kBool:
		lb, rb := l.b, r.b
		return func(e *schema.Event) bool { return lb(e) == rb(e) }, nil
	case l.kind == kNil || r.kind == kNil:
		if l.kind == kNil {
			l, r = r, l
		}
		switch l.kind {
		case kNil:
			return fastConstBool(true), nil
		case kStrings:
			ss := l.ss
			return func(e *schema.Event) bool { return ss(e) == nil }, nil
		case kStrMap:
			m := l.m
			return func(e *schema.Event) bool { return m(e) == nil }, nil
		case kSlice:
			return l.null, nil
		case kBool, kInt, kFloat, kString:
			return fastConstBool(false), nil
		}
	case fastScalar(l.kind) && fastScalar(r.kind):
		// Mixed kinds (string and int, bool and float...): never equal.
		return fastConstBool(false), nil
	}
	return nil, fastUnsupported("%s on %v and %v", op, l.kind, r.kind)
}

func fastScalar(k fastKind) bool {
	return k == kBool || k == kInt || k == kFloat || k == kString
}

func fastConstBool(v bool) func(*schema.Event) bool {
	return func(*schema.Event) bool { return v }
}

// toFloat64 widens an int node to float64, as expr does when an int meets
// a float.
func fastToFloat(x fastExpr) fastExpr {
	if x.kind == kFloat {
		return x
	}
	i := x.i
	out := fastExpr{fastField: fastField{kind: kFloat, f: func(e *schema.Event) float64 { return float64(i(e)) }}, konst: x.konst}
	if x.konst {
		out.val = float64(x.val.(int64))
	}
	return out
}

// ordered compiles a comparison of two nodes of the same kind: kInt,
// kFloat or kString.
func fastOrdered(op string, l, r fastExpr) func(*schema.Event) bool {
	switch l.kind {
	case kInt:
		return fastOrderedOf(op, l.i, r.i, l.konst, r.konst, l.val, r.val)
	case kFloat:
		return fastOrderedOf(op, l.f, r.f, l.konst, r.konst, l.val, r.val)
	}
	return fastOrderedOf(op, l.s, r.s, l.konst, r.konst, l.val, r.val)
}

// fastMirror is the operator with its operands swapped.
var fastMirror = map[string]string{"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}

func fastOrderedOf[T int64 | float64 | string](op string, l, r func(*schema.Event) T, lk, rk bool, lv, rv any) func(*schema.Event) bool {
	if lk && !rk {
		return fastOrderedOf(fastMirror[op], r, l, rk, lk, rv, lv)
	}
	if rk {
		c := rv.(T)
		switch op {
		case "==":
			return func(e *schema.Event) bool { return l(e) == c }
		case "!=":
			return func(e *schema.Event) bool { return l(e) != c }
		case "<":
			return func(e *schema.Event) bool { return l(e) < c }
		case "<=":
			return func(e *schema.Event) bool { return l(e) <= c }
		case ">":
			return func(e *schema.Event) bool { return l(e) > c }
		}
		return func(e *schema.Event) bool { return l(e) >= c }
	}
	switch op {
	case "==":
		return func(e *schema.Event) bool { return l(e) == r(e) }
	case "!=":
		return func(e *schema.Event) bool { return l(e) != r(e) }
	case "<":
		return func(e *schema.Event) bool { return l(e) < r(e) }
	case "<=":
		return func(e *schema.Event) bool { return l(e) <= r(e) }
	case ">":
		return func(e *schema.Event) bool { return l(e) > r(e) }
	}
	return func(e *schema.Event) bool { return l(e) >= r(e) }
}

// fastSmallList is the longest list tested by comparisons rather than a map.
const fastSmallList = 4

// in compiles `l in r`. leftType is the checked type of l: an optimizer
// set is looked up with reflect in expr, which fails unless the needle has
// the key's exact kind.
func fastIn(l, r fastExpr, leftType reflect.Type) (func(*schema.Event) bool, error) {
	switch r.kind {
	case kStrings:
		if l.kind != kString {
			return nil, fastUnsupported("%v in []string", l.kind)
		}
		s, ss := l.s, r.ss
		return func(e *schema.Event) bool {
			v := s(e)
			for _, x := range ss(e) {
				if x == v {
					return true
				}
			}
			return false
		}, nil
	case kStrMap:
		if l.kind != kString {
			return nil, fastUnsupported("%v in map[string]string", l.kind)
		}
		s, m := l.s, r.m
		return func(e *schema.Event) bool { _, ok := m(e)[s(e)]; return ok }, nil
	case kList:
	default:
		return nil, fastUnsupported("in %v", r.kind)
	}
	if r.mapKey != reflect.Invalid && (leftType == nil || leftType.Kind() != r.mapKey) {
		return nil, fastUnsupported("%v in a set of %v", leftType, r.mapKey)
	}
	switch l.kind {
	case kString:
		var set []string
		for _, v := range r.list {
			if s, ok := v.(string); ok {
				set = append(set, s)
			}
		}
		return fastInSet(l.s, set), nil
	case kInt:
		var ints []int64
		var floats []float64
		for _, v := range r.list {
			switch v := v.(type) {
			case int64:
				ints = append(ints, v)
			case float64:
				floats = append(floats, v)
			}
		}
		isInt := fastInSet(l.i, ints)
		if len(floats) == 0 {
			return isInt, nil
		}
		i := l.i
		return func(e *schema.Event) bool {
			if isInt(e) {
				return true
			}
			f := float64(i(e))
			for _, x := range floats {
				if x == f {
					return true
				}
			}
			return false
		}, nil
	case kFloat:
		var floats []float64
		for _, v := range r.list {
			switch v := v.(type) {
			case int64:
				floats = append(floats, float64(v))
			case float64:
				floats = append(floats, v)
			}
		}
		return fastInSet(l.f, floats), nil
	case kBool:
		var bools []bool
		for _, v := range r.list {
			if b, ok := v.(bool); ok {
				bools = append(bools, b)
			}
		}
		return fastInSet(l.b, bools), nil
	case kNil:
		for _, v := range r.list {
			if v == nil {
				return fastConstBool(true), nil
			}
		}
		return fastConstBool(false), nil
	}
	return nil, fastUnsupported("%v in a list", l.kind)
}

// inSet tests membership with == (a NaN is in no set, as in expr),
// through a map for longer sets.
func fastInSet[T comparable](get func(*schema.Event) T, set []T) func(*schema.Event) bool {
	switch len(set) {
	case 0:
		return fastConstBool(false)
	case 1:
		a := set[0]
		return func(e *schema.Event) bool { return get(e) == a }
	case 2:
		a, b := set[0], set[1]
		return func(e *schema.Event) bool { v := get(e); return v == a || v == b }
	}
	if len(set) <= fastSmallList {
		return func(e *schema.Event) bool {
			v := get(e)
			for _, x := range set {
				if x == v {
					return true
				}
			}
			return false
		}
	}
	m := make(map[T]struct{}, len(set))
	for _, x := range set {
		m[x] = struct{}{}
	}
	return func(e *schema.Event) bool { _, ok := m[get(e)]; return ok }
}
