package stload_test

import (
	"errors"
	"strings"
	"testing"

	"stload.dev/stload"
)

func TestDtypeNamesRoundTrip(t *testing.T) {
	all := stload.Dtypes()
	if len(all) != 22 {
		t.Fatalf("Dtypes() has %d entries, want 22", len(all))
	}
	for i, d := range all {
		if uint32(d) != uint32(i+1) {
			t.Errorf("Dtypes()[%d] = %d, want %d", i, d, i+1)
		}
		for _, name := range []string{d.String(), strings.ToLower(d.String())} {
			got, err := stload.ParseDtype(name)
			if err != nil || got != d {
				t.Errorf("ParseDtype(%q) = %v, %v; want %v", name, got, err, d)
			}
		}
		if d.Bits() <= 0 {
			t.Errorf("%v.Bits() = %d", d, d.Bits())
		}
	}
}

func TestBlockDtypes(t *testing.T) {
	blocks := stload.BlockDtypes()
	if len(blocks) != 26 {
		t.Fatalf("BlockDtypes() has %d entries, want 26", len(blocks))
	}
	for i, d := range blocks {
		if uint32(d) != uint32(23+i) {
			t.Errorf("BlockDtypes()[%d] = %d, want %d (after the 22 element types)", i, d, 23+i)
		}
		if got, err := stload.ParseDtype(strings.ToLower(d.String())); err != nil || got != d {
			t.Errorf("ParseDtype(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
		if d.Bits() != 0 || d.BlockSize() < 32 || d.BlockBytes() <= 0 {
			t.Errorf("%v: Bits %d, BlockSize %d, BlockBytes %d", d, d.Bits(), d.BlockSize(), d.BlockBytes())
		}
	}
	sizes := map[stload.Dtype][2]int{stload.Q4_K: {256, 144}, stload.Q8_0: {32, 34},
		stload.MXFP4: {32, 17}, stload.F4: {2, 1}, stload.F6E2M3: {4, 3}, stload.BF16: {1, 2},
		stload.Native: {0, 0}}
	for d, want := range sizes {
		if got := [2]int{d.BlockSize(), d.BlockBytes()}; got != want {
			t.Errorf("%v: BlockSize, BlockBytes = %v, want %v", d, got, want)
		}
	}
	if stload.IQ2_XXS.String() != "IQ2_XXS" {
		t.Errorf("IQ2_XXS.String() = %q", stload.IQ2_XXS.String())
	}
}

func TestDtypeDetails(t *testing.T) {
	bits := map[stload.Dtype]int{stload.F4: 4, stload.F6E2M3: 6, stload.F6E3M2: 6, stload.Bool: 8,
		stload.BF16: 16, stload.F32: 32, stload.C64: 64, stload.F8E8M0: 8, stload.Native: 0}
	for d, want := range bits {
		if d.Bits() != want {
			t.Errorf("%v.Bits() = %d, want %d", d, d.Bits(), want)
		}
	}
	names := map[stload.Dtype]string{stload.Native: "NATIVE", stload.F8E4M3: "F8_E4M3",
		stload.F8E5M2FNUZ: "F8_E5M2FNUZ", stload.Bool: "BOOL", stload.Dtype(99): "Dtype(99)"}
	for d, want := range names {
		if d.String() != want {
			t.Errorf("Dtype(%d).String() = %q, want %q", uint32(d), d.String(), want)
		}
	}
	aliases := map[string]stload.Dtype{"float32": stload.F32, "bfloat16": stload.BF16,
		"half": stload.F16, "int64": stload.I64, "float8_e4m3fn": stload.F8E4M3}
	for name, want := range aliases {
		if got, err := stload.ParseDtype(name); err != nil || got != want {
			t.Errorf("ParseDtype(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := stload.ParseDtype("F12"); !errors.Is(err, stload.ErrNotFound) {
		t.Errorf("ParseDtype(F12) error = %v, want ErrNotFound", err)
	}
	if _, err := stload.ParseDtype("F32\x00"); !errors.Is(err, stload.ErrInvalidArgument) {
		t.Errorf("ParseDtype with NUL: error = %v, want ErrInvalidArgument", err)
	}
}
