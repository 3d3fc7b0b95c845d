// Package dlist is an intrusive doubly linked list: the element types
// embed their two links, so keeping items in recency order (an LRU) costs
// two pointers per item and no allocation, unlike container/list's
// separate 48-byte elements. The list owns no items and is not safe for
// concurrent use.
package dlist

// Links are the pointers an element embeds to be on a List.
type Links[T any] struct {
	prev, next *T
}

// ListLinks returns l; embedding Links[T] in T gives *T this method, which is
// how List reaches the links.
func (l *Links[T]) ListLinks() *Links[T] { return l }

// Elem is a pointer to an element type that embeds Links.
type Elem[T any] interface {
	*T
	ListLinks() *Links[T]
}

// List is a doubly linked list of *T, front first.
type List[T any, P Elem[T]] struct {
	front, back *T
	n           int
}

// Len returns the number of elements.
func (l *List[T, P]) Len() int { return l.n }

// Front returns the first element, or nil.
func (l *List[T, P]) Front() *T { return l.front }

// Back returns the last element, or nil.
func (l *List[T, P]) Back() *T { return l.back }

// Prev returns the element before e, or nil.
func Prev[T any, P Elem[T]](e P) *T { return e.ListLinks().prev }

// Next returns the element after e, or nil.
func Next[T any, P Elem[T]](e P) *T { return e.ListLinks().next }

// PushFront puts e, which must not be on a list, first.
func (l *List[T, P]) PushFront(e *T) {
	le := P(e).ListLinks()
	le.prev, le.next = nil, l.front
	if l.front != nil {
		P(l.front).ListLinks().prev = e
	} else {
		l.back = e
	}
	l.front = e
	l.n++
}

// Remove takes e, which must be on l, off the list.
func (l *List[T, P]) Remove(e *T) {
	le := P(e).ListLinks()
	if le.prev != nil {
		P(le.prev).ListLinks().next = le.next
	} else {
		l.front = le.next
	}
	if le.next != nil {
		P(le.next).ListLinks().prev = le.prev
	} else {
		l.back = le.prev
	}
	le.prev, le.next = nil, nil
	l.n--
}

// MoveToFront puts e, which must be on l, first.
func (l *List[T, P]) MoveToFront(e *T) {
	if l.front == e {
		return
	}
	l.Remove(e)
	l.PushFront(e)
}
