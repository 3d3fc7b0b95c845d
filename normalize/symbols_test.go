package normalize

import (
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/trailwatch/trailwatch/normalize/schema"
)

func TestSymbolTableInterns(t *testing.T) {
	var tab symbolTable
	tab.seed = symbols.seed
	buf := []byte("nginx.access")
	a := tab.intern(buf)
	buf[0] = 'N' // the table's string must not alias the input
	b := tab.intern([]byte("nginx.access"))
	if a != "nginx.access" || b != a {
		t.Fatalf("intern = %q then %q, want nginx.access twice", a, b)
	}
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("a repeated value was allocated again instead of coming from the table")
	}
	long := []byte(strings.Repeat("x", maxSymbolLen+1))
	if l1, l2 := tab.intern(long), tab.intern(long); l1 != string(long) || unsafe.StringData(l1) == unsafe.StringData(l2) {
		t.Error("a value over maxSymbolLen was interned")
	}
	if tab.intern(nil) != "" {
		t.Error("empty value")
	}
}

// Two values that share a slot: the later one replaces the earlier, and
// both still come back right.
func TestSymbolTableCollision(t *testing.T) {
	var tab symbolTable
	tab.seed = symbols.seed
	first := tab.intern([]byte("v0"))
	slot := func(s string) *string { return tab.slots[hashSlot(&tab, s)].Load() }
	var other string
	for i := 1; ; i++ {
		c := "v" + strconv.Itoa(i) // short: well under maxSymbolLen
		if hashSlot(&tab, c) == hashSlot(&tab, first) {
			other = c
			break
		}
	}
	if got := tab.intern([]byte(other)); got != other || *slot(other) != other {
		t.Fatalf("colliding value: got %q, slot holds %q", got, *slot(other))
	}
	if got := tab.intern([]byte("v0")); got != "v0" {
		t.Fatalf("evicted value came back as %q", got)
	}
}

func TestSymbolTableConcurrent(t *testing.T) {
	var tab symbolTable
	tab.seed = symbols.seed
	vals := []string{"GET", "POST", "success", "failure", "web", "access", "nginx", "haproxy.http"}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				v := vals[(i+g)%len(vals)]
				if got := tab.intern([]byte(v)); got != v {
					t.Errorf("intern(%q) = %q", v, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// DecodeEvent's strings, interned or not, never alias the input: a caller
// may reuse the record's buffer once decoded.
func TestDecodeEventDoesNotAliasInput(t *testing.T) {
	ev := schema.Event{}
	ev.Event.Dataset, ev.Event.Kind, ev.Event.Category = "nginx.access", "event", []string{"web"}
	ev.HTTP.Request.Method, ev.URL.Path, ev.Source.IP = "GET", "/api/x", "192.0.2.1"
	data := AppendEvent(nil, &ev)
	var got schema.Event
	if err := DecodeEvent(data, &got); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X'
	}
	if got.Event.Dataset != "nginx.access" || got.Event.Kind != "event" || got.Event.Category[0] != "web" ||
		got.HTTP.Request.Method != "GET" || got.URL.Path != "/api/x" || got.Source.IP != "192.0.2.1" {
		t.Fatalf("decoded event changed with its input: %+v", got)
	}
}

func hashSlot(t *symbolTable, s string) uint64 { return maphash.String(t.seed, s) % symbolSlots }
