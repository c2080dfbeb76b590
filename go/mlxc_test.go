//go:build stload_mlx && stload_mlxc

package stload_test

import (
	"math"
	"testing"

	"stload.dev/stload"
)

// A Go host using mlx-c: MLXC handles work with mlx-c's own functions (dtype, shape, astype,
// matmul), outlive the stload arrays and the model, and are freed with mlx_array_free.
func TestMLXCInterop(t *testing.T) {
	m := openMLXFixtures(t)
	w, err := m.GetMLX("t_bf16", stload.Native) // BF16 [2, 6]
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.GetMLX("t_f32", stload.Native) // F32 [2, 6]
	if err != nil {
		t.Fatal(err)
	}
	wc, err := w.MLXC()
	if err != nil || wc == nil || wc == w.Raw() {
		t.Fatalf("MLXC: %v %v", wc, err)
	}
	defer stload.MlxcFree(wc)
	hc, err := h.MLXC()
	if err != nil {
		t.Fatal(err)
	}
	defer stload.MlxcFree(hc)
	wInfo, hInfo := stload.MlxcDescribe(wc), stload.MlxcDescribe(hc)
	if wInfo.Dtype != stload.MlxcBfloat16 || len(wInfo.Shape) != 2 || wInfo.Shape[0] != 2 || wInfo.Shape[1] != 6 {
		t.Errorf("mlx-c sees the BF16 weight as %+v", wInfo)
	}
	if hInfo.Dtype != stload.MlxcFloat32 {
		t.Errorf("mlx-c sees the F32 tensor as %+v", hInfo)
	}

	// stload's own values for the reference product.
	floats := func(name string) []float32 {
		c, err := m.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		v, err := c.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	wv, hv := floats("t_bf16"), floats("t_f32")
	w.Close()
	h.Close()
	m.Close() // the mlx-c handles hold their data on their own

	got, ok := stload.MlxcLinear(hc, wc) // [2, 6] @ [6, 2]
	if !ok || len(got) != 4 {
		t.Fatalf("mlx-c linear: %v %v", got, ok)
	}
	for i := 0; i < 2; i++ {
		for j := 0; j < 2; j++ {
			want := 0.0
			for k := 0; k < 6; k++ {
				want += float64(hv[i*6+k]) * float64(wv[j*6+k])
			}
			if d := math.Abs(float64(got[i*2+j]) - want); d > 1e-5*(1+math.Abs(want)) {
				t.Errorf("mlx-c [%d,%d] = %v, want %v", i, j, got[i*2+j], want)
			}
		}
	}
}
