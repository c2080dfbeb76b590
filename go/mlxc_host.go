//go:build stload_mlx && stload_mlxc

package stload

// What a Go host that runs MLX through mlx-c does with MLXArray.MLXC: this file builds only
// with the tags stload_mlx and stload_mlxc and mlx-c's headers and library on the cgo flags
// (go/test.sh builds mlx-c with tests/c/build_mlx_c.sh), and the test in
// mlxc_test.go calls it. It is not part of the package's API.

// #cgo LDFLAGS: -lmlxc
// #include "mlx/c/mlx.h"
//
// // x @ transpose(astype(weight, float32)), as a linear layer computes it, through mlx-c on
// // handles of the caller (not freed here).
// static int stloadgo_mlxc_linear(void *x, void *weight, mlx_array *out) {
//   mlx_array h = {x}, w = {weight}, w32 = mlx_array_new(), wt = mlx_array_new();
//   mlx_stream s = mlx_default_cpu_stream_new();
//   int rc = mlx_astype(&w32, w, MLX_FLOAT32, s) || mlx_transpose(&wt, w32, s) ||
//            mlx_matmul(out, h, wt, s) || mlx_array_eval(*out);
//   mlx_array_free(wt);
//   mlx_array_free(w32);
//   mlx_stream_free(s);
//   return rc;
// }
import "C"

import "unsafe"

// mlxcInfo is what mlx-c reads of a handle.
type mlxcInfo struct {
	Dtype int
	Shape []int
}

// mlxcDescribe reads dtype (mlx-c's MLX_* number) and shape of the mlx-c handle ctx.
func mlxcDescribe(ctx unsafe.Pointer) mlxcInfo {
	arr := C.mlx_array{ctx: ctx}
	n := int(C.mlx_array_ndim(arr))
	info := mlxcInfo{Dtype: int(C.mlx_array_dtype(arr)), Shape: make([]int, n)}
	if n > 0 {
		for i, d := range unsafe.Slice(C.mlx_array_shape(arr), n) {
			info.Shape[i] = int(d)
		}
	}
	return info
}

// mlxcLinear returns the float32 values of x @ weight^T computed by mlx-c.
func mlxcLinear(x, weight unsafe.Pointer) ([]float32, bool) {
	out := C.mlx_array_new()
	defer C.mlx_array_free(out)
	if C.stloadgo_mlxc_linear(x, weight, &out) != 0 {
		return nil, false
	}
	n := int(C.mlx_array_size(out))
	vals := make([]float32, n)
	if n > 0 {
		copy(vals, unsafe.Slice((*float32)(unsafe.Pointer(C.mlx_array_data_float32(out))), n))
	}
	return vals, true
}

// mlxcFree releases an mlx-c handle with mlx-c's mlx_array_free.
func mlxcFree(ctx unsafe.Pointer) {
	C.mlx_array_free(C.mlx_array{ctx: ctx})
}

// mlxcFloat32 is MLX_FLOAT32 and mlxcBfloat16 MLX_BFLOAT16 of mlx-c's enum.
const (
	mlxcFloat32  = int(C.MLX_FLOAT32)
	mlxcBfloat16 = int(C.MLX_BFLOAT16)
)
