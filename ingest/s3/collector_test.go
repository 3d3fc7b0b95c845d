package s3

import (
	"strings"
	"testing"
	"time"
)

const albPrefix = "AWSLogs/123456789012/elasticloadbalancing/us-east-1/2025/10/10/"

func albKey(lb, stamp string) string {
	return albPrefix + "123456789012_elasticloadbalancing_us-east-1_app." + lb + ".50dc6c495c0c9188_" + stamp + "_10.0.0.1_2xz3.log.gz"
}

func TestLines(t *testing.T) {
	env := testS3(t)
	cl := testClient(t, env)
	tests := []struct {
		name   string
		data   func(t *testing.T, lines string) []byte
		suffix string
	}{
		{name: "gzip", data: func(t *testing.T, s string) []byte { return gz(t, s) }, suffix: ".log.gz"},
		{name: "plain", data: func(_ *testing.T, s string) []byte { return []byte(s) }, suffix: ".log"},
		{name: "gzip without .gz suffix", data: func(t *testing.T, s string) []byte { return gz(t, s) }, suffix: ".log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := newBucket(t, cl)
			first := strings.Join(albLines(0, 3), "\n") + "\n"
			// CRLF endings, an empty line and no final newline.
			second := albLine(3) + "\r\n\r\n" + albLine(4)
			k1 := albPrefix + "a_20251010T1355Z" + tt.suffix
			k2 := albPrefix + "a_20251010T1400Z" + tt.suffix
			e1 := put(t, cl, bucket, k1, tt.data(t, first))
			e2 := put(t, cl, bucket, k2, tt.data(t, second))

			cfg := testConfig(env, bucket, t.TempDir())
			cfg.Prefix = albPrefix
			s := &sink{}
			c, stop := start(t, cfg, s)
			waitFor(t, "5 records", func() bool { return len(s.records()) >= 5 })
			idle(t, c)
			stop()

			equalLines(t, s.lines(), albLines(0, 5)...)
			recs := s.records()
			wantOff := []int64{0, int64(len(albLine(0)) + 1), int64(len(albLine(0)) + len(albLine(1)) + 2), 0, int64(len(albLine(3)) + 4)}
			for i, r := range recs {
				key, etag := k1, e1
				if i >= 3 {
					key, etag = k2, e2
				}
				if r.Origin != "s3://"+bucket+"/"+key || r.Stream != r.Origin+"@"+etag {
					t.Errorf("record %d: origin %q stream %q", i, r.Origin, r.Stream)
				}
				if r.Offset != wantOff[i] {
					t.Errorf("record %d: offset %d, want %d", i, r.Offset, wantOff[i])
				}
				if r.Source != "alb" || r.Collector != "s3" || r.Host != "testhost" || r.Truncated || r.Observed.IsZero() {
					t.Errorf("record %d: provenance %+v", i, r)
				}
			}
			if st := c.Stats(); st.Objects != 2 || st.Records != 5 || st.FailedObjects != 0 {
				t.Errorf("stats %+v", st)
			}
			cp := readCP(t, cfg)
			if cp.Cursor != k2 || len(cp.Done) != 0 || cp.InFlight != nil {
				t.Errorf("checkpoint cursor %q done %v in flight %+v, want cursor %q", cp.Cursor, cp.Done, cp.InFlight, k2)
			}
		})
	}
}

func TestObjectMode(t *testing.T) {
	env := testS3(t)
	cl := testClient(t, env)
	bucket := newBucket(t, cl)
	const trail = `{"Records":[{"eventVersion":"1.08","eventTime":"2025-10-10T13:55:36Z","eventSource":"s3.amazonaws.com","eventName":"GetObject"},` +
		"\n" + `{"eventVersion":"1.08","eventTime":"2025-10-10T13:55:37Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser"}]}`
	key := "AWSLogs/123456789012/CloudTrail/us-east-1/2025/10/10/123456789012_CloudTrail_us-east-1_20251010T1355Z_abc.json.gz"
	etag := put(t, cl, bucket, key, gz(t, trail))

	cfg := testConfig(env, bucket, t.TempDir())
	cfg.Mode = ModeObject
	cfg.Source = "cloudtrail"
	s := &sink{}
	c, stop := start(t, cfg, s)
	waitFor(t, "1 record", func() bool { return len(s.records()) >= 1 })
	idle(t, c)
	stop()
	recs := s.records()
	if len(recs) != 1 {
		t.Fatalf("got %d records, want 1", len(recs))
	}
	r := recs[0]
	if string(r.Data) != trail || r.Offset != 0 || r.Stream != "s3://"+bucket+"/"+key+"@"+etag || r.Source != "cloudtrail" {
		t.Errorf("record = %+v (data %q)", r, r.Data)
	}
}

func TestRestartNoDuplicates(t *testing.T) {
	env := testS3(t)
	cl := testClient(t, env)
	for _, settle := range []time.Duration{0, 24 * time.Hour} {
		t.Run("settle "+settle.String(), func(t *testing.T) {
			bucket := newBucket(t, cl)
			put(t, cl, bucket, albKey("b", "20251010T1355Z"), gz(t, strings.Join(albLines(0, 3), "\n")+"\n"))
			cfg := testConfig(env, bucket, t.TempDir())
			cfg.Settle = settle

			s1 := &sink{}
			c1, stop1 := start(t, cfg, s1)
			waitFor(t, "3 records", func() bool { return len(s1.records()) >= 3 })
			idle(t, c1)
			stop1()
			equalLines(t, s1.lines(), albLines(0, 3)...)

			// A later object; and, with settle, one whose key sorts before
			// the one already read (another load balancer).
			put(t, cl, bucket, albKey("b", "20251010T1400Z"), gz(t, albLine(3)+"\n"))
			want := albLines(3, 4)
			if settle > 0 {
				put(t, cl, bucket, albKey("a", "20251010T1400Z"), gz(t, albLine(4)+"\n"))
				want = []string{albLine(4), albLine(3)}
			}
			s2 := &sink{}
			c2, stop2 := start(t, cfg, s2)
			waitFor(t, "new records", func() bool { return len(s2.records()) >= len(want) })
			idle(t, c2)

			// Picked up while running too.
			put(t, cl, bucket, albKey("b", "20251010T1405Z"), gz(t, albLine(5)+"\n"))
			want = append(want, albLine(5))
			waitFor(t, "the object put while running", func() bool { return len(s2.records()) >= len(want) })
			idle(t, c2)
			stop2()
			equalLines(t, s2.lines(), want...)

			cp := readCP(t, cfg)
			if settle > 0 && (cp.Cursor != "" || len(cp.Done) != 4) {
				t.Errorf("settle %s: cursor %q, done %v; want no cursor, 4 done", settle, cp.Cursor, cp.Done)
			}
			if settle == 0 && (cp.Cursor != albKey("b", "20251010T1405Z") || len(cp.Done) != 0) {
				t.Errorf("cursor %q, done %v", cp.Cursor, cp.Done)
			}
		})
	}
}

func TestEmitFailureHoldsCheckpoint(t *testing.T) {
	env := testS3(t)
	cl := testClient(t, env)
	bucket := newBucket(t, cl)
	put(t, cl, bucket, albKey("a", "20251010T1355Z"), gz(t, strings.Join(albLines(0, 10), "\n")+"\n"))
	cfg := testConfig(env, bucket, t.TempDir())
	cfg.BatchLines = 3

	t.Run("every emit fails", func(t *testing.T) {
		s := &sink{failFrom: 1}
		c, stop := start(t, cfg, s)
		waitFor(t, "a retried emit", func() bool { return c.Stats().EmitErrors >= 2 })
		stop()
		if cp := readCP(t, cfg); cp.Cursor != "" || len(cp.Done) != 0 || cp.InFlight != nil {
			t.Fatalf("checkpoint moved without an acknowledged emit: %+v", cp)
		}
	})
	t.Run("fails after two batches, resumes mid-object", func(t *testing.T) {
		s := &sink{failFrom: 3}
		c, stop := start(t, cfg, s)
		waitFor(t, "a failed third batch", func() bool { return c.Stats().EmitErrors >= 1 })
		stop()
		equalLines(t, s.lines(), albLines(0, 6)...)
		cp := readCP(t, cfg)
		var off int64
		for _, l := range albLines(0, 6) {
			off += int64(len(l)) + 1
		}
		if cp.Cursor != "" || cp.InFlight == nil || cp.InFlight.Offset != off {
			t.Fatalf("checkpoint %+v, want in flight at offset %d", cp, off)
		}

		s2 := &sink{}
		c2, stop2 := start(t, cfg, s2)
		waitFor(t, "the rest", func() bool { return len(s2.records()) >= 4 })
		idle(t, c2)
		stop2()
		equalLines(t, s2.lines(), albLines(6, 10)...)
		if r := s2.records()[0]; r.Offset != off {
			t.Errorf("first resumed offset %d, want %d", r.Offset, off)
		}
		if cp := readCP(t, cfg); cp.InFlight != nil || cp.Cursor != albKey("a", "20251010T1355Z") {
			t.Errorf("checkpoint after resume %+v", cp)
		}
	})
}

func TestBadObjects(t *testing.T) {
	env := testS3(t)
	cl := testClient(t, env)
	bomb := gz(t, albLine(0)+"\n"+strings.Repeat("x", 1<<20)+"\n"+albLine(1)+"\n")
	corruptTail := gz(t, strings.Join(albLines(0, 200), "\n")+"\n")
	corruptTail = corruptTail[:len(corruptTail)-20] // cut: every byte of the object still arrives
	tests := []struct {
		name      string
		mode      string
		maxBytes  int64
		data      []byte
		want      []string // records from the bad object
		reason    string
		truncated int
	}{
		{name: "garbage after gzip magic", mode: ModeLines, data: append([]byte{0x1f, 0x8b}, []byte("not gzip at all, really not")...), reason: "corrupt gzip"},
		{name: "truncated gzip", mode: ModeLines, data: corruptTail, reason: "corrupt gzip", want: nil},
		{name: "gzip bomb over the bound", mode: ModeLines, maxBytes: 64 << 10, data: bomb, want: albLines(0, 1), reason: "over max_object_bytes", truncated: 0},
		{name: "object over the bound", mode: ModeObject, maxBytes: 1024, data: []byte(strings.Repeat("y", 200<<10)), reason: "over max_object_bytes"},
		{name: "inflates over the bound", mode: ModeObject, maxBytes: 64 << 10, data: bomb, reason: "over max_object_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := newBucket(t, cl)
			badKey := albKey("a", "20251010T1355Z")
			badETag := put(t, cl, bucket, badKey, tt.data)
			put(t, cl, bucket, albKey("b", "20251010T1355Z"), gz(t, "after the bad one\n"))
			cfg := testConfig(env, bucket, t.TempDir())
			cfg.Mode = tt.mode
			cfg.MaxObjectBytes = tt.maxBytes
			s := &sink{}
			c, stop := start(t, cfg, s)
			waitFor(t, "the good object", func() bool { return c.Stats().Objects >= 1 })
			idle(t, c)
			stop()

			var got []string
			for _, r := range s.records() {
				if strings.HasSuffix(r.Origin, badKey) {
					got = append(got, string(r.Data))
				}
			}
			if tt.name != "truncated gzip" { // how much of a cut stream inflates is gzip's business
				equalLines(t, got, tt.want...)
			}
			st := c.Stats()
			if st.FailedObjects != 1 || st.Objects != 1 {
				t.Errorf("stats %+v, want 1 failed and 1 read object", st)
			}
			cp := readCP(t, cfg)
			if len(cp.Failed) != 1 || cp.Failed[0].Key != badKey || cp.Failed[0].ETag != badETag || !strings.Contains(cp.Failed[0].Reason, tt.reason) {
				t.Fatalf("failed %+v, want %s with reason containing %q", cp.Failed, badKey, tt.reason)
			}
			if cp.Cursor != albKey("b", "20251010T1355Z") {
				t.Errorf("cursor %q: a bad object must not hold the cursor", cp.Cursor)
			}
		})
	}
}

func TestLongLines(t *testing.T) {
	env := testS3(t)
	cl := testClient(t, env)
	bucket := newBucket(t, cl)
	long := strings.Repeat("z", 100)
	put(t, cl, bucket, "k.log", []byte("short\n"+long+"\r\n"+strings.Repeat("w", 16)+"\r\nend"))
	cfg := testConfig(env, bucket, t.TempDir())
	cfg.MaxLineBytes = 16
	s := &sink{}
	c, stop := start(t, cfg, s)
	waitFor(t, "4 records", func() bool { return len(s.records()) >= 4 })
	idle(t, c)
	stop()
	equalLines(t, s.lines(), "short", long[:16], strings.Repeat("w", 16), "end")
	for i, r := range s.records() {
		if r.Truncated != (i == 1) {
			t.Errorf("record %d truncated=%v", i, r.Truncated)
		}
	}
	if got := c.Stats().TruncatedLines; got != 1 {
		t.Errorf("TruncatedLines = %d, want 1", got)
	}
}

func TestCheckpointForAnotherBucket(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(s3Env{endpoint: "http://127.0.0.1:1", access: "a", secret: "b"}, "one", dir)
	cp := checkpoint{Version: checkpointVersion, Bucket: "other", Cursor: "x"}
	if err := saveCheckpoint(cfg.CheckpointFile, &cp); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(t.Context(), (&sink{}).emit)
	if err == nil || !strings.Contains(err.Error(), "s3://other/") {
		t.Fatalf("Run = %v, want a checkpoint mismatch error", err)
	}
}
