//go:build !stload_mlx

package stload

// WeightArray is what ModelWeights hands out. Without the stload_mlx build tag it is a host
// Tensor (its Bytes alias the file mapping, or stload's converted copy); with the tag, an
// MLXArray.
type WeightArray = Tensor

// loadAll materialises every tensor in the model's cache (Model.Load).
func (w *ModelWeights) loadAll(dtype Dtype) error {
	return w.m.Load(dtype, nil)
}

// get returns tensor name as a host tensor, from the model's cache when loadAll made it.
func (w *ModelWeights) get(name string, dtype Dtype) (*WeightArray, error) {
	return w.m.GetAs(name, dtype)
}
