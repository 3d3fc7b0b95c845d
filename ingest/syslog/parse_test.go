package syslog

import (
	"bytes"
	"errors"
	"testing"
)

const nginxLine = `192.0.2.7 - alice [21/Jan/2025:10:00:00 +0000] "GET /api/v1/users?id=7 HTTP/1.1" 200 512 "-" "curl/8.5.0"`

var parseCases = []struct {
	name    string
	in      string
	format  Format
	pri     int
	host    string
	app     string
	procid  string
	msgid   string
	msg     string
	wantErr error
}{
	{name: "3164 nginx", in: "<190>Jan 21 10:00:00 web1 nginx: " + nginxLine,
		format: Format3164, pri: 190, host: "web1", app: "nginx", msg: nginxLine},
	{name: "3164 space padded day and pid", in: "<134>Jan  2 03:04:05 lb1 haproxy[4242]: 10.0.0.1:5000 [02/Jan/2025:03:04:05.123] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\"",
		format: Format3164, pri: 134, host: "lb1", app: "haproxy", procid: "4242",
		msg: "10.0.0.1:5000 [02/Jan/2025:03:04:05.123] fe be/s1 0/0/1/2/3 200 100 - - ---- 1/1/0/0/0 0/0 \"GET / HTTP/1.1\""},
	{name: "3164 no host (haproxy default)", in: "<134>Jan  2 03:04:05 haproxy[7]: hello world",
		format: Format3164, pri: 134, app: "haproxy", procid: "7", msg: "hello world"},
	{name: "3164 no host no pid", in: "<13>Feb 28 23:59:59 nginx: a b c",
		format: Format3164, pri: 13, app: "nginx", msg: "a b c"},
	{name: "3164 no tag", in: "<13>Mar  1 00:00:00 host1 just a message",
		format: Format3164, pri: 13, host: "host1", msg: "just a message"},
	{name: "3164 fractional seconds", in: "<13>Mar  1 00:00:00.123 host1 app: m",
		format: Format3164, pri: 13, host: "host1", app: "app", msg: "m"},
	{name: "3164 with year", in: "<13>Mar  1 2025 00:00:00 host1 app: m",
		format: Format3164, pri: 13, host: "host1", app: "app", msg: "m"},
	{name: "3164 rfc3339 timestamp (rsyslog forward format)", in: "<13>2025-01-21T10:00:00.123456+00:00 web1 nginx: x y",
		format: Format3164, pri: 13, host: "web1", app: "nginx", msg: "x y"},
	{name: "3164 no timestamp, tag only (/dev/log style)", in: "<13>myapp[12]: started",
		format: Format3164, pri: 13, app: "myapp", procid: "12", msg: "started"},
	{name: "3164 no timestamp no tag", in: "<13>plain text: with colon later",
		format: Format3164, pri: 13, msg: "plain text: with colon later"},
	{name: "3164 host:port is not a tag", in: "<13>Jan  1 00:00:00 10.0.0.1:514 msg",
		format: Format3164, pri: 13, host: "10.0.0.1:514", msg: "msg"},
	{name: "3164 trailing CRLF", in: "<13>Jan  1 00:00:00 h app: m\r\n",
		format: Format3164, pri: 13, host: "h", app: "app", msg: "m"},
	{name: "3164 empty message", in: "<13>Jan  1 00:00:00 h app:",
		format: Format3164, pri: 13, host: "h", app: "app", msg: ""},
	{name: "5424 full", in: "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] " + nginxLine,
		format: Format5424, pri: 165, host: "mymachine.example.com", app: "evntslog", msgid: "ID47", msg: nginxLine},
	{name: "5424 nil SD", in: "<190>1 2025-01-21T10:00:00+00:00 web1 nginx 123 - - " + nginxLine,
		format: Format5424, pri: 190, host: "web1", app: "nginx", procid: "123", msg: nginxLine},
	{name: "5424 escaped bracket and quote in SD", in: `<14>1 - - app - - [a@1 k="x\]y\"z" k2="]"][b@2] msg`,
		format: Format5424, pri: 14, app: "app", msg: "msg"},
	{name: "5424 BOM", in: "<14>1 - h app - - - \xEF\xBB\xBFhéllo",
		format: Format5424, pri: 14, host: "h", app: "app", msg: "héllo"},
	{name: "5424 no MSG", in: "<14>1 - h app - - -",
		format: Format5424, pri: 14, host: "h", app: "app"},
	{name: "5424 all nil", in: "<0>1 - - - - - - m",
		format: Format5424, pri: 0, msg: "m"},
	{name: "5424 trailing LF (rsyslog template)", in: "<14>1 - h app - - - m\n",
		format: Format5424, pri: 14, host: "h", app: "app", msg: "m"},
	{name: "5424 unterminated SD", in: `<14>1 - h app - - [a@1 k="v" msg`, wantErr: ErrStructuredData},
	{name: "5424 SD not bracketed", in: `<14>1 - h app - - x msg`, wantErr: ErrStructuredData},
	{name: "5424 junk after SD", in: `<14>1 - h app - - [a]x msg`, wantErr: ErrStructuredData},
	{name: "5424 truncated header", in: `<14>1 2025-01-01T00:00:00Z host`, wantErr: ErrHeader},
	{name: "no PRI", in: nginxLine, wantErr: ErrNoPriority},
	{name: "PRI too big", in: "<192>Jan  1 00:00:00 h a: m", wantErr: ErrNoPriority},
	{name: "PRI unterminated", in: "<13 Jan", wantErr: ErrNoPriority},
	{name: "PRI empty", in: "<>x", wantErr: ErrNoPriority},
	{name: "empty", in: "", wantErr: ErrNoPriority},
	{name: "binary garbage", in: "\x00\xff\xfe<\x01>", wantErr: ErrNoPriority},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			got := []string{string(m.Hostname), string(m.AppName), string(m.ProcID), string(m.MsgID), string(m.Msg)}
			want := []string{tc.host, tc.app, tc.procid, tc.msgid, tc.msg}
			for i, name := range []string{"host", "app", "procid", "msgid", "msg"} {
				if got[i] != want[i] {
					t.Errorf("%s = %q, want %q", name, got[i], want[i])
				}
			}
			if m.Format != tc.format || m.Priority != tc.pri {
				t.Errorf("format, pri = %d, %d; want %d, %d", m.Format, m.Priority, tc.format, tc.pri)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Parse(in)
		if err != nil {
			if m.Format != FormatUnknown || m.Msg != nil {
				t.Fatalf("error %v with a non-zero message", err)
			}
			return
		}
		// Every field aliases the input, and MSG is a suffix of it (minus
		// trailer): the header is stripped, never rewritten.
		for _, f := range [][]byte{m.Timestamp, m.Hostname, m.AppName, m.ProcID, m.MsgID, m.Msg} {
			if len(f) > 0 && !bytes.Contains(in, f) {
				t.Fatalf("field %q not in input %q", f, in)
			}
		}
		if len(m.Msg) > 0 && !bytes.HasSuffix(trimTrailer(in), m.Msg) {
			t.Fatalf("msg %q is not a suffix of %q", m.Msg, in)
		}
		if m.Priority < 0 || m.Priority > 191 {
			t.Fatalf("priority %d", m.Priority)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"3164 nginx", "<190>Jan 21 10:00:00 web1 nginx: " + nginxLine},
		{"5424 nginx with SD", `<190>1 2025-01-21T10:00:00.000+00:00 web1 nginx 123 - [meta@1 a="b" c="d\]"] ` + nginxLine},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := []byte(bc.in)
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := Parse(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
