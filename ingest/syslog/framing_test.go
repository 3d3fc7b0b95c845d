package syslog

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type frameWant struct {
	data      string
	truncated bool
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("x", 100)
	cases := []struct {
		name    string
		in      string
		max     int
		want    []frameWant
		wantErr error // after the frames
	}{
		{name: "octet counted", in: "5 hello3 abc11 <13>a: b\n\nx", max: 64,
			want: []frameWant{{"hello", false}, {"abc", false}, {"<13>a: b\n\nx", false}}, wantErr: io.EOF},
		{name: "octet counted, LF between frames tolerated", in: "2 ab\n2 cd\r\n", max: 64,
			want: []frameWant{{"ab", false}, {"cd", false}}, wantErr: io.EOF},
		{name: "octet counted oversized", in: "100 " + long + "2 ok", max: 10,
			want: []frameWant{{long[:10], true}, {"ok", false}}, wantErr: io.EOF},
		{name: "octet counted, count too long", in: "12345678901 x", max: 64, wantErr: errFraming},
		{name: "octet counted, garbage count", in: "5 hello12x4 abcd", max: 64,
			want: []frameWant{{"hello", false}}, wantErr: errFraming},
		{name: "octet counted, leading zero", in: "5 hello05 hello", max: 64,
			want: []frameWant{{"hello", false}}, wantErr: errFraming},
		{name: "octet counted, cut short", in: "10 abc", max: 64, wantErr: io.ErrUnexpectedEOF},
		{name: "octet counted, cut in count", in: "5 hello12", max: 64,
			want: []frameWant{{"hello", false}}, wantErr: io.ErrUnexpectedEOF},
		{name: "lines", in: "<13>a\n<13>b\r\n<13>c", max: 64,
			want: []frameWant{{"<13>a", false}, {"<13>b\r", false}, {"<13>c", false}}, wantErr: io.EOF},
		{name: "NUL delimited", in: "<13>a\x00<13>b\x00", max: 64,
			want: []frameWant{{"<13>a", false}, {"<13>b", false}}, wantErr: io.EOF},
		{name: "lines oversized", in: long + "\nok\n" + long, max: 10,
			want: []frameWant{{long[:10], true}, {"ok", false}, {long[:10], true}}, wantErr: io.EOF},
		{name: "empty lines", in: "\n\n<1>x\n", max: 64,
			want: []frameWant{{"", false}, {"", false}, {"<1>x", false}}, wantErr: io.EOF},
		{name: "empty stream", in: "", max: 64, wantErr: io.EOF},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		// Every frame and every count split across reads.
		{"one byte per read", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
	}
	for _, tc := range cases {
		for _, rd := range readers {
			t.Run(tc.name+"/"+rd.name, func(t *testing.T) {
				f := newFramer(rd.wrap(strings.NewReader(tc.in)), tc.max)
				var got []frameWant
				var err error
				for {
					var b []byte
					var tr bool
					if b, tr, err = f.next(); err != nil {
						break
					}
					got = append(got, frameWant{string(b), tr})
				}
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("frames = %+v, want %+v", got, tc.want)
				}
				for i := range got {
					if got[i] != tc.want[i] {
						t.Errorf("frame %d = %+v, want %+v", i, got[i], tc.want[i])
					}
				}
			})
		}
	}
}

// A frame larger than the read buffer is assembled, and one larger than max
// is cut while the rest is skipped without being held.
func TestFramerLargeFrames(t *testing.T) {
	big := strings.Repeat("y", 200<<10)
	for _, tc := range []struct {
		name  string
		in    string
		max   int
		want  int
		trunc bool
	}{
		{"octet, bigger than buffer, kept", "204800 " + big, 1 << 20, len(big), false},
		{"octet, bigger than buffer, cut", "204800 " + big, 100 << 10, 100 << 10, true},
		{"line, bigger than buffer, kept", big + "\n", 1 << 20, len(big), false},
		{"line, bigger than buffer, cut", big + "\n", 100 << 10, 100 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFramer(strings.NewReader(tc.in+"\n"), tc.max)
			b, tr, err := f.next()
			if err != nil || len(b) != tc.want || tr != tc.trunc {
				t.Fatalf("len %d truncated %v err %v; want %d %v", len(b), tr, err, tc.want, tc.trunc)
			}
		})
	}
}

func FuzzFramer(f *testing.F) {
	for _, s := range []string{"5 hello3 abc", "<13>a\n<13>b\x00c", "100 x", "9999999999 ", "\n\n1 a"} {
		f.Add([]byte(s), uint8(8))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint8) {
		limit := int(max%64) + 1
		fr := newFramer(iotest.HalfReader(strings.NewReader(string(in))), limit)
		for range len(in) + 2 {
			b, _, err := fr.next()
			if err != nil {
				return
			}
			if len(b) > limit {
				t.Fatalf("frame of %d bytes over max %d", len(b), limit)
			}
		}
		t.Fatal("framer did not reach the end of its input")
	})
}
