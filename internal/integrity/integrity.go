// Package integrity makes the raw topic tamper-evident. Every record of
// trailwatch.raw is folded into a hash chain per partition; a dedicated
// stage (Checkpointer) signs the chain head every so many records with an
// ed25519 key and writes the signed checkpoint to trailwatch.integrity (and
// optionally to a file kept elsewhere). Verify recomputes the chain from the
// records and reports every altered, missing, reordered or inserted record
// and every gap between checkpoints, with partition and offset.
//
// Definitions (docs/integrity.md has the threat model):
//
//	digest(r) = SHA-256("tw-rec-v1" ‖ ts_ms ‖ key ‖ value ‖ n_headers ‖ (hkey ‖ hvalue)…)
//	            every variable field length-prefixed, a null key distinct from an empty one
//	head(c)   = SHA-256("tw-seg-v2" ‖ head(c-1) ‖ (offset ‖ digest)… of c's records)
//	            (checkpoint format 2), 64-bit big-endian offsets
//
// The chain of a partition starts from 32 zero bytes at the first offset the
// stage ever saw; each checkpoint's head extends the previous one's by every
// record of its range, in offset order, so the chain covers every record
// while hashing only 40 bytes per record on top of its digest (format 1
// linked each record with SHA-256(h(n-1) ‖ offset ‖ digest), two SHA-256
// blocks per record; verify still checks format 1 checkpoints). Checkpoints
// carry the head before their first record (StartHead) so each can be
// checked on its own, and the hash of the previous checkpoint so a deleted
// checkpoint is noticed.
//
// It deliberately does not prove what the collector read matches what the
// gateway wrote, nor that records were produced at all: it proves that what
// was in the raw topic when the stage read it is still there, unchanged.
// Delivery: the stage is at-least-once like every stage; a replayed batch
// re-derives byte-identical checkpoints (ed25519 signatures are
// deterministic and no wall-clock time is signed), so duplicates are exact.
package integrity

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Hash is a SHA-256 value: a record digest, a chain head or a checkpoint
// hash. It marshals as lowercase hex.
type Hash [sha256.Size]byte

// String returns the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports the all-zero hash (the start of a chain, "no previous").
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h[:]), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(h) {
		return fmt.Errorf("hash: want %d hex digits, got %d", 2*len(h), len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// recordDomain separates record digests from any other SHA-256 use.
const recordDomain = "tw-rec-v1"

// Digester computes record digests reusing one buffer; the zero value is
// ready. It is not safe for concurrent use.
type Digester struct {
	buf []byte
}

// Digest returns the digest of r: its timestamp (milliseconds, what Kafka
// stores), key, value and headers in order. Topic, partition and offset are
// not part of it; the chain and the checkpoints bind the position.
func (d *Digester) Digest(r *kgo.Record) Hash {
	b := append(d.buf[:0], recordDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp.UnixMilli()))
	b = appendBytes(b, r.Key, r.Key == nil)
	b = appendBytes(b, r.Value, r.Value == nil)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Headers)))
	for _, h := range r.Headers {
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Key)))
		b = append(b, h.Key...)
		b = appendBytes(b, h.Value, false)
	}
	d.buf = b
	return sha256.Sum256(b)
}

// appendBytes appends v length-prefixed; null is the length 0xFFFFFFFF, as
// Kafka distinguishes a null key from an empty one.
func appendBytes(b, v []byte, null bool) []byte {
	if null {
		return binary.BigEndian.AppendUint32(b, ^uint32(0))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// RecordDigest returns the digest of r (see Digester.Digest).
func RecordDigest(r *kgo.Record) Hash {
	var d Digester
	return d.Digest(r)
}

// Segment folds the records of one checkpoint range into the chain head
// after it (format 2); the zero value must be Reset before use.
type Segment struct {
	h   hash.Hash
	buf []byte
}

// segmentDomain starts every format 2 segment.
const segmentDomain = "tw-seg-v2"

// segmentFlush is how many bytes of (offset ‖ digest) entries a Segment
// gathers before handing them to SHA-256: one call per ~100 records.
const segmentFlush = 4096

// Reset starts a segment extending the chain whose head is start.
func (s *Segment) Reset(start Hash) {
	if s.h == nil {
		s.h = sha256.New()
		s.buf = make([]byte, 0, segmentFlush+8+sha256.Size)
	}
	s.h.Reset()
	s.buf = append(append(s.buf[:0], segmentDomain...), start[:]...)
}

// Add folds in the record at offset with digest d.
func (s *Segment) Add(offset int64, d Hash) {
	s.buf = binary.BigEndian.AppendUint64(s.buf, uint64(offset))
	s.buf = append(s.buf, d[:]...)
	if len(s.buf) >= segmentFlush {
		s.h.Write(s.buf)
		s.buf = s.buf[:0]
	}
}

// Head returns the chain head after the records added so far.
func (s *Segment) Head() Hash {
	s.h.Write(s.buf)
	s.buf = s.buf[:0]
	var out Hash
	s.h.Sum(out[:0])
	return out
}

// Link extends a format 1 chain whose head is prev by the record at offset
// with digest d and returns the new head.
func Link(prev Hash, offset int64, d Hash) Hash {
	var b [2*sha256.Size + 8]byte
	copy(b[:], prev[:])
	binary.BigEndian.PutUint64(b[sha256.Size:], uint64(offset))
	copy(b[sha256.Size+8:], d[:])
	return sha256.Sum256(b[:])
}

// prefixLen is how many bytes of each record digest a checkpoint lists: enough
// to say which record differs (a 2^-32 chance per record of missing the
// location, never the detection: the chain head is the full hash).
const prefixLen = 4

func prefix(d Hash) uint32 { return binary.BigEndian.Uint32(d[:prefixLen]) }
