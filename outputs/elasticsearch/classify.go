package elasticsearch

import (
	"fmt"
	"net/http"

	"github.com/elastic/go-elasticsearch/v8/esutil"
)

// maxReason bounds a failure reason: a request-level failure carries the
// whole response body, which can be large.
const maxReason = 512

// classify decides what one bulk item's outcome means, the beats way:
// <300 stored; 409 stored (create found the _id already there: a retry or a
// replay); 429 and 5xx retryable; 413 retryable (the caller splits the
// batch); any other 4xx permanent, with the server's reason. An error
// without an item status is a request-level failure (node down, 5xx on the
// whole request, unreadable response): the document's fault is unknown, so
// it is retryable.
func classify(r esutil.BulkIndexerResponseItem, err error) (ok, retry bool, reason string) {
	if err != nil {
		return false, true, truncate(err.Error())
	}
	switch s := r.Status; {
	case s == 0:
		return false, true, "bulk response had no status for this item"
	case s < 300 && r.Error.Type == "":
		return true, false, ""
	case s == http.StatusConflict:
		return true, false, ""
	case s == http.StatusTooManyRequests || s >= 500:
		return false, true, itemReason(r)
	case s == http.StatusRequestEntityTooLarge:
		return false, true, itemReason(r) + " (split the batch)"
	default:
		return false, false, itemReason(r)
	}
}

// itemReason formats "status type: reason (caused by type: reason)".
func itemReason(r esutil.BulkIndexerResponseItem) string {
	s := fmt.Sprintf("%d %s: %s", r.Status, r.Error.Type, r.Error.Reason)
	if r.Error.Cause.Type != "" {
		s += fmt.Sprintf(" (caused by %s: %s)", r.Error.Cause.Type, r.Error.Cause.Reason)
	}
	return truncate(s)
}

func truncate(s string) string {
	if len(s) <= maxReason {
		return s
	}
	return s[:maxReason] + "…"
}
