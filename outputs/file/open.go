package file

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
)

// blockSize is how much of a file is read back per step when loading ids.
const blockSize = 64 << 10

// openKindFile opens path for appending, cuts a torn last line and loads the
// ids of its last n lines. It reads the file backwards from the end, so
// opening a large file costs only the window, not the whole file.
func openKindFile(path string, n int) (*kindFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	kf := &kindFile{f: f, seen: newWindow(n)}
	if err := kf.load(n); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return kf, nil
}

func (kf *kindFile) load(n int) error {
	st, err := kf.f.Stat()
	if err != nil {
		return err
	}
	end, err := kf.lastLineEnd(st.Size())
	if err != nil {
		return err
	}
	if end < st.Size() {
		if err := kf.f.Truncate(end); err != nil {
			return err
		}
		kf.truncated = st.Size() - end
	}
	kf.size = end

	var ids []string // newest first
	// data holds bytes [pos, boundary) not yet split into lines; it always
	// ends with a newline (or is empty) and may start mid-line.
	var data []byte
	for pos := end; pos > 0 && len(ids) < n; {
		start := max(0, pos-blockSize)
		block := make([]byte, pos-start, pos-start+int64(len(data)))
		if _, err := kf.f.ReadAt(block, start); err != nil && err != io.EOF {
			return err
		}
		data = append(block, data...)
		pos = start
		for len(data) > 0 && len(ids) < n {
			i := bytes.LastIndexByte(data[:len(data)-1], '\n')
			if i < 0 {
				if pos == 0 { // the file's first line
					if id, ok := idOf(data[:len(data)-1]); ok {
						ids = append(ids, id)
					}
					data = nil
				}
				break
			}
			if id, ok := idOf(data[i+1 : len(data)-1]); ok {
				ids = append(ids, id)
			}
			data = data[:i+1]
		}
	}
	slices.Reverse(ids)
	for _, id := range ids {
		kf.seen.add(id)
	}
	return nil
}

// lastLineEnd returns the offset just past the file's last newline: what
// follows it is a line torn by a crash.
func (kf *kindFile) lastLineEnd(size int64) (int64, error) {
	for pos := size; pos > 0; {
		start := max(0, pos-blockSize)
		block := make([]byte, pos-start)
		if _, err := kf.f.ReadAt(block, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(block, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		pos = start
	}
	return 0, nil
}

// window remembers the last n ids added.
type window struct {
	ring []string
	next int
	full bool
	set  map[string]struct{}
}

func newWindow(n int) *window {
	return &window{ring: make([]string, n), set: make(map[string]struct{}, n)}
}

func (w *window) has(id string) bool {
	_, ok := w.set[id]
	return ok
}

func (w *window) add(id string) {
	if len(w.ring) == 0 || w.has(id) {
		return
	}
	if w.full {
		delete(w.set, w.ring[w.next])
	}
	w.ring[w.next] = id
	w.set[id] = struct{}{}
	w.next++
	if w.next == len(w.ring) {
		w.next, w.full = 0, true
	}
}
