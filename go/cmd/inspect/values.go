package main

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"strconv"
	"strings"

	"stload.dev/stload"
)

// formatValues renders up to n leading elements of data: decimal for the floats F16, BF16,
// F32, F64 and for integers and BOOL; hex per element for the other byte-sized dtypes; and
// hex of the leading bytes for the sub-byte dtypes (F4, F6), whose elements straddle bytes.
func formatValues(d stload.Dtype, data []byte, n int) string {
	bits := d.Bits()
	if bits%8 != 0 || bits == 0 {
		k := (n*bits + 7) / 8
		if k > len(data) {
			k = len(data)
		}
		s := "[" + hex.EncodeToString(data[:k])
		if k < len(data) {
			s += " ..."
		}
		return s + "]"
	}
	size := bits / 8
	var parts []string
	for i := 0; i < n && (i+1)*size <= len(data); i++ {
		parts = append(parts, formatValue(d, data[i*size:(i+1)*size]))
	}
	if len(data) > n*size {
		parts = append(parts, "...")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// formatValue renders one little-endian element e of dtype d.
func formatValue(d stload.Dtype, e []byte) string {
	le := binary.LittleEndian
	switch d {
	case stload.F32:
		return formatFloat(float64(math.Float32frombits(le.Uint32(e))), 32)
	case stload.F64:
		return formatFloat(math.Float64frombits(le.Uint64(e)), 64)
	case stload.F16:
		return formatFloat(float64(halfToFloat32(le.Uint16(e))), 32)
	case stload.BF16:
		return formatFloat(float64(math.Float32frombits(uint32(le.Uint16(e))<<16)), 32)
	case stload.Bool:
		return strconv.FormatBool(e[0] != 0)
	case stload.U8:
		return strconv.FormatUint(uint64(e[0]), 10)
	case stload.I8:
		return strconv.FormatInt(int64(int8(e[0])), 10)
	case stload.U16:
		return strconv.FormatUint(uint64(le.Uint16(e)), 10)
	case stload.I16:
		return strconv.FormatInt(int64(int16(le.Uint16(e))), 10)
	case stload.U32:
		return strconv.FormatUint(uint64(le.Uint32(e)), 10)
	case stload.I32:
		return strconv.FormatInt(int64(int32(le.Uint32(e))), 10)
	case stload.U64:
		return strconv.FormatUint(le.Uint64(e), 10)
	case stload.I64:
		return strconv.FormatInt(int64(le.Uint64(e)), 10)
	default:
		return hex.EncodeToString(e)
	}
}

// formatFloat prints the shortest decimal that reads back as the same value at that size.
func formatFloat(v float64, bitSize int) string {
	return strconv.FormatFloat(v, 'g', -1, bitSize)
}

// halfToFloat32 widens an IEEE half (exactly: every half is a float32).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN (payload kept)
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
	case frac == 0: // ±0
		return math.Float32frombits(sign)
	default: // subnormal: value = frac × 2^-24
		v := float32(frac) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
}
