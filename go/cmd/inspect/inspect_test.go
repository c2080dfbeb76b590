package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"stload.dev/stload"
	"stload.dev/stload/internal/fixtures"
)

var fx *fixtures.Set

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stload-inspect-")
	if err == nil {
		fx, err = fixtures.Generate(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cannot generate the test fixtures:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestRunPrintsEveryTensor(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, []string{fx.Path(fx.Files["dtypes"]), fx.Path(fx.Files["f6"])}, 4); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	want := []string{
		"t_f32 ", "F32 ", "[2, 6] 48 bytes [0, 1, -2.5, 0.333, ...]",
		"[2, 6] 24 bytes [0, 1, -2.5, 0.33203125, ...]", // BF16
		"[2, 6] 24 bytes [0, 1, -2.5, 0.3330078, ...]",  // F16, shortest float32 text
		"[2, 6] 96 bytes [-9223372036854775808, 9223372036854775807, 0, 1, ...]",
		"[2, 3] 6 bytes [true, false, true, false, ...]",
		"scalar_f32", "[] 4 bytes [1.5]", "[0, 4] 0 bytes []",
		"F8_E4M3 ", "F4 ", "F6_E2M3 ",
		"24 tensors\n",
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("output lacks %q:\n%s", w, text)
		}
	}
	if got := strings.Count(text, "\n"); got != 25 {
		t.Errorf("%d lines, want 25:\n%s", got, text)
	}
}

func TestRunDirectoryAndErrors(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, []string{fx.Path(fx.Files["sharded"])}, 2); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "[3, 4] 48 bytes [0, 1, ...]") || !strings.HasSuffix(out.String(), "2 tensors\n") {
		t.Errorf("sharded output:\n%s", out.String())
	}
	if err := run(&out, []string{fx.Path("bad", "garbage.safetensors")}, 4); err == nil {
		t.Error("garbage file: no error")
	}
}

func TestHalfToFloat32(t *testing.T) {
	cases := map[uint16]float32{0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.9604645e-08,
		0x03ff: 6.097555e-05, 0x0400: 6.1035156e-05, 0x3555: 0.33325195}
	for h, want := range cases {
		if got := halfToFloat32(h); got != want {
			t.Errorf("halfToFloat32(%#04x) = %g, want %g", h, got, want)
		}
	}
	if !math.IsInf(float64(halfToFloat32(0xfc00)), -1) || !math.IsNaN(float64(halfToFloat32(0x7e00))) {
		t.Error("halfToFloat32: inf or nan wrong")
	}
	if math.Signbit(float64(halfToFloat32(0x8000))) != true {
		t.Error("halfToFloat32: -0 lost its sign")
	}
}

func TestFormatValuesHexForOtherDtypes(t *testing.T) {
	if got := formatValues(stload.F8E4M3, []byte{0x38, 0xc2}, 4); got != "[38, c2]" {
		t.Errorf("F8_E4M3: %s", got)
	}
	if got := formatValues(stload.F4, []byte{0x10, 0x32, 0x54}, 4); got != "[1032 ...]" {
		t.Errorf("F4: %s", got)
	}
}
