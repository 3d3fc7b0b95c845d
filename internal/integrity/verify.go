package integrity

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Source is what Verify reads: the raw partitions, the checkpoints, and the
// records of a partition by offset. KafkaSource reads the topics; tests read
// tampered copies.
type Source interface {
	// Partitions lists the raw topic's partitions.
	Partitions(ctx context.Context) ([]int32, error)
	// Checkpoints returns every checkpoint, and a finding for each entry
	// that is not a checkpoint at all.
	Checkpoints(ctx context.Context) ([]Checkpoint, []Finding, error)
	// Records calls fn for the records of partition p at offsets from..to
	// (to < 0: to the end) in the order the source holds them.
	Records(ctx context.Context, p int32, from, to int64, fn func(*kgo.Record) error) error
}

// Finding kinds.
const (
	KindAltered         = "altered"              // a record's bytes differ from what was signed
	KindMissing         = "missing"              // a signed record is gone
	KindInserted        = "inserted"             // a record nobody signed
	KindReordered       = "reordered"            // a signed record at another place in the order
	KindShifted         = "shifted"              // signed records, in order, at other offsets
	KindChainMismatch   = "chain_mismatch"       // the range does not chain to the signed head
	KindCheckpointGap   = "checkpoint_gap"       // offsets no checkpoint covers between two that do
	KindCheckpointLink  = "checkpoint_link"      // a checkpoint does not continue its predecessor
	KindBadSignature    = "bad_signature"        // a checkpoint whose signature fails or key is unknown
	KindMalformed       = "malformed_checkpoint" // not a well-formed checkpoint
	KindUncoveredStrict = "uncovered"            // records no checkpoint covers yet (with FailUncovered)
)

// Finding is one problem, located by raw partition and offset.
type Finding struct {
	Kind      string `json:"kind"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// EndOffset is the last offset of a finding about a range (0 otherwise).
	EndOffset int64  `json:"end_offset,omitempty"`
	Detail    string `json:"detail"`
}

// Uncovered counts records after a partition's last checkpoint: not yet
// signed, so not proven either way.
type Uncovered struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from_offset"`
	To        int64 `json:"to_offset"`
	Records   int64 `json:"records"`
}

// Options select what Verify checks.
type Options struct {
	// From and To bound record time; zero values are unbounded.
	From, To time.Time
	// Partitions restricts the check; empty means all.
	Partitions []int32
	// Keys maps key ids to the public keys checkpoints may be signed with.
	Keys map[string]ed25519.PublicKey
	// FailUncovered makes records no checkpoint covers a finding.
	FailUncovered bool
}

// Report is the outcome of Verify.
type Report struct {
	From        time.Time   `json:"from,omitzero"`
	To          time.Time   `json:"to,omitzero"`
	Partitions  []int32     `json:"partitions"`
	Checkpoints int         `json:"checkpoints"`
	Records     int64       `json:"records"`
	Findings    []Finding   `json:"findings"`
	Uncovered   []Uncovered `json:"uncovered,omitempty"`
}

// OK reports a check that found nothing wrong.
func (r *Report) OK() bool { return len(r.Findings) == 0 }

// WriteText prints the report for a person: one line per finding.
func (r *Report) WriteText(w io.Writer) {
	for _, f := range r.Findings {
		loc := fmt.Sprintf("offset %d", f.Offset)
		if f.EndOffset > f.Offset {
			loc = fmt.Sprintf("offsets %d..%d", f.Offset, f.EndOffset)
		}
		fmt.Fprintf(w, "%-20s partition %d %s: %s\n", f.Kind, f.Partition, loc, f.Detail)
	}
	for _, u := range r.Uncovered {
		fmt.Fprintf(w, "%-20s partition %d offsets %d..%d: %d records not yet checkpointed\n", "note", u.Partition, u.From, u.To, u.Records)
	}
	verdict := "OK"
	if !r.OK() {
		verdict = fmt.Sprintf("FAILED: %d findings", len(r.Findings))
	}
	fmt.Fprintf(w, "%s — %d partitions, %d checkpoints, %d records verified\n", verdict, len(r.Partitions), r.Checkpoints, r.Records)
}

// Verify recomputes the chains from src and reports every discrepancy. An
// error means the source could not be read, not that the data is bad.
func Verify(ctx context.Context, src Source, opts Options) (*Report, error) {
	parts, err := src.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	cks, bad, err := src.Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{From: opts.From, To: opts.To, Findings: bad}
	byPart := map[int32][]Checkpoint{}
	for _, c := range cks {
		byPart[c.Partition] = append(byPart[c.Partition], c)
		if !slices.Contains(parts, c.Partition) {
			parts = append(parts, c.Partition)
		}
	}
	slices.Sort(parts)
	for _, p := range parts {
		if len(opts.Partitions) > 0 && !slices.Contains(opts.Partitions, p) {
			continue
		}
		rep.Partitions = append(rep.Partitions, p)
		if err := verifyPartition(ctx, src, opts, p, byPart[p], rep); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func (o *Options) inTime(first, last time.Time) bool {
	return (o.From.IsZero() || !last.Before(o.From)) && (o.To.IsZero() || !first.After(o.To))
}

func verifyPartition(ctx context.Context, src Source, opts Options, p int32, list []Checkpoint, rep *Report) error {
	add := func(kind string, off, end int64, format string, args ...any) {
		rep.Findings = append(rep.Findings, Finding{Kind: kind, Partition: p, Offset: off, EndOffset: end, Detail: fmt.Sprintf(format, args...)})
	}
	// Trust only well-formed, correctly signed checkpoints; exact
	// duplicates (a replayed batch) count once.
	byHash := map[Hash]*Checkpoint{}
	var valid []*Checkpoint
	for i := range list {
		c := &list[i]
		if err := c.wellFormed(); err != nil {
			add(KindMalformed, c.From, c.To, "%v", err)
			continue
		}
		if err := c.CheckSignature(opts.Keys); err != nil {
			add(KindBadSignature, c.From, c.To, "checkpoint %v", err)
			continue
		}
		h := c.Hash()
		if _, dup := byHash[h]; dup {
			continue
		}
		byHash[h] = c
		valid = append(valid, c)
	}
	slices.SortFunc(valid, func(a, b *Checkpoint) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	var sel []*Checkpoint
	for _, c := range valid {
		if opts.inTime(c.FirstTime, c.LastTime) {
			sel = append(sel, c)
		}
	}
	covered := int64(-1)
	for i, c := range sel {
		if i > 0 && c.From > covered {
			add(KindCheckpointGap, covered, c.From-1, "no checkpoint covers these offsets")
		}
		covered = max(covered, c.To+1)
		switch pc, ok := byHash[c.Prev]; {
		case c.Prev.IsZero() && c.From > valid[0].From:
			add(KindCheckpointLink, c.From, 0, "checkpoint starts a new chain after checkpoints from offset %d", valid[0].From)
		case c.Prev.IsZero():
			if !c.StartHead.IsZero() {
				add(KindCheckpointLink, c.From, 0, "first checkpoint does not start from the zero head")
			}
		case !ok:
			add(KindCheckpointLink, c.From, 0, "previous checkpoint %s not found (deleted, or outside the integrity topic's retention)", c.Prev.String()[:16])
		case pc.To+1 != c.From:
			add(KindCheckpointGap, pc.To+1, c.From-1, "checkpoint follows one that ends at offset %d", pc.To)
		case pc.ChainHead != c.StartHead:
			add(KindCheckpointLink, c.From, 0, "start head differs from the previous checkpoint's chain head")
		}
		if err := checkRange(ctx, src, c, rep, add); err != nil {
			return err
		}
		rep.Checkpoints++
	}
	return checkTail(ctx, src, opts, p, valid, rep, add)
}

// checkTail counts the records in the time range after the last checkpoint.
func checkTail(ctx context.Context, src Source, opts Options, p int32, valid []*Checkpoint, rep *Report, add func(string, int64, int64, string, ...any)) error {
	from := int64(0)
	if len(valid) > 0 {
		from = valid[len(valid)-1].To + 1
	}
	u := Uncovered{Partition: p, From: -1}
	err := src.Records(ctx, p, from, -1, func(r *kgo.Record) error {
		if !opts.inTime(r.Timestamp, r.Timestamp) {
			return nil
		}
		if u.From < 0 {
			u.From = r.Offset
		}
		u.To = r.Offset
		u.Records++
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify partition %d: %w", p, err)
	}
	if u.Records > 0 {
		rep.Uncovered = append(rep.Uncovered, u)
		if opts.FailUncovered {
			add(KindUncoveredStrict, u.From, u.To, "%d records no checkpoint covers", u.Records)
		}
	}
	return nil
}

// seen is a record as read back: position and digest.
type seen struct {
	off int64
	d   Hash
}

// checkRange recomputes c's chain from the source and, if it does not
// match, names the records that differ.
func checkRange(ctx context.Context, src Source, c *Checkpoint, rep *Report, add func(string, int64, int64, string, ...any)) error {
	var rs []seen
	var dg Digester
	err := src.Records(ctx, c.Partition, c.From, c.To, func(r *kgo.Record) error {
		rs = append(rs, seen{r.Offset, dg.Digest(r)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("verify partition %d offsets %d..%d: %w", c.Partition, c.From, c.To, err)
	}
	rep.Records += int64(len(rs))
	inOrder := int64(len(rs)) == c.Count
	offs, ds := make([]int64, len(rs)), make([]Hash, len(rs))
	for i, r := range rs {
		offs[i], ds[i] = r.off, r.d
		inOrder = inOrder && r.off == c.From+int64(i)
	}
	head := c.Fold(offs, ds)
	if head == c.ChainHead && inOrder {
		return nil
	}
	before := len(rep.Findings)
	if len(c.Digests) > 0 {
		locate(c, rs, add)
	} else {
		locateByOffset(c, rs, add)
	}
	if len(rep.Findings) == before {
		kind := KindChainMismatch
		if len(c.Digests) == 0 {
			kind = KindAltered
		}
		add(kind, c.From, c.To, "a record in this signed range differs (no per-record digests to say which)")
	}
	return nil
}

// locateByOffset reports what offsets alone show: gaps, repeats, disorder.
func locateByOffset(c *Checkpoint, rs []seen, add func(string, int64, int64, string, ...any)) {
	have := map[int64]bool{}
	hi := c.From - 1
	for _, r := range rs {
		switch {
		case have[r.off]:
			add(KindInserted, r.off, 0, "a second record at this offset")
		case r.off < hi:
			add(KindReordered, r.off, 0, "record appears after offset %d", hi)
		}
		have[r.off] = true
		hi = max(hi, r.off)
	}
	reportMissing(c, func(i int64) bool { return have[c.From+i] }, add)
}

// reportMissing adds one finding per run of signed offsets not found.
func reportMissing(c *Checkpoint, found func(i int64) bool, add func(string, int64, int64, string, ...any)) {
	for i := int64(0); i < c.Count; i++ {
		if found(i) {
			continue
		}
		j := i
		for j+1 < c.Count && !found(j+1) {
			j++
		}
		end := c.From + j
		if j == i {
			end = 0
		}
		add(KindMissing, c.From+i, end, "signed record(s) not found")
		i = j
	}
}

// locate matches the records read against the signed digest prefixes:
// each record is assigned the signed position whose digest it has; the
// longest run in signed order is "in place", other matched records are
// reordered, unmatched records replace a missing signed one (altered) or
// are new (inserted), and signed positions nobody matched are missing.
func locate(c *Checkpoint, rs []seen, add func(string, int64, int64, string, ...any)) {
	n := int(c.Count)
	want := make(map[uint32][]int, n)
	for i := range n {
		d := c.digestAt(i)
		want[d] = append(want[d], i)
	}
	used := make([]bool, n)
	pos := make([]int, len(rs)) // signed index of each record read, -1 unknown
	for k, r := range rs {
		pos[k] = -1
		for _, i := range want[prefix(r.d)] {
			if !used[i] {
				pos[k], used[i] = i, true
				break
			}
		}
	}
	keep := increasing(pos)
	// In-place records at other offsets: report runs with one shift.
	for k := 0; k < len(rs); k++ {
		if !keep[k] || rs[k].off == c.From+int64(pos[k]) {
			continue
		}
		delta := rs[k].off - (c.From + int64(pos[k]))
		j := k
		for j+1 < len(rs) && keep[j+1] && rs[j+1].off-(c.From+int64(pos[j+1])) == delta {
			j++
		}
		add(KindShifted, rs[k].off, endOf(rs[k].off, rs[j].off), "records signed at offsets %d..%d are %+d offsets away", c.From+int64(pos[k]), c.From+int64(pos[j]), delta)
		k = j
	}
	// Anchors: the signed index of the nearest in-place record on each side.
	prevA, nextA := make([]int, len(rs)), make([]int, len(rs))
	a := -1
	for k := range rs {
		prevA[k] = a
		if keep[k] {
			a = pos[k]
		}
	}
	a = n
	for k := len(rs) - 1; k >= 0; k-- {
		nextA[k] = a
		if keep[k] {
			a = pos[k]
		}
	}
	for k, r := range rs {
		switch {
		case pos[k] >= 0 && !keep[k]:
			add(KindReordered, r.off, 0, "holds the record signed at offset %d", c.From+int64(pos[k]))
		case pos[k] < 0:
			u := -1
			for i := prevA[k] + 1; i < nextA[k]; i++ {
				if !used[i] {
					u = i
					break
				}
			}
			if u >= 0 {
				used[u] = true
				add(KindAltered, r.off, 0, "differs from the record signed at offset %d", c.From+int64(u))
			} else {
				add(KindInserted, r.off, 0, "record not in the signed range")
			}
		}
	}
	reportMissing(c, func(i int64) bool { return used[i] }, add)
}

func endOf(start, end int64) int64 {
	if end == start {
		return 0
	}
	return end
}

// increasing marks a longest strictly increasing subsequence of the
// non-negative values of pos (patience sorting, O(n log n)).
func increasing(pos []int) []bool {
	var tails []int // index into pos of the smallest tail of each length
	prev := make([]int, len(pos))
	for k, v := range pos {
		prev[k] = -1
		if v < 0 {
			continue
		}
		l := sort.Search(len(tails), func(i int) bool { return pos[tails[i]] >= v })
		if l > 0 {
			prev[k] = tails[l-1]
		}
		if l == len(tails) {
			tails = append(tails, k)
		} else {
			tails[l] = k
		}
	}
	keep := make([]bool, len(pos))
	if len(tails) > 0 {
		for k := tails[len(tails)-1]; k >= 0; k = prev[k] {
			keep[k] = true
		}
	}
	return keep
}
