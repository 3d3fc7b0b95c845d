package syslog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errFraming means an octet-counted stream carried something other than
// "LEN SP": the stream cannot be resynchronised, so the connection is closed.
var errFraming = errors.New("syslog: invalid octet count")

// Framing modes of a TCP connection, chosen by its first byte (RFC 6587).
const (
	modeUnknown = iota
	modeOctet   // "LEN SP MSG", LEN in decimal without leading zero
	modeLine    // MSG terminated by LF (or NUL, as some old senders do)
)

// maxOctetDigits bounds the LEN prefix: 10 digits cover any sane message and
// stop a garbage stream from being read as a huge count.
const maxOctetDigits = 10

// framer splits a TCP byte stream into syslog frames.
type framer struct {
	r    *bufio.Reader
	max  int    // longest frame kept; the rest is discarded
	mode int    // modeUnknown until the first frame
	acc  []byte // frames not contiguous in r's buffer are assembled here
}

func newFramer(r io.Reader, max int) *framer {
	// The buffer holds most frames whole, so they are returned without a
	// copy; 64 KiB also amortises read syscalls under load.
	return &framer{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next frame (valid until the following call) and whether
// it was cut to f.max bytes. At the end of the stream an unterminated line
// frame is returned first; then io.EOF.
func (f *framer) next() (frame []byte, truncated bool, err error) {
	if f.mode == modeUnknown {
		b, err := f.r.Peek(1)
		if err != nil {
			return nil, false, err
		}
		if b[0] >= '1' && b[0] <= '9' {
			f.mode = modeOctet
		} else {
			f.mode = modeLine
		}
	}
	if f.mode == modeOctet {
		return f.nextOctet()
	}
	return f.nextLine()
}

func (f *framer) nextOctet() ([]byte, bool, error) {
	// Tolerate line terminators between frames (senders whose template ends
	// in "\n" outside the count).
	n, digits := 0, 0
	for {
		c, err := f.r.ReadByte()
		if err != nil {
			if digits > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, false, err
		}
		if digits == 0 && (c == '\n' || c == '\r' || c == 0) {
			continue
		}
		if c == ' ' && digits > 0 {
			break
		}
		if c < '0' || c > '9' || (digits == 0 && c == '0') || digits == maxOctetDigits {
			return nil, false, errFraming
		}
		n = n*10 + int(c-'0')
		digits++
	}
	keep := min(n, f.max)
	var frame []byte
	peeked := keep <= f.r.Size()
	if peeked {
		b, err := f.r.Peek(keep)
		if err != nil {
			return nil, false, unexpected(err)
		}
		frame = b
		// Discard cannot fail for bytes already peeked.
		_, _ = f.r.Discard(keep)
	} else {
		f.acc = f.acc[:0]
		if cap(f.acc) < keep {
			f.acc = make([]byte, 0, keep)
		}
		f.acc = f.acc[:keep]
		if _, err := io.ReadFull(f.r, f.acc); err != nil {
			return nil, false, unexpected(err)
		}
		frame = f.acc
	}
	if n > keep {
		// The frame is only returned after the rest is skipped, so a
		// Peek'ed frame would be overwritten: copy it first.
		if peeked {
			f.acc = append(f.acc[:0], frame...)
			frame = f.acc
		}
		if _, err := f.r.Discard(n - keep); err != nil {
			return nil, false, unexpected(err)
		}
		return frame, true, nil
	}
	return frame, false, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// nextLine returns bytes up to the next LF or NUL (both dropped).
func (f *framer) nextLine() ([]byte, bool, error) {
	f.acc = f.acc[:0]
	truncated := false
	for {
		if f.r.Buffered() == 0 {
			if _, err := f.r.Peek(1); err != nil {
				if errors.Is(err, io.EOF) && (len(f.acc) > 0 || truncated) {
					// The sender closed after an unterminated message: the
					// close ends it.
					return f.acc, truncated, nil
				}
				return nil, false, err
			}
		}
		buf, _ := f.r.Peek(f.r.Buffered())
		end := bytes.IndexByte(buf, '\n')
		scan := buf
		if end >= 0 {
			scan = buf[:end]
		}
		if z := bytes.IndexByte(scan, 0); z >= 0 {
			end = z
		}
		if end >= 0 {
			piece := buf[:end]
			if len(f.acc) == 0 && !truncated && len(piece) <= f.max {
				// Common case: the whole frame is in the buffer.
				_, _ = f.r.Discard(end + 1)
				return piece, false, nil
			}
			truncated = f.keep(piece) || truncated
			_, _ = f.r.Discard(end + 1)
			return f.acc, truncated, nil
		}
		truncated = f.keep(buf) || truncated
		_, _ = f.r.Discard(len(buf))
	}
}

// keep appends what fits under f.max of b to f.acc and reports whether some
// of b did not fit.
func (f *framer) keep(b []byte) bool {
	room := f.max - len(f.acc)
	if room >= len(b) {
		f.acc = append(f.acc, b...)
		return false
	}
	if room > 0 {
		f.acc = append(f.acc, b[:room]...)
	}
	return true
}
