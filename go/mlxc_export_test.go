//go:build stload_mlx && stload_mlxc

package stload

// The mlx-c helpers of mlxc_host.go, for the external test package.
var (
	MlxcDescribe = mlxcDescribe
	MlxcLinear   = mlxcLinear
	MlxcFree     = mlxcFree
	MlxcFloat32  = mlxcFloat32
	MlxcBfloat16 = mlxcBfloat16
)
