package iplist

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// show renders entries as "kind:value=label|desc|confidence" for compact
// comparisons.
func show(es []entry) []string {
	var out []string
	for _, e := range es {
		v := e.value
		if e.kind == kindIP {
			v = e.prefix.String()
		}
		s := fmt.Sprintf("%d:%s", e.kind, v)
		if e.label != "" || e.desc != "" || e.confidence != "" {
			s += "=" + e.label + "|" + e.desc + "|" + e.confidence
		}
		out = append(out, s)
	}
	return out
}

const stixBundleDoc = `{
  "type": "bundle", "id": "bundle--1",
  "objects": [
    {"type": "identity", "id": "identity--1", "name": "feed"},
    {"type": "indicator", "id": "indicator--1", "name": "C2 servers", "description": "Cobalt Strike team servers",
     "confidence": 85, "pattern_type": "stix",
     "pattern": "[ipv4-addr:value = '198.51.100.7'] OR [ipv4-addr:value = '203.0.113.0/24' OR ipv6-addr:value = '2001:db8::1']"},
    {"type": "indicator", "id": "indicator--2", "name": "phish", "confidence": 20, "pattern_type": "stix",
     "pattern": "[domain-name:value = 'Evil.Example']", "valid_until": "2030-01-01T00:00:00Z"},
    {"type": "indicator", "id": "indicator--3", "name": "dropper", "pattern_type": "stix",
     "pattern": "[url:value = 'http://bad.example/it\\'s.exe']"},
    {"type": "indicator", "id": "indicator--4", "name": "expired", "pattern_type": "stix",
     "pattern": "[ipv4-addr:value = '192.0.2.1']", "valid_until": "2024-01-01T00:00:00Z"},
    {"type": "indicator", "id": "indicator--5", "name": "revoked", "revoked": true, "pattern_type": "stix",
     "pattern": "[ipv4-addr:value = '192.0.2.2']"},
    {"type": "indicator", "id": "indicator--6", "name": "and", "pattern_type": "stix",
     "pattern": "[ipv4-addr:value = '192.0.2.3' AND network-traffic:dst_port = 443]"},
    {"type": "indicator", "id": "indicator--7", "name": "hash", "pattern_type": "stix",
     "pattern": "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f']"},
    {"type": "indicator", "id": "indicator--8", "name": "sigma", "pattern_type": "sigma", "pattern": "title: x"}
  ]
}`

const mispCSV = `uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,object_uuid,object_name,object_meta_category
5f1e-1,12,Network activity,ip-dst,198.51.100.9,C2 beacon,1,1700000000,,,,,
5f1e-2,12,Network activity,ip-src|port,203.0.113.5|4444,,1,1700000000,,,,,
5f1e-3,12,Network activity,domain,Evil.Example,phishing,1,1700000000,,,,,
5f1e-4,12,Network activity,hostname,cdn.bad.example,,True,1700000000,,,,,
5f1e-5,12,Network activity,url,https://bad.example/a?b=1,,1,1700000000,,,,,
5f1e-6,12,Network activity,ip-dst,192.0.2.50,benign resolver,0,1700000000,,,,,
5f1e-7,12,Payload delivery,sha256,aec070645fe53ee3b3763059376134f058cc337247c978add178b6ccdfb0019f,,1,1700000000,,,,,
`

const torExitAddresses = `ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E
Published 2024-05-01 10:11:12
LastStatus 2024-05-01 11:00:00
ExitAddress 162.247.74.201 2024-05-01 11:02:03
ExitNode 0091174DE56EA5E6E5E6E4E9EF1A0CA6E9C5E5E6
Published 2024-05-01 09:00:00
LastStatus 2024-05-01 10:00:00
ExitAddress 185.220.101.33 2024-05-01 10:05:00
ExitAddress 2a0b:f4c2::33 2024-05-01 10:05:00
`

var parseNow = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

func TestParseFormats(t *testing.T) {
	tests := []struct {
		name    string
		opts    parseOpts
		body    string
		want    []string
		skipped int
		wantErr string
	}{
		{name: "tor exit-addresses", opts: parseOpts{format: FormatTor}, body: torExitAddresses,
			want: []string{"0:162.247.74.201/32", "0:185.220.101.33/32", "0:2a0b:f4c2::33/128"}},
		{name: "tor bulk list", opts: parseOpts{format: FormatTor}, body: "185.220.101.1\n185.220.101.2\n\n",
			want: []string{"0:185.220.101.1/32", "0:185.220.101.2/32"}},
		{name: "tor html error page", opts: parseOpts{format: FormatTor}, body: "<html>\n<body>rate limited</body>\n", wantErr: "feed:1: "},
		{name: "csv by header name", opts: parseOpts{format: FormatCSV, column: "ioc", labelColumn: "threat"},
			body: "# abuse feed\nfirst_seen,ioc,threat\n2024-01-01,198.51.100.0/24,botnet\n2024-01-02,\"http://x.example/p\",malware_download\n2024-01-03,x.example,\n",
			want: []string{"0:198.51.100.0/24=botnet||", "2:http://x.example/p=malware_download||", "1:x.example"}},
		{name: "csv by number", opts: parseOpts{format: FormatCSV, column: "2"}, body: "a,203.0.113.4\nb,evil.example\n",
			want: []string{"0:203.0.113.4/32", "1:evil.example"}},
		{name: "csv missing header column", opts: parseOpts{format: FormatCSV, column: "ip"}, body: "addr\n1.2.3.4\n", wantErr: `feed:1: no column "ip" in the header`},
		{name: "csv bad value", opts: parseOpts{format: FormatCSV, column: "1"}, body: "1.2.3.4\nnot an indicator\n", wantErr: "feed:2: "},
		{name: "stix bundle", opts: parseOpts{format: FormatSTIX, now: parseNow}, body: stixBundleDoc, skipped: 5,
			want: []string{
				"0:198.51.100.7/32=C2 servers|Cobalt Strike team servers|High",
				"0:203.0.113.0/24=C2 servers|Cobalt Strike team servers|High",
				"0:2001:db8::1/128=C2 servers|Cobalt Strike team servers|High",
				"1:evil.example=phish||Low",
				"2:http://bad.example/it's.exe=dropper||",
			}},
		{name: "stix not a bundle", opts: parseOpts{format: FormatSTIX}, body: `{"type":"indicator"}`, wantErr: "not a STIX bundle"},
		{name: "stix bad json", opts: parseOpts{format: FormatSTIX}, body: `{"type":`, wantErr: "feed: unexpected end of JSON input"},
		{name: "misp to_ids only", opts: parseOpts{format: FormatMISP}, body: mispCSV, skipped: 2,
			want: []string{"0:198.51.100.9/32=|C2 beacon|", "0:203.0.113.5/32", "1:evil.example=|phishing|", "1:cdn.bad.example", "2:https://bad.example/a?b=1"}},
		{name: "misp including non-ids", opts: parseOpts{format: FormatMISP, includeNonIDS: true}, body: mispCSV, skipped: 1,
			want: []string{"0:198.51.100.9/32=|C2 beacon|", "0:203.0.113.5/32", "1:evil.example=|phishing|", "1:cdn.bad.example", "2:https://bad.example/a?b=1", "0:192.0.2.50/32=|benign resolver|"}},
		{name: "misp without header", opts: parseOpts{format: FormatMISP}, body: "u,1,Network activity,domain,evil.example,,1,0\n", want: []string{"1:evil.example"}},
		{name: "misp bad value", opts: parseOpts{format: FormatMISP}, body: "u,1,Network activity,ip-dst,999.1.1.1,,1,0\n", wantErr: `feed:1: ip-dst "999.1.1.1" does not parse`},
		{name: "plain stays addresses only", opts: parseOpts{format: FormatPlain}, body: "evil.example\n", wantErr: "feed:1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse("feed", []byte(tt.body), tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := show(got.entries); !slices.Equal(s, tt.want) {
				t.Errorf("entries =\n%q\nwant\n%q", s, tt.want)
			}
			if got.skipped != tt.skipped {
				t.Errorf("skipped = %d, want %d", got.skipped, tt.skipped)
			}
		})
	}
}

func TestSTIXPattern(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string // nil: refused
	}{
		{"[ipv4-addr:value = '1.2.3.4']", []string{"0:1.2.3.4/32"}},
		{"[ipv4-addr:value='1.2.3.4']OR[domain-name:value='a.example']", []string{"0:1.2.3.4/32", "1:a.example"}},
		{" [ url:value = 'https://a.example' ] ", []string{"2:https://a.example/"}},
		{"[ipv4-addr:value = '2001:db8::1']", nil}, // wrong family
		{"[ipv4-addr:value = '1.2.3.4'] AND [ipv4-addr:value = '5.6.7.8']", nil},
		{"[ipv4-addr:value != '1.2.3.4']", nil},
		{"[ipv4-addr:value = '1.2.3.4'", nil},
		{"[ipv4-addr:value = '1.2.3.4] ", nil},
		{"[ipv4-addr:value = '1.2.3.4'] ORX [ipv4-addr:value = '5.6.7.8']", nil},
		{"[domain-name:value = 'nodot']", nil},
		{"", nil},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, ok := stixPattern(tt.pattern)
			if ok != (tt.want != nil) || !slices.Equal(show(got), tt.want) {
				t.Fatalf("stixPattern = %q, %v; want %q", show(got), ok, tt.want)
			}
		})
	}
}

// fuzzParse checks what every parser promises whatever the input: no
// panic, and every entry it returns is well formed.
func fuzzParse(f *testing.F, o parseOpts, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parse("fuzz", data, o)
		if err != nil {
			return
		}
		for _, e := range p.entries {
			switch e.kind {
			case kindIP:
				if !e.prefix.IsValid() || e.prefix != e.prefix.Masked() {
					t.Fatalf("bad prefix %v", e.prefix)
				}
			case kindDomain:
				if d, ok := normDomain(e.value); !ok || d != e.value {
					t.Fatalf("domain %q not normalized", e.value)
				}
			case kindURL:
				if u, ok := normURL(e.value); !ok || u != e.value {
					t.Fatalf("url %q not normalized", e.value)
				}
			}
		}
	})
}

func FuzzParsePlain(f *testing.F) {
	fuzzParse(f, parseOpts{format: FormatPlain}, "1.2.3.4\n10.0.0.0/8,corp\n", "cidr,label\n::ffff:1.2.3.4/120\n")
}

func FuzzParseCSV(f *testing.F) {
	fuzzParse(f, parseOpts{format: FormatCSV, column: "ioc", labelColumn: "threat"}, "ioc,threat\n1.2.3.4,x\nhttp://a.example/,y\n")
}

func FuzzParseTor(f *testing.F) {
	fuzzParse(f, parseOpts{format: FormatTor}, torExitAddresses, "1.2.3.4\n")
}

func FuzzParseSTIX(f *testing.F) {
	fuzzParse(f, parseOpts{format: FormatSTIX, now: parseNow}, stixBundleDoc)
}

func FuzzParseMISP(f *testing.F) {
	fuzzParse(f, parseOpts{format: FormatMISP, includeNonIDS: true}, mispCSV)
}
