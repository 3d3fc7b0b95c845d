package normalize

import "github.com/trailwatch/trailwatch/normalize/schema"

// DecodeEventFast runs DecodeEvent's fast path alone and reports whether it
// decoded data without leaving it to encoding/json.
func DecodeEventFast(data []byte, ev *schema.Event) bool {
	*ev = schema.Event{}
	d := decoder{data: data}
	d.event(ev)
	d.ws()
	return !d.bad && d.i == len(d.data)
}
