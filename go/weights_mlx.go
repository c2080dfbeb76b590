//go:build stload_mlx

package stload

// WeightArray is what ModelWeights hands out. With the stload_mlx build tag it is an MLX
// array (MLXArray); without the tag, a host Tensor.
type WeightArray = MLXArray

// loadAll makes every tensor an MLX array in the model's cache.
func (w *ModelWeights) loadAll(dtype Dtype) error {
	return w.m.LoadMLX(dtype, nil)
}

// get returns tensor name as an MLX array, from the model's cache when loadAll made it.
func (w *ModelWeights) get(name string, dtype Dtype) (*WeightArray, error) {
	return w.m.GetMLX(name, dtype)
}
