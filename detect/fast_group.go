package detect

import (
	"fmt"
	"strconv"

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
