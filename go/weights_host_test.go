//go:build !stload_mlx

package stload_test

import (
	"testing"

	"stload.dev/stload"
)

// weightsOracle returns tensor name's bytes as stored and as numpy's astype(bfloat16) gives
// them (expected.json of the fixture script): what host tensors must hold.
func weightsOracle(t *testing.T, name string) (native, bf16 []byte) {
	t.Helper()
	want, ok := fx.Tensors[name]
	if !ok {
		t.Fatalf("the fixtures have no tensor %q", name)
	}
	bf16, _ = want.AsBytes("BF16")
	return want.Bytes(), bf16
}

// Without the stload_mlx tag, ModelWeights hands out host tensors.
var _ *stload.Tensor = (*stload.WeightArray)(nil)
