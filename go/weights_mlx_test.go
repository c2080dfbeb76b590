//go:build stload_mlx

package stload_test

import (
	"testing"

	"stload.dev/stload"
)

// weightsOracle returns tensor name's bytes as Python's mx.load gives them, as stored and
// after astype(mx.bfloat16): what MLX arrays must hold.
func weightsOracle(t *testing.T, name string) (native, bf16 []byte) {
	t.Helper()
	want, ok := mxLoad(t)[name]
	if !ok {
		t.Fatalf("mx.load gave no array %q", name)
	}
	if h, ok := want.As["BF16"]; ok {
		bf16 = unhex(t, h)
	}
	return unhex(t, want.Native), bf16
}

// With the stload_mlx tag, ModelWeights hands out MLX arrays.
var _ *stload.MLXArray = (*stload.WeightArray)(nil)
