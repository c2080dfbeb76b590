//go:build !stload_mlx

package stload

// HasMLX reports whether the package was built with MLX (the stload_mlx build tag, which
// adds Model.GetMLX, Model.LoadMLX and MLXArray).
const HasMLX = false
