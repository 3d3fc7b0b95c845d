package dlist

import (
	"slices"
	"testing"
)

type item struct {
	Links[item]
	v int
}

func values(l *List[item, *item]) (fwd, back []int) {
	for e := l.Front(); e != nil; e = Next(e) {
		fwd = append(fwd, e.v)
	}
	for e := l.Back(); e != nil; e = Prev(e) {
		back = append(back, e.v)
	}
	return fwd, back
}

func TestList(t *testing.T) {
	var l List[item, *item]
	items := make([]*item, 5)
	for i := range items {
		items[i] = &item{v: i}
		l.PushFront(items[i])
	}
	steps := []struct {
		name string
		do   func()
		want []int
	}{
		{"pushed 0..4", func() {}, []int{4, 3, 2, 1, 0}},
		{"move back to front", func() { l.MoveToFront(items[0]) }, []int{0, 4, 3, 2, 1}},
		{"move front to front", func() { l.MoveToFront(items[0]) }, []int{0, 4, 3, 2, 1}},
		{"remove middle", func() { l.Remove(items[3]) }, []int{0, 4, 2, 1}},
		{"remove front", func() { l.Remove(items[0]) }, []int{4, 2, 1}},
		{"remove back", func() { l.Remove(items[1]) }, []int{4, 2}},
		{"push removed again", func() { l.PushFront(items[3]) }, []int{3, 4, 2}},
	}
	for _, s := range steps {
		s.do()
		fwd, back := values(&l)
		slices.Reverse(back)
		if !slices.Equal(fwd, s.want) || !slices.Equal(back, s.want) || l.Len() != len(s.want) {
			t.Fatalf("%s: forward %v, backward(reversed) %v, len %d; want %v", s.name, fwd, back, l.Len(), s.want)
		}
	}
	l.Remove(items[3])
	l.Remove(items[4])
	l.Remove(items[2])
	if l.Front() != nil || l.Back() != nil || l.Len() != 0 {
		t.Fatal("emptied list is not empty")
	}
}
