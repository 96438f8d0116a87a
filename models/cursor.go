package models

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// cursor reads little-endian fields forward through an io.ReaderAt of known
// size, through a small window buffer. Every read is bounds-checked against
// size first, so a truncated file is an ErrBadModelFile, never a huge
// allocation or a short read mistaken for data.
type cursor struct {
	r      io.ReaderAt
	size   int64
	off    int64
	buf    []byte
	bufOff int64
}

const cursorWindow = 64 << 10

func newCursor(r io.ReaderAt, size int64) *cursor {
	return &cursor{r: r, size: size}
}

func (c *cursor) remaining() int64 { return c.size - c.off }

// bytes returns the next n bytes. The slice is valid until the next call.
func (c *cursor) bytes(n int64, what string) ([]byte, error) {
	if n < 0 || n > c.remaining() {
		return nil, fmt.Errorf("%w: truncated at offset %d reading %s (%d bytes wanted, %d left)",
			ErrBadModelFile, c.off, what, n, c.remaining())
	}
	if c.off >= c.bufOff && c.off+n <= c.bufOff+int64(len(c.buf)) {
		s := c.buf[c.off-c.bufOff : c.off-c.bufOff+n]
		c.off += n
		return s, nil
	}
	want := n
	if want < cursorWindow {
		want = min(cursorWindow, c.remaining())
	}
	// Keep the part of the old window that is still ahead, so that reads only
	// ever go forward (a plain io.Reader cannot go back).
	var keep []byte
	if end := c.bufOff + int64(len(c.buf)); c.off >= c.bufOff && c.off < end {
		keep = c.buf[c.off-c.bufOff:]
	}
	nb := make([]byte, want)
	k := copy(nb, keep)
	got, err := c.r.ReadAt(nb[k:], c.off+int64(k))
	got += k
	if int64(got) < n {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%w: reading %s at offset %d: %v", ErrBadModelFile, what, c.off, err)
	}
	c.buf = nb[:got]
	c.bufOff = c.off
	c.off += n
	return c.buf[:n], nil
}

func (c *cursor) skip(n int64, what string) error {
	if n < 0 || n > c.remaining() {
		return fmt.Errorf("%w: truncated at offset %d in %s (%d bytes wanted, %d left)",
			ErrBadModelFile, c.off, what, n, c.remaining())
	}
	c.off += n
	return nil
}

func (c *cursor) u8(what string) (uint8, error) {
	b, err := c.bytes(1, what)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (c *cursor) u16(what string) (uint16, error) {
	b, err := c.bytes(2, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (c *cursor) u32(what string) (uint32, error) {
	b, err := c.bytes(4, what)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (c *cursor) i32(what string) (int32, error) {
	v, err := c.u32(what)
	return int32(v), err
}

// forwardReaderAt adapts a plain io.Reader to the forward-only ReadAt calls a
// cursor makes, discarding the bytes it skips.
type forwardReaderAt struct {
	r   io.Reader
	pos int64
}

func (f *forwardReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < f.pos {
		return 0, fmt.Errorf("forwardReaderAt: backward read to %d from %d", off, f.pos)
	}
	if off > f.pos {
		n, err := io.CopyN(io.Discard, f.r, off-f.pos)
		f.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(f.r, p)
	f.pos += int64(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return n, err
}

// asReaderAt returns r itself when it can read at offsets, else an adapter.
func asReaderAt(r io.Reader) io.ReaderAt {
	if ra, ok := r.(io.ReaderAt); ok {
		return ra
	}
	return &forwardReaderAt{r: r}
}
