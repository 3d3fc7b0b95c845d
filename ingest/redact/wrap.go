package redact

import (
	"context"

	"github.com/trailwatch/trailwatch/ingest"
)

// Wrap returns an Emit that redacts the Data of every record and then hands
// the records to emit. The caller's slice and byte buffers are never
// modified: a batch with secrets is copied (copy-on-write) so a collector
// retrying the same batch after an error still holds its original lines, and
// a batch without any is passed on as is. counter, if not nil, is called
// with the number of secrets replaced in each delivered batch that had some.
func Wrap(emit ingest.Emit, r *Redactor, counter func(n int)) ingest.Emit {
	return func(ctx context.Context, recs []ingest.Record) error {
		out, total := recs, 0
		for i := range recs {
			data, n := r.Redact(recs[i].Data)
			if n == 0 {
				continue
			}
			if total == 0 {
				out = make([]ingest.Record, len(recs))
				copy(out, recs)
			}
			out[i].Data = data
			total += n
		}
		if err := emit(ctx, out); err != nil {
			return err
		}
		// Counted once delivered: a failed batch is redacted again on retry.
		if total > 0 && counter != nil {
			counter(total)
		}
		return nil
	}
}
