package models

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// CT2DType is a CTranslate2 variable type id (include/ctranslate2/types.h).
type CT2DType uint8

// CTranslate2 type ids as written by binary versions ≥ 4.
const (
	CT2Float32  CT2DType = 0
	CT2Int8     CT2DType = 1
	CT2Int16    CT2DType = 2
	CT2Int32    CT2DType = 3
	CT2Float16  CT2DType = 4
	CT2BFloat16 CT2DType = 5
)

// Size is the item size in bytes, 0 for an unknown id.
func (d CT2DType) Size() int {
	switch d {
	case CT2Float32, CT2Int32:
		return 4
	case CT2Int16, CT2Float16, CT2BFloat16:
		return 2
	case CT2Int8:
		return 1
	}
	return 0
}

func (d CT2DType) String() string {
	names := [...]string{"float32", "int8", "int16", "int32", "float16", "bfloat16"}
	if int(d) < len(names) {
		return names[d]
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// CT2Var is one variable of a CTranslate2 model.bin: its shape (outermost
// dimension first, C order) and where its raw bytes lie in the file.
type CT2Var struct {
	Name   string
	Dims   []int
	DType  CT2DType
	Offset int64
	NBytes int64
}

// Elems is the element count (1 for a scalar).
func (v CT2Var) Elems() int64 {
	n := int64(1)
	for _, d := range v.Dims {
		n *= int64(d)
	}
	return n
}

// CT2Model is the parsed index of a model.bin. Variable data stays in the
// file and is read on demand with Data.
type CT2Model struct {
	BinaryVersion uint32
	Spec          string // "WhisperSpec" for Whisper; empty for binary version 1
	SpecRevision  uint32
	Vars          map[string]CT2Var
	Order         []string          // variables in file order
	Aliases       map[string]string // alias → target
	r             io.ReaderAt
}

// maxCT2Version is the newest model.bin layout this reader knows.
const maxCT2Version = 6

// ReadCT2 parses the variable index of a CTranslate2 model.bin (binary
// versions 1–6). It reads headers only and checks every length against size,
// so truncated or corrupt files fail with ErrBadModelFile.
func ReadCT2(r io.ReaderAt, size int64) (*CT2Model, error) {
	c := newCursor(r, size)
	m := &CT2Model{Vars: map[string]CT2Var{}, Aliases: map[string]string{}, r: r}
	var err error
	if m.BinaryVersion, err = c.u32("binary version"); err != nil {
		return nil, err
	}
	if m.BinaryVersion == 0 || m.BinaryVersion > maxCT2Version {
		return nil, fmt.Errorf("%w: CTranslate2 binary version %d (this reader knows 1–%d)",
			ErrUnsupported, m.BinaryVersion, maxCT2Version)
	}
	if m.BinaryVersion >= 2 {
		if m.Spec, err = ct2String(c, "spec name"); err != nil {
			return nil, err
		}
		if m.SpecRevision, err = c.u32("spec revision"); err != nil {
			return nil, err
		}
	}
	n, err := c.u32("variable count")
	if err != nil {
		return nil, err
	}
	// The smallest record (1-byte name, rank 0, empty data) takes 9 bytes.
	if int64(n)*9 > c.remaining() {
		return nil, fmt.Errorf("%w: %d variables cannot fit in %d bytes", ErrBadModelFile, n, c.remaining())
	}
	for i := uint32(0); i < n; i++ {
		v, err := readCT2Var(c, m.BinaryVersion)
		if err != nil {
			return nil, fmt.Errorf("variable %d of %d: %w", i, n, err)
		}
		if _, dup := m.Vars[v.Name]; dup {
			return nil, fmt.Errorf("%w: variable %q appears twice", ErrBadModelFile, v.Name)
		}
		m.Vars[v.Name] = v
		m.Order = append(m.Order, v.Name)
	}
	if m.BinaryVersion >= 3 {
		na, err := c.u32("alias count")
		if err != nil {
			return nil, err
		}
		if int64(na)*6 > c.remaining() {
			return nil, fmt.Errorf("%w: %d aliases cannot fit in %d bytes", ErrBadModelFile, na, c.remaining())
		}
		for i := uint32(0); i < na; i++ {
			alias, err := ct2String(c, "alias name")
			if err != nil {
				return nil, err
			}
			target, err := ct2String(c, "alias target")
			if err != nil {
				return nil, err
			}
			m.Aliases[alias] = target
		}
	}
	return m, nil
}

func readCT2Var(c *cursor, version uint32) (CT2Var, error) {
	var v CT2Var
	var err error
	if v.Name, err = ct2String(c, "variable name"); err != nil {
		return v, err
	}
	rank, err := c.u8("rank")
	if err != nil {
		return v, err
	}
	if rank > 8 {
		return v, fmt.Errorf("%w: %s has rank %d", ErrBadModelFile, v.Name, rank)
	}
	elems := int64(1)
	for i := 0; i < int(rank); i++ {
		d, err := c.u32("dimension")
		if err != nil {
			return v, err
		}
		if d != 0 && elems > math.MaxInt64/int64(d) {
			return v, fmt.Errorf("%w: %s: shape overflows", ErrBadModelFile, v.Name)
		}
		elems *= int64(d)
		v.Dims = append(v.Dims, int(d))
	}
	if version >= 4 {
		id, err := c.u8("dtype")
		if err != nil {
			return v, err
		}
		v.DType = CT2DType(id)
		if v.DType.Size() == 0 {
			return v, fmt.Errorf("%w: %s has unknown dtype id %d", ErrBadModelFile, v.Name, id)
		}
		nb, err := c.u32("byte count")
		if err != nil {
			return v, err
		}
		if elems > math.MaxInt64/8 || int64(nb) != elems*int64(v.DType.Size()) {
			return v, fmt.Errorf("%w: %s: %d bytes for %d elements of %s",
				ErrBadModelFile, v.Name, nb, elems, v.DType)
		}
		v.NBytes = int64(nb)
	} else {
		// Versions 1–3: u8 item size, u32 element count, no type id.
		isz, err := c.u8("item size")
		if err != nil {
			return v, err
		}
		cnt, err := c.u32("element count")
		if err != nil {
			return v, err
		}
		switch isz {
		case 4:
			v.DType = CT2Float32
		case 2:
			v.DType = CT2Float16
		case 1:
			v.DType = CT2Int8
		default:
			return v, fmt.Errorf("%w: %s has item size %d", ErrBadModelFile, v.Name, isz)
		}
		if int64(cnt) != elems {
			return v, fmt.Errorf("%w: %s: %d elements for shape %v", ErrBadModelFile, v.Name, cnt, v.Dims)
		}
		v.NBytes = int64(cnt) * int64(isz)
	}
	v.Offset = c.off
	if err := c.skip(v.NBytes, v.Name); err != nil {
		return v, err
	}
	return v, nil
}

// ct2String reads a u16 length that counts a trailing NUL, then the bytes.
func ct2String(c *cursor, what string) (string, error) {
	n, err := c.u16(what + " length")
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("%w: %s has length 0", ErrBadModelFile, what)
	}
	b, err := c.bytes(int64(n), what)
	if err != nil {
		return "", err
	}
	if b[n-1] != 0 {
		return "", fmt.Errorf("%w: %s is not NUL-terminated", ErrBadModelFile, what)
	}
	return string(b[:n-1]), nil
}

// Lookup returns a variable by name, following one alias.
func (m *CT2Model) Lookup(name string) (CT2Var, bool) {
	if v, ok := m.Vars[name]; ok {
		return v, true
	}
	if t, ok := m.Aliases[name]; ok {
		v, ok := m.Vars[t]
		return v, ok
	}
	return CT2Var{}, false
}

// Data reads a variable's raw bytes.
func (m *CT2Model) Data(v CT2Var) ([]byte, error) {
	b := make([]byte, v.NBytes)
	if _, err := m.r.ReadAt(b, v.Offset); err != nil && !(err == io.EOF && len(b) == 0) {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrBadModelFile, v.Name, err)
	}
	return b, nil
}

// Int returns an integer scalar (int8/16/32), e.g. "encoder/num_heads".
func (m *CT2Model) Int(name string) (int64, bool) {
	v, ok := m.Lookup(name)
	if !ok || len(v.Dims) != 0 {
		return 0, false
	}
	b, err := m.Data(v)
	if err != nil {
		return 0, false
	}
	switch v.DType {
	case CT2Int8:
		return int64(int8(b[0])), true
	case CT2Int16:
		return int64(int16(binary.LittleEndian.Uint16(b))), true
	case CT2Int32:
		return int64(int32(binary.LittleEndian.Uint32(b))), true
	}
	return 0, false
}
