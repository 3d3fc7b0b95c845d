package integrity_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/internal/integrity"
)

// copySource is a copy of a raw topic and its checkpoints held in memory, so
// a test can tamper with it the ways an admin could tamper with the topics.
type copySource struct {
	parts map[int32][]*kgo.Record
	cks   []integrity.Checkpoint
}

var _ integrity.Source = (*copySource)(nil)

func (s *copySource) Partitions(context.Context) ([]int32, error) {
	var ps []int32
	for p := range s.parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps, nil
}

func (s *copySource) Checkpoints(context.Context) ([]integrity.Checkpoint, []integrity.Finding, error) {
	return slices.Clone(s.cks), nil, nil
}

func (s *copySource) Records(_ context.Context, p int32, from, to int64, fn func(*kgo.Record) error) error {
	for _, r := range s.parts[p] {
		if r.Offset >= from && (to < 0 || r.Offset <= to) {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *copySource) last(_ context.Context, p int32) (*integrity.Checkpoint, error) {
	var best *integrity.Checkpoint
	for i := range s.cks {
		if c := &s.cks[i]; c.Partition == p && (best == nil || c.To > best.To) {
			best = c
		}
	}
	return best, nil
}

// rawRecord builds a record shaped like the collector's.
func rawRecord(p int32, off int64, ts time.Time) *kgo.Record {
	return &kgo.Record{
		Topic: "trailwatch.raw", Partition: p, Offset: off, Timestamp: ts,
		Key:   []byte("/var/log/nginx/access.log"),
		Value: fmt.Appendf(nil, `198.51.100.%d - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/items/%d HTTP/1.1" 200 512`, p, off),
		Headers: []kgo.RecordHeader{
			{Key: "tw.source", Value: []byte("nginx")},
			{Key: "tw.offset", Value: strconv.AppendInt(nil, off*100, 10)},
		},
	}
}

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newSigner(t testing.TB) *integrity.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return integrity.NewSigner(priv)
}

// build writes n records per partition and checkpoints them every 10.
func build(t *testing.T, s *integrity.Signer, parts int32, n int64, digests bool) *copySource {
	t.Helper()
	src := &copySource{parts: map[int32][]*kgo.Record{}}
	for p := range parts {
		for off := range n {
			src.parts[p] = append(src.parts[p], rawRecord(p, off, t0.Add(time.Duration(off)*time.Second)))
		}
	}
	cfg := integrity.DefaultConfig()
	cfg.CheckpointEvery, cfg.CheckpointInterval, cfg.RecordDigests = 10, 24*365*time.Hour, digests
	h, err := integrity.NewCheckpointer(cfg, "trailwatch.raw", "trailwatch.integrity", s, src.last, src.Records, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p := range parts {
		src.cks = append(src.cks, handle(t, h, src.parts[p])...)
	}
	return src
}

func handle(t *testing.T, h *integrity.Checkpointer, recs []*kgo.Record) []integrity.Checkpoint {
	t.Helper()
	out, err := h.Handle(t.Context(), recs)
	if err != nil {
		t.Fatal(err)
	}
	var cks []integrity.Checkpoint
	for _, kr := range out {
		c, err := integrity.DecodeCheckpoint(kr.Value)
		if err != nil {
			t.Fatal(err)
		}
		cks = append(cks, c)
	}
	return cks
}

func keys(ss ...*integrity.Signer) map[string]ed25519.PublicKey {
	m := map[string]ed25519.PublicKey{}
	for _, s := range ss {
		m[s.KeyID()] = s.Public()
	}
	return m
}

// at finds the index of the record at offset off of partition p.
func (s *copySource) at(p int32, off int64) int {
	for i, r := range s.parts[p] {
		if r.Offset == off {
			return i
		}
	}
	panic("no such record")
}

func (s *copySource) ck(p int32, from int64) *integrity.Checkpoint {
	for i := range s.cks {
		if s.cks[i].Partition == p && s.cks[i].From == from {
			return &s.cks[i]
		}
	}
	panic("no such checkpoint")
}

type found struct {
	Kind      string
	Partition int32
	Offset    int64
}

func TestVerifyTampering(t *testing.T) {
	signer := newSigner(t)
	attacker := newSigner(t)
	tests := []struct {
		name    string
		digests bool // integrity.record_digests
		tamper  func(s *copySource)
		want    []found
	}{
		{name: "untouched", digests: true, tamper: func(*copySource) {}},
		{name: "altered value", digests: true, tamper: func(s *copySource) {
			r := *s.parts[0][s.at(0, 3)]
			r.Value = bytes.Replace(r.Value, []byte("GET"), []byte("PUT"), 1)
			s.parts[0][s.at(0, 3)] = &r
		}, want: []found{{integrity.KindAltered, 0, 3}}},
		{name: "altered header", digests: true, tamper: func(s *copySource) {
			r := *s.parts[1][s.at(1, 14)]
			r.Headers = []kgo.RecordHeader{{Key: "tw.source", Value: []byte("envoy")}, r.Headers[1]}
			s.parts[1][s.at(1, 14)] = &r
		}, want: []found{{integrity.KindAltered, 1, 14}}},
		{name: "altered timestamp", digests: true, tamper: func(s *copySource) {
			r := *s.parts[0][s.at(0, 21)]
			r.Timestamp = r.Timestamp.Add(-time.Hour)
			s.parts[0][s.at(0, 21)] = &r
		}, want: []found{{integrity.KindAltered, 0, 21}}},
		{name: "missing record", digests: true, tamper: func(s *copySource) {
			s.parts[1] = slices.Delete(s.parts[1], s.at(1, 12), s.at(1, 12)+1)
		}, want: []found{{integrity.KindMissing, 1, 12}}},
		{name: "reordered records", digests: true, tamper: func(s *copySource) {
			i := s.at(0, 4)
			s.parts[0][i], s.parts[0][i+1] = s.parts[0][i+1], s.parts[0][i]
		}, want: []found{{integrity.KindReordered, 0, 5}}},
		{name: "inserted record", digests: true, tamper: func(s *copySource) {
			i := s.at(0, 7)
			fake := rawRecord(0, 7, t0)
			fake.Value = []byte("203.0.113.9 - - GET /admin 200")
			s.parts[0] = slices.Insert(s.parts[0], i+1, fake)
		}, want: []found{{integrity.KindInserted, 0, 7}}},
		{name: "forged checkpoint signature", digests: true, tamper: func(s *copySource) {
			c := s.ck(1, 10)
			c.ChainHead[0] ^= 1
		}, want: []found{{integrity.KindBadSignature, 1, 10}, {integrity.KindCheckpointGap, 1, 10}, {integrity.KindCheckpointLink, 1, 20}}},
		{name: "checkpoint re-signed with another key", digests: true, tamper: func(s *copySource) {
			s.ck(0, 0).Sign(attacker)
		}, want: []found{{integrity.KindBadSignature, 0, 0}, {integrity.KindCheckpointLink, 0, 10}}},
		{name: "missing checkpoint", digests: true, tamper: func(s *copySource) {
			c := s.ck(0, 10)
			s.cks = slices.DeleteFunc(s.cks, func(x integrity.Checkpoint) bool { return x.Partition == c.Partition && x.From == c.From })
		}, want: []found{{integrity.KindCheckpointGap, 0, 10}, {integrity.KindCheckpointLink, 0, 20}}},
		{name: "altered value without record digests", digests: false, tamper: func(s *copySource) {
			r := *s.parts[0][s.at(0, 3)]
			r.Value = append([]byte{}, "x"...)
			s.parts[0][s.at(0, 3)] = &r
		}, want: []found{{integrity.KindAltered, 0, 0}}},
		{name: "missing record without record digests", digests: false, tamper: func(s *copySource) {
			s.parts[1] = slices.Delete(s.parts[1], s.at(1, 12), s.at(1, 12)+1)
		}, want: []found{{integrity.KindMissing, 1, 12}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := build(t, signer, 2, 35, tt.digests)
			tt.tamper(src)
			rep, err := integrity.Verify(t.Context(), src, integrity.Options{Keys: keys(signer)})
			if err != nil {
				t.Fatal(err)
			}
			var got []found
			for _, f := range rep.Findings {
				got = append(got, found{f.Kind, f.Partition, f.Offset})
			}
			if !slices.Equal(got, tt.want) {
				var buf bytes.Buffer
				rep.WriteText(&buf)
				t.Fatalf("findings = %v, want %v\n%s", got, tt.want, buf.String())
			}
			if rep.OK() != (len(tt.want) == 0) {
				t.Errorf("OK() = %v with %d findings", rep.OK(), len(rep.Findings))
			}
			// 35 records a partition, checkpoints every 10: 30..34 wait
			// for the next checkpoint on both partitions.
			if len(rep.Uncovered) == 0 && tt.name == "untouched" {
				t.Errorf("uncovered tail not reported")
			}
		})
	}
}

func TestVerifyUntouchedCounts(t *testing.T) {
	signer := newSigner(t)
	src := build(t, signer, 2, 35, true)
	rep, err := integrity.Verify(t.Context(), src, integrity.Options{Keys: keys(signer)})
	if err != nil {
		t.Fatal(err)
	}
	want := []integrity.Uncovered{{Partition: 0, From: 30, To: 34, Records: 5}, {Partition: 1, From: 30, To: 34, Records: 5}}
	if rep.Checkpoints != 6 || rep.Records != 60 || !slices.Equal(rep.Uncovered, want) {
		t.Fatalf("checkpoints %d records %d uncovered %+v; want 6, 60, %+v", rep.Checkpoints, rep.Records, rep.Uncovered, want)
	}
	strict, err := integrity.Verify(t.Context(), src, integrity.Options{Keys: keys(signer), FailUncovered: true})
	if err != nil {
		t.Fatal(err)
	}
	if strict.OK() || strict.Findings[0].Kind != integrity.KindUncoveredStrict {
		t.Fatalf("FailUncovered: findings %+v", strict.Findings)
	}
}

func TestVerifyTimeRange(t *testing.T) {
	signer := newSigner(t)
	src := build(t, signer, 1, 35, true)
	// Tampering before the range is not looked at; records 20..29 are.
	r := *src.parts[0][2]
	r.Value = []byte("changed")
	src.parts[0][2] = &r
	tests := []struct {
		name     string
		from, to time.Time
		wantCks  int
		wantOK   bool
	}{
		{name: "whole history", wantCks: 3, wantOK: false},
		{name: "from offset 20 on", from: t0.Add(20 * time.Second), wantCks: 1, wantOK: true},
		{name: "up to offset 9", to: t0.Add(9 * time.Second), wantCks: 1, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := integrity.Verify(t.Context(), src, integrity.Options{From: tt.from, To: tt.to, Keys: keys(signer)})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Checkpoints != tt.wantCks || rep.OK() != tt.wantOK {
				t.Fatalf("checkpoints %d ok %v; want %d %v (%+v)", rep.Checkpoints, rep.OK(), tt.wantCks, tt.wantOK, rep.Findings)
			}
		})
	}
}

// TestVerifyFormat1 checks that checkpoints written before format 2, which
// linked every record (Link), still verify, and that tampering with the
// records they cover is still found.
func TestVerifyFormat1(t *testing.T) {
	signer := newSigner(t)
	src := &copySource{parts: map[int32][]*kgo.Record{}}
	for off := range int64(20) {
		src.parts[0] = append(src.parts[0], rawRecord(0, off, t0.Add(time.Duration(off)*time.Second)))
	}
	var prev integrity.Hash
	var head integrity.Hash
	for _, rng := range [][2]int64{{0, 9}, {10, 19}} {
		c := integrity.Checkpoint{V: 1, Topic: "trailwatch.raw", From: rng[0], To: rng[1], Count: rng[1] - rng[0] + 1,
			StartHead: head, Prev: prev, FirstTime: t0.Add(time.Duration(rng[0]) * time.Second), LastTime: t0.Add(time.Duration(rng[1]) * time.Second)}
		for _, r := range src.parts[0][rng[0] : rng[1]+1] {
			d := integrity.RecordDigest(r)
			head = integrity.Link(head, r.Offset, d)
			c.Digests = append(c.Digests, d[:4]...)
		}
		c.ChainHead = head
		c.Sign(signer)
		prev = c.Hash()
		src.cks = append(src.cks, c)
	}
	rep, err := integrity.Verify(t.Context(), src, integrity.Options{Keys: keys(signer)})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Records != 20 {
		t.Fatalf("format 1 history: records %d, findings %+v", rep.Records, rep.Findings)
	}
	src.parts[0][13].Value = []byte("198.51.100.0 - - rewritten")
	rep, err = integrity.Verify(t.Context(), src, integrity.Options{Keys: keys(signer)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != integrity.KindAltered || rep.Findings[0].Offset != 13 {
		t.Fatalf("altered record under a format 1 checkpoint: %+v", rep.Findings)
	}
}
