package integrity

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// FileSink appends checkpoints to a file as JSON lines, fsynced per batch:
// the copy to ship to write-once storage out of the Kafka admins' reach.
type FileSink struct {
	path string
	mu   sync.Mutex
}

// NewFileSink returns a sink appending to path; the file is created on the
// first write.
func NewFileSink(path string) *FileSink { return &FileSink{path: path} }

// Append writes cks, one JSON object per line, and syncs the file.
func (s *FileSink) Append(cks []*Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o750); err != nil {
		return fmt.Errorf("checkpoint file: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("checkpoint file: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, c := range cks {
		if err := enc.Encode(c); err != nil {
			_ = f.Close()
			return fmt.Errorf("checkpoint file: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("checkpoint file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("checkpoint file: %w", err)
	}
	return f.Close()
}

// ReadCheckpointFile returns the checkpoints in a file FileSink wrote. A
// line that does not parse is an error naming the line: an auditor must
// know the copy is damaged.
func ReadCheckpointFile(path string) ([]Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint file: %w", err)
	}
	defer f.Close()
	var cks []Checkpoint
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 8<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		c, err := DecodeCheckpoint(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		cks = append(cks, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("checkpoint file %s: %w", path, err)
	}
	return cks, nil
}
