//go:build stload_mlx && stload_mlxc

// Command mlxweights loads a model the way an MLX engine in the style of ollama's image
// generator does, with stload in place of its loader: open a directory, Load(BF16), Get the
// token embeddings, run one MLX operation on them through mlx-c, release.
//
//	mlxweights MODEL_DIR
//
// It prints the embeddings' dtype and shape and their sum as MLX computes it. Build with the
// tags stload_mlx and stload_mlxc and mlx-c on the cgo flags (see go/test.sh).
package main

// #cgo LDFLAGS: -lmlxc
// #include "mlx/c/mlx.h"
//
// // The sum of all elements of the mlx-c array ctx, in float32.
// static int sum_f32(void *ctx, float *out) {
//   mlx_array a = {ctx}, f = mlx_array_new(), s = mlx_array_new();
//   mlx_stream st = mlx_default_cpu_stream_new();
//   int rc = mlx_astype(&f, a, MLX_FLOAT32, st) || mlx_sum(&s, f, false, st) ||
//            mlx_array_eval(s) || mlx_array_item_float32(out, s);
//   mlx_array_free(s);
//   mlx_array_free(f);
//   mlx_stream_free(st);
//   return rc;
// }
import "C"

import (
	"fmt"
	"log"
	"os"

	"stload.dev/stload"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mlxweights MODEL_DIR")
		os.Exit(2)
	}
	weights, err := stload.LoadModelWeights(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	defer weights.Close()
	if err := weights.Load(stload.BF16); err != nil {
		log.Fatal(err)
	}
	emb, err := weights.Get("model.embed_tokens.weight")
	if err != nil {
		log.Fatal(err)
	}
	// The engine's MLX code runs on an mlx-c handle of its own, freed with mlx_array_free.
	ctx, err := emb.MLXC()
	if err != nil {
		log.Fatal(err)
	}
	arr := C.mlx_array{ctx: ctx}
	defer C.mlx_array_free(arr)
	var sum C.float
	if C.sum_f32(ctx, &sum) != 0 {
		log.Fatal("mlx-c: sum failed")
	}
	fmt.Printf("%v %v sum %.6g\n", emb.Dtype(), emb.Shape(), float32(sum))
	weights.ReleaseAll()
}
