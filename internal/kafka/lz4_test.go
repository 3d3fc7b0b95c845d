package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trailwatch/trailwatch/ingest"
	"github.com/trailwatch/trailwatch/normalize"
	"github.com/trailwatch/trailwatch/normalize/schema"
)

var (
	_ kgo.Compressor   = (*lz4Compressor)(nil)
	_ kgo.Decompressor = (*lz4Decompressor)(nil)
)

// lz4TestEvents returns n ECS event documents, as the normalize stage
// writes them to trailwatch.events, concatenated: the records of a batch.
// The nginx lines behind them vary in client, user, path, status, size,
// referrer and user agent, from a fixed seed.
func lz4TestEvents(tb testing.TB, n int, seed uint64) []byte {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	users := []string{"-", "-", "-", "alice", "bob", "svc-billing", "carol.smith@example.com"}
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH"}
	paths := []string{"/api/v1/orders/%d", "/api/v1/users/%d/profile", "/search?q=item%d&page=2", "/admin/reports/%d", "/static/app.%d.js", "/api/v2/carts/%d/items"}
	statuses := []int{200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 500, 503}
	referers := []string{"-", "https://shop.example.com/cart", "https://www.example.org/", "https://app.example.com/dashboard?tab=orders"}
	agents := []string{
		"curl/8.5.0",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"python-requests/2.32.3",
		"okhttp/4.12.0",
	}
	nx := normalize.NewNginx()
	base := time.Date(2025, 10, 10, 13, 55, 36, 0, time.UTC)
	var (
		out    []byte
		evs    []schema.Event
		offset int64
	)
	for i := range n {
		line := fmt.Sprintf(`%d.%d.%d.%d - %s [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"`,
			[]int{10, 172, 192, 203}[r.IntN(4)], r.IntN(256), r.IntN(256), r.IntN(256),
			users[r.IntN(len(users))],
			base.Add(time.Duration(i)*137*time.Millisecond).Format("02/Jan/2006:15:04:05 -0700"),
			methods[r.IntN(len(methods))], fmt.Sprintf(paths[r.IntN(len(paths))], r.IntN(100000)),
			statuses[r.IntN(len(statuses))], r.IntN(50000),
			referers[r.IntN(len(referers))], agents[r.IntN(len(agents))])
		rec := ingest.Record{Data: []byte(line), Source: "nginx", Collector: "file", Host: "web-1", Origin: "/var/log/nginx/access.log", Stream: "1:2:3", Offset: offset}
		offset += int64(len(line)) + 1
		var err error
		if evs, err = nx.Normalize(evs[:0], &rec); err != nil || len(evs) != 1 {
			tb.Fatalf("normalize %q: %d events, %v", line, len(evs), err)
		}
		out = normalize.AppendEvent(out, &evs[0])
	}
	return out
}

// lz4Compress compresses src with LZ4Compressor into a fresh buffer.
func lz4Compress(tb testing.TB, src []byte) []byte {
	tb.Helper()
	out, codec := LZ4Compressor().Compress(new(bytes.Buffer), src)
	if codec != kgo.CodecLz4 {
		tb.Fatalf("codec %d, want lz4", codec)
	}
	return out
}

// pierrecDecode decodes src with pierrec's frame Reader, the reference.
func pierrecDecode(src []byte) ([]byte, error) {
	return io.ReadAll(lz4.NewReader(bytes.NewReader(src)))
}

// pierrecEncode writes src with pierrec's frame Writer and opts.
func pierrecEncode(tb testing.TB, src []byte, opts ...lz4.Option) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(src); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// lz4Blocks lists the block size fields of a frame LZ4Compressor wrote.
func lz4Blocks(t *testing.T, frame []byte) []uint32 {
	t.Helper()
	var sizes []uint32
	for body := frame[lz4HeaderLen:]; ; {
		size := binary.LittleEndian.Uint32(body)
		if size == 0 {
			if len(body) != 4 {
				t.Fatalf("%d bytes after the EndMark", len(body)-4)
			}
			return sizes
		}
		sizes = append(sizes, size)
		body = body[4+size&^lz4Uncompressed:]
	}
}

func TestLZ4RoundTrip(t *testing.T) {
	events := lz4TestEvents(t, 300, 1)
	big := bytes.Repeat(events, (5<<20)/len(events)+1)
	mixed := append(append(randomBytes(lz4BlockMax, 3), events...), randomBytes(1000, 4)...)
	for _, tc := range []struct {
		name      string
		src       []byte
		blocks    int
		rawBlocks int
	}{
		{"empty", nil, 0, 0},
		{"one byte", []byte("x"), 1, 1},
		{"small JSON", events[:700], 1, 0},
		{"300 events", events, 1, 0},
		{"64 KB", big[:64<<10], 1, 0},
		{"multi-block", big, 2, 0},
		{"exactly one block", big[:lz4BlockMax], 1, 0},
		{"incompressible", randomBytes(100<<10, 5), 1, 1},
		{"incompressible multi-block", randomBytes(lz4BlockMax+1, 6), 2, 2},
		{"stored then compressed", mixed, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := lz4Compress(t, tc.src)
			if !bytes.Equal(frame[:lz4HeaderLen], lz4Headers[3][:]) {
				t.Fatalf("header % x, want % x", frame[:lz4HeaderLen], lz4Headers[3])
			}
			sizes := lz4Blocks(t, frame)
			raw := 0
			for _, s := range sizes {
				if s&lz4Uncompressed != 0 {
					raw++
				}
			}
			if len(sizes) != tc.blocks || raw != tc.rawBlocks {
				t.Errorf("%d blocks, %d stored; want %d, %d", len(sizes), raw, tc.blocks, tc.rawBlocks)
			}
			if max := len(tc.src) + lz4HeaderLen + 4*len(sizes) + 4; len(frame) > max {
				t.Errorf("frame of %d bytes for %d, over %d", len(frame), len(tc.src), max)
			}

			decoders := map[string]func([]byte) ([]byte, error){
				"trailwatch":  func(b []byte) ([]byte, error) { return LZ4Decompressor(64<<20).Decompress(b, kgo.CodecLz4) },
				"pierrec":     pierrecDecode,
				"kgo-default": func(b []byte) ([]byte, error) { return kgo.DefaultDecompressor().Decompress(b, kgo.CodecLz4) },
			}
			for name, decode := range decoders {
				got, err := decode(frame)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !bytes.Equal(got, tc.src) {
					t.Fatalf("%s: decoded %d bytes differ from the %d written", name, len(got), len(tc.src))
				}
			}
		})
	}
}

// TestLZ4CompressAppendsToBuffer checks that Compress leaves what dst
// already holds alone and fits in what it grew.
func TestLZ4CompressAppendsToBuffer(t *testing.T) {
	src := lz4TestEvents(t, 50, 2)
	dst := bytes.NewBufferString("prefix")
	out, _ := LZ4Compressor().Compress(dst, src)
	if dst.String() != "prefix" {
		t.Fatalf("dst holds %q", dst.String())
	}
	got, err := pierrecDecode(out)
	if err != nil || !bytes.Equal(got, src) {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
}

func TestLZ4DecodesOtherFrames(t *testing.T) {
	events := lz4TestEvents(t, 300, 7)
	big := bytes.Repeat(events, (2<<20)/len(events)+1)
	for _, tc := range []struct {
		name string
		src  []byte
		opts []lz4.Option
		fast bool // decoded here rather than by the default decompressor
	}{
		{"pierrec defaults (content checksum)", events, nil, false},
		{"pierrec no checksum", events, []lz4.Option{lz4.ChecksumOption(false)}, true},
		{"pierrec no checksum 64 KB blocks", big, []lz4.Option{lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb)}, true},
		{"pierrec no checksum 256 KB blocks", big, []lz4.Option{lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block256Kb)}, true},
		{"pierrec no checksum 1 MB blocks", big, []lz4.Option{lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block1Mb)}, true},
		{"pierrec incompressible", randomBytes(300<<10, 8), []lz4.Option{lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb)}, true},
		{"pierrec block checksums", big, []lz4.Option{lz4.BlockChecksumOption(true)}, false},
		{"pierrec content size", events, []lz4.Option{lz4.ChecksumOption(false), lz4.SizeOption(uint64(len(events)))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := pierrecEncode(t, tc.src, tc.opts...)
			if _, fast := lz4FastFrame(frame, kgo.CodecLz4); fast != tc.fast {
				t.Fatalf("fast path %v, want %v (header % x)", fast, tc.fast, frame[:lz4HeaderLen])
			}
			got, err := LZ4Decompressor(64<<20).Decompress(frame, kgo.CodecLz4)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.src) {
				t.Fatalf("decoded %d bytes differ from the %d written", len(got), len(tc.src))
			}
		})
	}
	t.Run("concatenated frames", func(t *testing.T) {
		frame := append(lz4Compress(t, events[:1000]), lz4Compress(t, events[1000:])...)
		got, err := LZ4Decompressor(64<<20).Decompress(frame, kgo.CodecLz4)
		if err != nil || !bytes.Equal(got, events) {
			t.Fatalf("decoded %d of %d bytes: %v", len(got), len(events), err)
		}
	})
}

func TestLZ4DecodesOtherCodecs(t *testing.T) {
	src := lz4TestEvents(t, 100, 9)
	for _, tc := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"gzip", kgo.GzipCompression()},
		{"snappy", kgo.SnappyCompression()},
		{"zstd", kgo.ZstdCompression()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kgo.DefaultCompressor(tc.codec)
			if err != nil {
				t.Fatal(err)
			}
			compressed, codec := c.Compress(new(bytes.Buffer), src)
			got, err := LZ4Decompressor(64<<20).Decompress(compressed, codec)
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("decoded %d of %d bytes: %v", len(got), len(src), err)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		got, err := LZ4Decompressor(64<<20).Decompress(src, kgo.CodecNone)
		if err != nil || &got[0] != &src[0] || len(got) != len(src) {
			t.Fatalf("not the input slice back: %d bytes, %v", len(got), err)
		}
	})
}

// lz4Frame builds a frame with FLG 0x60 and the given BD from raw block
// fields: each part is written as is.
func lz4Frame(bd int, parts ...[]byte) []byte {
	out := append([]byte(nil), lz4Headers[bd][:]...)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func TestLZ4DecompressErrors(t *testing.T) {
	valid := lz4Compress(t, lz4TestEvents(t, 20, 10))
	endMark := le32(0)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"no EndMark", valid[:len(valid)-4], "truncated: 0 bytes where block 1's size or the EndMark should be"},
		{"cut in the EndMark", valid[:len(valid)-2], "truncated: 2 bytes where block 1's size"},
		{"cut in a block", valid[:len(valid)-20], "truncated: block 0 has"},
		{"only a header", valid[:lz4HeaderLen], "truncated: 0 bytes where block 0's size"},
		{"trailing garbage", append(append([]byte(nil), valid...), "junk"...), "4 bytes of trailing data after the EndMark"},
		{"compressed block over BD", lz4Frame(0, le32(64<<10+1), make([]byte, 64<<10+1), endMark), "block 0: 65537 bytes, over the frame's 65536 byte block size"},
		{"stored block over BD", lz4Frame(0, le32(lz4Uncompressed|(64<<10+1)), make([]byte, 64<<10+1), endMark), "block 0: 65537 bytes, over"},
		{"size field over the input", lz4Frame(3, le32(0x7fffffff), endMark), "over the frame's 4194304 byte block size"},
		// A literal run of 5 with one byte of literals behind it.
		{"literals past the block", lz4Frame(3, le32(2), []byte{0x50, 'a'}, endMark), "lz4 block 0: corrupt: 2 bytes do not decode into a 4194304 byte block"},
		// A literal, then a match at offset 0, which lz4 forbids.
		{"zero offset", lz4Frame(3, le32(6), []byte{0x10, 'a', 0, 0, 0x10, 'b'}, endMark), "corrupt"},
		// A block of 65556 bytes in a frame of 64 KB blocks (the same
		// block in a 4 MB frame decodes: TestLZ4BlockOverBD).
		{"block decodes past BD", lz4Frame(0, le32(uint32(len(lz4LongBlock))), lz4LongBlock, endMark), "do not decode into a 65536 byte block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LZ4Decompressor(64<<20).Decompress(tc.frame, kgo.CodecLz4)
			if err == nil {
				t.Fatalf("decoded %d bytes, want an error", len(got))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if errors.Is(err, kgo.ErrMaxDecompress) {
				t.Fatalf("%v: reported as too large", err)
			}
			if _, perr := pierrecDecode(tc.frame); perr == nil {
				t.Errorf("pierrec decodes what we refuse")
			}
		})
	}
}

// lz4LongBlock decodes to 65556 bytes: a literal 'a', a match at offset 1
// of 15+4 plus 257 extensions of 255, then a last literal 'z'.
var lz4LongBlock = slices.Concat([]byte{0x1F, 'a', 1, 0}, bytes.Repeat([]byte{0xFF}, 257), []byte{0, 0x10, 'z'})

func TestLZ4BlockOverBD(t *testing.T) {
	want := slices.Concat(bytes.Repeat([]byte{'a'}, 1+15+4+257*255), []byte{'z'})
	frame := lz4Frame(3, le32(uint32(len(lz4LongBlock))), lz4LongBlock, le32(0))
	got, err := LZ4Decompressor(64<<20).Decompress(frame, kgo.CodecLz4)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("decoded %d of %d bytes: %v", len(got), len(want), err)
	}
	if got, err := pierrecDecode(frame); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("pierrec decoded %d of %d bytes: %v", len(got), len(want), err)
	}
}

// TestLZ4FastFrame checks which frames are decoded here: FLG 0x60, a
// standard BD, the right header checksum, and nothing else.
func TestLZ4FastFrame(t *testing.T) {
	with := func(i int, b byte) []byte {
		h := lz4Frame(3, le32(0))
		h[i] = b
		return h
	}
	for _, tc := range []struct {
		name  string
		src   []byte
		codec kgo.CompressionCodecType
		max   int
	}{
		{"64 KB blocks", lz4Frame(0, le32(0)), kgo.CodecLz4, 64 << 10},
		{"256 KB blocks", lz4Frame(1, le32(0)), kgo.CodecLz4, 256 << 10},
		{"1 MB blocks", lz4Frame(2, le32(0)), kgo.CodecLz4, 1 << 20},
		{"4 MB blocks", lz4Frame(3, le32(0)), kgo.CodecLz4, 4 << 20},
		{"another codec", lz4Frame(3, le32(0)), kgo.CodecGzip, 0},
		{"short", lz4Frame(3)[:6], kgo.CodecLz4, 0},
		{"skippable frame magic", with(0, 0x50), kgo.CodecLz4, 0},
		{"dependent blocks", with(4, 0x40), kgo.CodecLz4, 0},
		{"content checksum", with(4, 0x64), kgo.CodecLz4, 0},
		{"block checksum", with(4, 0x70), kgo.CodecLz4, 0},
		{"content size", with(4, 0x68), kgo.CodecLz4, 0},
		{"dictionary id", with(4, 0x61), kgo.CodecLz4, 0},
		{"version 0", with(4, 0x20), kgo.CodecLz4, 0},
		{"BD 0x30", with(5, 0x30), kgo.CodecLz4, 0},
		{"BD reserved bit", with(5, 0xF0), kgo.CodecLz4, 0},
		{"BD low bits", with(5, 0x71), kgo.CodecLz4, 0},
		{"header checksum", with(6, lz4Headers[3][6]+1), kgo.CodecLz4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := lz4FastFrame(tc.src, tc.codec)
			if ok != (tc.max > 0) || got != tc.max {
				t.Fatalf("lz4FastFrame = %d, %v; want %d", got, ok, tc.max)
			}
		})
	}
}

// TestLZ4TruncatedFrames cuts frames at every length (the default
// decompressor's frames, which take it ~10 ms each to refuse under -race,
// in the header, the last 16 bytes and every 16th length): each cut is an
// error, never a panic.
func TestLZ4TruncatedFrames(t *testing.T) {
	events := lz4TestEvents(t, 10, 11)
	for _, tc := range []struct {
		name  string
		frame []byte
		every bool
	}{
		{"trailwatch", lz4Compress(t, events), true},
		{"pierrec with checksum", pierrecEncode(t, events), false},
		{"stored block", lz4Compress(t, randomBytes(300, 12)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := LZ4Decompressor(64 << 20)
			for n := 1; n < len(tc.frame); n++ {
				if !tc.every && n > 16 && n < len(tc.frame)-16 && n%16 != 0 {
					continue
				}
				if got, err := d.Decompress(tc.frame[:n], kgo.CodecLz4); err == nil {
					t.Fatalf("cut at %d of %d: decoded %d bytes", n, len(tc.frame), len(got))
				}
			}
		})
	}
}

func TestLZ4MaxBytes(t *testing.T) {
	events := lz4TestEvents(t, 300, 13)
	big := bytes.Repeat(events, (5<<20)/len(events)+1)
	stored := randomBytes(100<<10, 14)
	for _, tc := range []struct {
		name string
		src  []byte
		enc  func(testing.TB, []byte) []byte
	}{
		{"compressed block", events, lz4Compress},
		{"multi-block", big, lz4Compress},
		{"stored block", stored, lz4Compress},
		{"pierrec with checksum (default decompressor)", events, func(tb testing.TB, b []byte) []byte { return pierrecEncode(tb, b) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := tc.enc(t, tc.src)
			for _, limit := range []int{len(tc.src) - 1, len(tc.src) / 2, 100} {
				got, err := LZ4Decompressor(limit).Decompress(frame, kgo.CodecLz4)
				if !errors.Is(err, kgo.ErrMaxDecompress) {
					t.Fatalf("limit %d for %d bytes: %d bytes, error %v; want ErrMaxDecompress", limit, len(tc.src), len(got), err)
				}
			}
			got, err := LZ4Decompressor(len(tc.src)).Decompress(frame, kgo.CodecLz4)
			if err != nil || !bytes.Equal(got, tc.src) {
				t.Fatalf("at exactly the limit: %d of %d bytes, %v", len(got), len(tc.src), err)
			}
		})
	}
}

// TestLZ4SizeGuess decodes batches whose ratio differs widely from the
// one before, so that the first guess at the size is far too small or far
// too large, and checks each decodes intact and grows at most to a block
// more than it needs.
func TestLZ4SizeGuess(t *testing.T) {
	d := LZ4Decompressor(64 << 20)
	events := lz4TestEvents(t, 300, 15)
	zeros := make([]byte, 3<<20)           // ratio ~250
	ones := bytes.Repeat([]byte{1}, 9<<20) // three blocks of zeros' ratio
	for i, src := range [][]byte{zeros, events, ones, randomBytes(10<<10, 16), zeros, events} {
		frame := lz4Compress(t, src)
		got, err := d.Decompress(frame, kgo.CodecLz4)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("batch %d: decoded %d of %d bytes: %v", i, len(got), len(src), err)
		}
		if cap(got) > 2*len(src)+lz4BlockMax {
			t.Errorf("batch %d: capacity %d for %d bytes", i, cap(got), len(src))
		}
		if r, want := d.(*lz4Decompressor).ratio.Load(), uint32(len(src)*lz4RatioOne/len(frame)); r < want {
			t.Errorf("batch %d: ratio %d/16 learned, want at least %d/16", i, r, want)
		}
	}
}

// FuzzLZ4Decompress checks that no input panics and that the decoder
// agrees with pierrec's Reader, which kgo's default decompressor uses: an
// input decodes here exactly when pierrec decodes it, to the same bytes.
// Nothing has to be excused: frames whose header asks for a block or
// content checksum, or that pierrec's header checksum rejects, are not
// decoded here but handed to the default decompressor, so pierrec checks
// them; the frames decoded here have no checksum to skip. The one
// exception is the size limit, which pierrec does not have.
func FuzzLZ4Decompress(f *testing.F) {
	// Few events: pierrec's Reader takes milliseconds to refuse some
	// broken headers (it allocates a fresh block buffer), and the fuzzer
	// minimizes an interesting input one byte at a time.
	events := lz4TestEvents(f, 4, 17)
	seeds := [][]byte{
		lz4Compress(f, nil),
		lz4Compress(f, []byte("x")),
		lz4Compress(f, events),
		lz4Compress(f, randomBytes(200, 18)),
		pierrecEncode(f, events),
		pierrecEncode(f, events, lz4.ChecksumOption(false), lz4.BlockSizeOption(lz4.Block64Kb)),
		pierrecEncode(f, events, lz4.BlockChecksumOption(true)),
		lz4Frame(0, le32(2), []byte{0x50, 'a'}, le32(0)),
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(append(append([]byte(nil), s...), 0, 1, 2, 3))
		if len(s) > 12 {
			m := append([]byte(nil), s...)
			m[10] ^= 0x40
			f.Add(m)
		}
	}
	const limit = 8 << 20
	d := LZ4Decompressor(limit)
	// One Reader, Reset for each input: a fresh one allocates its 4 MB
	// block buffer and does not return it when it fails, which makes each
	// failing input take milliseconds.
	zr := lz4.NewReader(nil)
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := d.Decompress(frame, kgo.CodecLz4)
		zr.Reset(bytes.NewReader(frame))
		want, werr := io.ReadAll(zr)
		switch {
		case errors.Is(err, kgo.ErrMaxDecompress):
			if werr == nil && len(want) <= limit {
				t.Fatalf("refused as too large, but pierrec decodes %d bytes", len(want))
			}
		case err != nil:
			if werr == nil {
				t.Fatalf("refused (%v), but pierrec decodes %d bytes", err, len(want))
			}
		case werr != nil:
			t.Fatalf("decoded %d bytes, but pierrec refuses: %v", len(got), werr)
		case !bytes.Equal(got, want):
			t.Fatalf("decoded %d bytes, pierrec %d, and they differ", len(got), len(want))
		}
	})
}

// TestLZ4ThroughKfake produces a few thousand events through kfake with
// each combination of this codec and franz-go's own lz4, and checks every
// record arrives intact in order, in batches that were lz4 compressed.
func TestLZ4ThroughKfake(t *testing.T) {
	ours := []kgo.Opt{kgo.WithCompressor(LZ4Compressor())}
	theirs := []kgo.Opt{kgo.ProducerBatchCompression(kgo.Lz4Compression())}
	oursIn := []kgo.Opt{kgo.WithDecompressor(LZ4Decompressor(64 << 20))}
	for _, tc := range []struct {
		name     string
		producer []kgo.Opt
		consumer []kgo.Opt
	}{
		{"trailwatch to trailwatch", ours, oursIn},
		{"trailwatch to kgo default", ours, nil},
		{"kgo default lz4 to trailwatch", theirs, oursIn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "trailwatch.events"
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)

			var produced, consumed lz4BatchHook
			prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topic), kgo.WithHooks(&produced)}, tc.producer...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(prod.Close)
			cons, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithHooks(&consumed)}, tc.consumer...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cons.Close)

			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			const n = 3000
			var want [][]byte
			for i := range 6 {
				docs := lz4SplitEvents(lz4TestEvents(t, n/6, uint64(100+i)))
				recs := make([]*kgo.Record, len(docs))
				for j, doc := range docs {
					recs[j] = &kgo.Record{Value: doc}
				}
				if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				want = append(want, docs...)
			}

			var got [][]byte
			for len(got) < n {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("after %d records: %v", len(got), err)
				}
				fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Value) })
			}
			if len(got) != n {
				t.Fatalf("consumed %d records, want %d", len(got), n)
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("record %d differs:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
			if produced.lz4.Load() == 0 || produced.other.Load() != 0 {
				t.Errorf("produced %d lz4 batches and %d others", produced.lz4.Load(), produced.other.Load())
			}
			if consumed.lz4.Load() == 0 || consumed.other.Load() != 0 {
				t.Errorf("consumed %d lz4 batches and %d others", consumed.lz4.Load(), consumed.other.Load())
			}
		})
	}
}

// lz4SplitEvents splits concatenated event documents at their "}{".
func lz4SplitEvents(b []byte) [][]byte {
	var docs [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte(`}{"@timestamp"`)) + 1
		if i == 0 {
			i = len(b)
		}
		docs = append(docs, b[:i:i])
		b = b[i:]
	}
	return docs
}

// lz4BatchHook counts the batches a client produced or fetched, by codec.
type lz4BatchHook struct{ lz4, other atomic.Int64 }

func (h *lz4BatchHook) count(codec uint8) {
	if codec == uint8(kgo.CodecLz4) {
		h.lz4.Add(1)
	} else {
		h.other.Add(1)
	}
}

func (h *lz4BatchHook) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	h.count(m.CompressionType)
}

func (h *lz4BatchHook) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	h.count(m.CompressionType)
}

func BenchmarkLZ4Compress(b *testing.B) {
	src := lz4TestEvents(b, 300, 42)
	for _, tc := range []struct {
		name string
		c    kgo.Compressor
	}{
		{"kgo-default", lz4DefaultCompressor(b)},
		{"trailwatch", LZ4Compressor()},
		{"trailwatch-default-block", newLZ4Compressor(func() lz4BlockCompressor { return new(lz4.Compressor) })},
		{"trailwatch-ccompat-accel1", newLZ4Compressor(func() lz4BlockCompressor { return new(lz4.CompressorCCompat) })},
		{"trailwatch-ccompat-accel4", newLZ4Compressor(func() lz4BlockCompressor { return &lz4.CompressorCCompat{Acceleration: 4} })},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var dst bytes.Buffer
			var n int
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				dst.Reset()
				out, _ := tc.c.Compress(&dst, src)
				n = len(out)
			}
			b.ReportMetric(float64(n)/float64(len(src)), "ratio")
		})
	}
}

func BenchmarkLZ4Decompress(b *testing.B) {
	src := lz4TestEvents(b, 300, 42)
	for _, tc := range []struct {
		name  string
		frame []byte
		d     kgo.Decompressor
	}{
		// What each side's producer writes: pierrec's frame with its
		// content checksum, and ours.
		{"kgo-default", lz4DefaultCompress(b, src), kgo.DefaultDecompressor()},
		{"trailwatch", lz4Compress(b, src), LZ4Decompressor(64 << 20)},
		{"trailwatch-ccompat", lz4CompressCCompat(b, src), LZ4Decompressor(64 << 20)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ballast := make([]byte, lz4BenchBallast)
			defer runtime.KeepAlive(ballast)
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.d.Decompress(tc.frame, kgo.CodecLz4); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(tc.frame))/float64(len(src)), "ratio")
		})
	}
}

// lz4BenchBallast is live heap held while a decompress benchmark runs,
// as a pipeline process has (tens of MB of buffered records and state).
// Without it the test binary's heap is a few MB: the runtime returns the
// freed output buffers to the OS after each GC and the next batch's output
// faults its pages back in, a cost that lands on whichever sub-benchmark
// runs after another shrank the heap (trailwatch measured ~135 µs instead
// of ~45 µs right after kgo-default, alone ~57 µs).
const lz4BenchBallast = 64 << 20

func lz4DefaultCompressor(tb testing.TB) kgo.Compressor {
	c, err := kgo.DefaultCompressor(kgo.Lz4Compression())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func lz4DefaultCompress(tb testing.TB, src []byte) []byte {
	out, _ := lz4DefaultCompressor(tb).Compress(new(bytes.Buffer), src)
	return out
}

func lz4CompressCCompat(tb testing.TB, src []byte) []byte {
	out, _ := newLZ4Compressor(func() lz4BlockCompressor { return new(lz4.CompressorCCompat) }).Compress(new(bytes.Buffer), src)
	return out
}
