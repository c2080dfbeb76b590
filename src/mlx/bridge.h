/*
 * bridge.h: the C-linkage functions stload's Rust code calls to use MLX's C++ API.
 * Internal to stload (not installed); src/mlx/mod.rs declares the same functions.
 *
 * An array handle is a heap-allocated mlx::core::array, created by the bridge and freed with
 * stload_mlx_bridge_free. No C++ exception leaves the bridge: fallible functions return a
 * STLOAD_MLX_BRIDGE_* status and write a NUL-terminated message into (msg, msg_len).
 */
#ifndef STLOAD_MLX_BRIDGE_H
#define STLOAD_MLX_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Statuses of fallible bridge functions. */
#define STLOAD_MLX_BRIDGE_OK 0
#define STLOAD_MLX_BRIDGE_INVALID 1 /* bad dtype or shape; MLX refused an argument */
#define STLOAD_MLX_BRIDGE_NO_MEMORY 2 /* std::bad_alloc */
#define STLOAD_MLX_BRIDGE_FAILED 3 /* any other exception from MLX */

/* Element types, numbered by the bridge (not MLX's own enum order). */
#define STLOAD_MLX_BRIDGE_BOOL 0
#define STLOAD_MLX_BRIDGE_U8 1
#define STLOAD_MLX_BRIDGE_U16 2
#define STLOAD_MLX_BRIDGE_U32 3
#define STLOAD_MLX_BRIDGE_U64 4
#define STLOAD_MLX_BRIDGE_I8 5
#define STLOAD_MLX_BRIDGE_I16 6
#define STLOAD_MLX_BRIDGE_I32 7
#define STLOAD_MLX_BRIDGE_I64 8
#define STLOAD_MLX_BRIDGE_F16 9
#define STLOAD_MLX_BRIDGE_F32 10
#define STLOAD_MLX_BRIDGE_F64 11
#define STLOAD_MLX_BRIDGE_BF16 12
#define STLOAD_MLX_BRIDGE_C64 13

/* Releases the caller's reference `ctx` once MLX no longer needs the wrapped bytes. */
typedef void (*stload_mlx_bridge_release_fn)(void *ctx);

/* An array over `data` (rank dims of `shape`, element type `dtype`) through MLX's
 * external-pointer constructor: MLX wraps the bytes where its allocator can (unified memory)
 * and copies them otherwise (CPU). `release(ctx)` runs exactly once, also on failure: right
 * after the copy, or when the last array using the bytes is gone. MLX never writes to `data`
 * through this array. `*wrapped` tells whether the array aliases `data` (no copy). */
int stload_mlx_bridge_wrap(void *data, const int32_t *shape, size_t rank, int dtype,
                           stload_mlx_bridge_release_fn release, void *ctx, void **out,
                           int *wrapped, char *msg, size_t msg_len);

/* A new evaluated array with uninitialised memory from MLX's allocator; `*data` receives the
 * writable host pointer (fill it before any other use of the array). */
int stload_mlx_bridge_alloc(const int32_t *shape, size_t rank, int dtype, void **out,
                            void **data, char *msg, size_t msg_len);

/* `astype(arr, dtype)`, evaluated, as a new array. */
int stload_mlx_bridge_astype(const void *arr, int dtype, void **out, char *msg, size_t msg_len);

/* Evaluates `arr` (a no-op for arrays that already hold data). */
int stload_mlx_bridge_eval(void *arr, char *msg, size_t msg_len);

/* A new handle on the same array (shares data); NULL when out of memory. */
void *stload_mlx_bridge_clone(const void *arr);

/* Frees a handle from this bridge; NULL is a no-op. */
void stload_mlx_bridge_free(void *arr);

/* Element type (STLOAD_MLX_BRIDGE_*), or -1 for a type the bridge does not name. */
int stload_mlx_bridge_dtype(const void *arr);

/* Number of dimensions. */
size_t stload_mlx_bridge_ndim(const void *arr);

/* Dimension i (i < ndim). */
int32_t stload_mlx_bridge_dim(const void *arr, size_t i);

/* Byte length of the elements. */
size_t stload_mlx_bridge_nbytes(const void *arr);

/* Host pointer to the data when the array is evaluated and row-contiguous, else NULL. */
const void *stload_mlx_bridge_data(const void *arr);

/* MLX's version string, static. */
const char *stload_mlx_bridge_version(void);

#ifdef __cplusplus
}
#endif

#endif /* STLOAD_MLX_BRIDGE_H */
