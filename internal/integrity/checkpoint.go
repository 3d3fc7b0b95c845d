package integrity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Version is the checkpoint format version this package writes: 2 chains
// each range as one segment (Segment). Verify also reads format 1, which
// linked every record (Link).
const Version = 2

// Checkpoint is a signed statement: the records of Topic partition Partition
// at offsets From..To (Count of them) chain from StartHead to ChainHead.
// Nothing in it depends on the wall clock, so a replayed batch re-derives the
// same bytes.
type Checkpoint struct {
	V         int    `json:"v"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from_offset"`
	To        int64  `json:"to_offset"`
	Count     int64  `json:"count"`
	// StartHead is the chain head before From (zero at a chain's start).
	StartHead Hash `json:"start_head"`
	// ChainHead is the chain head after To.
	ChainHead Hash `json:"chain_head"`
	// Prev is the Hash of the partition's previous checkpoint (zero for
	// the first).
	Prev Hash `json:"prev_checkpoint"`
	// FirstTime and LastTime are the timestamps of the records at From
	// and To: what `verify --from/--to` select on.
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`
	// Digests lists the first 4 bytes of each record's digest in offset
	// order, so a verifier can say which record changed; empty when
	// integrity.record_digests is off.
	Digests []byte `json:"digests,omitempty"`
	// KeyID names the signing key: hex of the first 8 bytes of SHA-256 of
	// the public key.
	KeyID string `json:"key_id"`
	// Sig is the ed25519 signature of SignedBytes.
	Sig []byte `json:"sig"`
}

// checkpointDomain separates checkpoint signatures from any other use of the key.
const checkpointDomain = "tw-checkpoint-v1"

// SignedBytes is the canonical encoding the signature covers: every field
// but Sig, fixed order, variable fields length-prefixed.
func (c *Checkpoint) SignedBytes() []byte {
	b := make([]byte, 0, 256)
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint32(b, uint32(c.V))
	b = appendBytes(b, []byte(c.Topic), false)
	b = binary.BigEndian.AppendUint32(b, uint32(c.Partition))
	b = binary.BigEndian.AppendUint64(b, uint64(c.From))
	b = binary.BigEndian.AppendUint64(b, uint64(c.To))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Count))
	b = append(b, c.StartHead[:]...)
	b = append(b, c.ChainHead[:]...)
	b = append(b, c.Prev[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.FirstTime.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.LastTime.UnixMilli()))
	b = appendBytes(b, c.Digests, false)
	b = appendBytes(b, []byte(c.KeyID), false)
	return b
}

// Fold recomputes the chain head after the records at offsets with digests
// ds, from StartHead, as the checkpoint's format defines it.
func (c *Checkpoint) Fold(offsets []int64, ds []Hash) Hash {
	if c.V == 1 {
		head := c.StartHead
		for i, d := range ds {
			head = Link(head, offsets[i], d)
		}
		return head
	}
	var s Segment
	s.Reset(c.StartHead)
	for i, d := range ds {
		s.Add(offsets[i], d)
	}
	return s.Head()
}

// Hash identifies the checkpoint; the next checkpoint's Prev points at it.
func (c *Checkpoint) Hash() Hash { return sha256.Sum256(c.SignedBytes()) }

// Sign sets KeyID and Sig with s.
func (c *Checkpoint) Sign(s *Signer) {
	c.KeyID = s.KeyID()
	c.Sig = ed25519.Sign(s.key, c.SignedBytes())
}

// ErrBadSignature is returned by CheckSignature when the signature does not
// verify or the key is unknown: the checkpoint must not be trusted.
var ErrBadSignature = errors.New("bad signature")

// CheckSignature verifies the signature with the key keys holds under
// the checkpoint's KeyID.
func (c *Checkpoint) CheckSignature(keys map[string]ed25519.PublicKey) error {
	pub, ok := keys[c.KeyID]
	if !ok {
		return fmt.Errorf("%w: unknown key id %q", ErrBadSignature, c.KeyID)
	}
	if len(c.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, c.SignedBytes(), c.Sig) {
		return ErrBadSignature
	}
	return nil
}

// wellFormed checks what the signature cannot: the fields agree.
func (c *Checkpoint) wellFormed() error {
	switch {
	case c.V != 1 && c.V != Version:
		return fmt.Errorf("version %d, want 1 or %d", c.V, Version)
	case c.From < 0 || c.To < c.From:
		return fmt.Errorf("offsets %d..%d", c.From, c.To)
	case c.Count != c.To-c.From+1:
		return fmt.Errorf("count %d for offsets %d..%d", c.Count, c.From, c.To)
	case len(c.Digests) != 0 && int64(len(c.Digests)) != c.Count*prefixLen:
		return fmt.Errorf("%d digest bytes for %d records", len(c.Digests), c.Count)
	}
	return nil
}

// digestAt returns the digest prefix of the record at index i of the range.
func (c *Checkpoint) digestAt(i int) uint32 {
	return binary.BigEndian.Uint32(c.Digests[i*prefixLen:])
}

// Record encodes the checkpoint for the integrity topic, keyed by partition
// so one partition's checkpoints stay in order.
func (c *Checkpoint) Record(topic string) (*kgo.Record, error) {
	v, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: topic, Key: strconv.AppendInt(nil, int64(c.Partition), 10), Value: v, Timestamp: c.LastTime}, nil
}

// DecodeCheckpoint parses a checkpoint written by Record or by the file sink.
func DecodeCheckpoint(b []byte) (Checkpoint, error) {
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("checkpoint: %w", err)
	}
	return c, nil
}
