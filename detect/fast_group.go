package detect

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/expr-lang/expr/vm"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

// groupFields maps every group_by source that is a plain field path of a
// scalar field to a reader printing its value as formatValue prints what
// the VM returns for it. compileGroupBy compiles the source against
// schema.Event, and a macro or list name can neither contain a dot nor
// be a field name (Library.checkName), so such a source means that field
// and nothing else.
var groupFields = func() map[string]func(*schema.Event) string {
	out := make(map[string]func(*schema.Event) string, len(fastFields))
	for path, f := range fastFields {
		switch f.kind {
		case kString:
			out[path] = f.s
		case kInt:
			get := f.i
			out[path] = func(e *schema.Event) string { return strconv.FormatInt(get(e), 10) }
		case kBool:
			get := f.b
			out[path] = func(e *schema.Event) string { return strconv.FormatBool(get(e)) }
		case kFloat:
			get := f.f
			out[path] = func(e *schema.Event) string { return fmt.Sprint(get(e)) }
		}
	}
	return out
}()

// fastGroupKey returns the reader of group_by source src, or nil if src is
// not a plain scalar field path and must run on the VM.
func fastGroupKey(src string) func(*schema.Event) string {
	return groupFields[src]
}

// keyReader reads one key field (group_by, by, new_terms.fields, a
// window's aggregated field) as a key value: through the field's typed
// reader when the source is a plain scalar path, else on the VM.
type keyReader struct {
	get  func(*schema.Event) string // nil: run prog
	prog *vm.Program
}

// newKeyReaders returns the readers of the key fields srcs, compiled into
// progs (parallel).
func newKeyReaders(srcs []string, progs []*vm.Program) []keyReader {
	out := make([]keyReader, len(srcs))
	for i, src := range srcs {
		out[i] = keyReader{get: fastGroupKey(src), prog: progs[i]}
	}
	return out
}

// read returns the field's value on ev, formatted as formatValue formats
// what the VM returns for it.
func (k *keyReader) read(m *vm.VM, ev *schema.Event) (string, error) {
	if k.get != nil {
		return k.get(ev), nil
	}
	out, err := m.Run(k.prog, ev)
	if err != nil {
		return "", err
	}
	return formatValue(out), nil
}

// termReader reads one new_terms field: its key value, appended to a
// buffer, and whether it is set (not its type's zero value, which is no
// term). It is the same as running the field's program, testing
// reflect.Value.IsZero on the result and formatting it with formatValue,
// without the VM's boxing or a string per value.
type termReader struct {
	app  func([]byte, *schema.Event) ([]byte, bool) // nil: run prog
	prog *vm.Program
}

// termFields maps every plain scalar field path to its term appender.
var termFields = func() map[string]func([]byte, *schema.Event) ([]byte, bool) {
	out := make(map[string]func([]byte, *schema.Event) ([]byte, bool), len(fastFields))
	for path, f := range fastFields {
		switch f.kind {
		case kString:
			get := f.s
			out[path] = func(b []byte, e *schema.Event) ([]byte, bool) {
				v := get(e)
				return append(b, v...), v != ""
			}
		case kInt:
			get := f.i
			out[path] = func(b []byte, e *schema.Event) ([]byte, bool) {
				if v := get(e); v != 0 {
					return strconv.AppendInt(b, v, 10), true
				}
				return b, false
			}
		case kBool:
			get := f.b
			out[path] = func(b []byte, e *schema.Event) ([]byte, bool) {
				if get(e) {
					return append(b, "true"...), true
				}
				return b, false
			}
		case kFloat:
			get := f.f
			out[path] = func(b []byte, e *schema.Event) ([]byte, bool) {
				// As IsZero: -0.0 is zero, NaN is set.
				if v := get(e); v != 0 {
					return fmt.Append(b, v), true
				}
				return b, false
			}
		}
	}
	return out
}()

func newTermReaders(srcs []string, progs []*vm.Program) []termReader {
	out := make([]termReader, len(srcs))
	for i, src := range srcs {
		out[i] = termReader{app: termFields[src], prog: progs[i]}
	}
	return out
}

// read appends the term value of the field on ev to b and reports whether
// it is set; b is returned unchanged when it is not.
func (k *termReader) read(m *vm.VM, b []byte, ev *schema.Event) ([]byte, bool, error) {
	if k.app != nil {
		v, ok := k.app(b, ev)
		return v, ok, nil
	}
	out, err := m.Run(k.prog, ev)
	if err != nil {
		return b, false, err
	}
	if out == nil || reflect.ValueOf(out).IsZero() {
		return b, false, nil
	}
	return append(b, formatValue(out)...), true, nil
}

// numFields maps every plain integer field path to a reader returning
// what toFloat returns for the VM's value. Float fields are left to the
// VM, which reports NaN and infinities as errors.
var numFields = func() map[string]func(*schema.Event) float64 {
	out := map[string]func(*schema.Event) float64{}
	for path, f := range fastFields {
		if f.kind == kInt {
			get := f.i
			out[path] = func(e *schema.Event) float64 { return float64(get(e)) }
		}
	}
	return out
}()
