/*
 * test_mlx_c: stload_mlx_array_to_mlx_c hands mlx-c (MLX's C API) an mlx_array that mlx-c's own
 * functions use: shape, dtype, data, astype and a matmul with the loaded weights, checked
 * against stload's own bytes and conversion. The mlx-c handles outlive the stload arrays and
 * the model, as the header promises. Run under valgrind by run_mlx.sh.
 *
 *   test_mlx_c SHARDED_FIXTURE_DIR    (tests/python/make_fixtures.py OUT/sharded)
 */
#define STLOAD_FEATURE_MLX 1

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlx/c/mlx.h"
#include "stload.h"

#include "check.h"

int passed, failed;

#define WEIGHT "model.layers.0.weight" /* BF16 [4, 4] */
#define HEAD "lm_head.weight"          /* F32 [2, 4] */

/* stload's values of tensor `name` converted to `dtype`, in new memory of `n` bytes. */
static void *stload_values(const stload_model *model, const char *name, stload_dtype dtype,
                           size_t n) {
    stload_tensor *t = NULL;
    void *buf = malloc(n);
    CHECK(buf != NULL);
    CHECK(stload_model_get(model, name, STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_OK);
    CHECK(stload_tensor_copy_to(t, dtype, buf, n, NULL) == STLOAD_OK);
    stload_tensor_free(t);
    return buf;
}

/* An mlx-c handle on tensor `name` (as stored), made through a stload array freed at once. */
static mlx_array to_mlx_c(const stload_model *model, const char *name) {
    stload_mlx_array *arr = NULL;
    mlx_array out = mlx_array_new();
    CHECK(stload_model_get_mlx(model, name, STLOAD_DTYPE_NATIVE, &arr, NULL) == STLOAD_OK);
    CHECK(stload_mlx_array_to_mlx_c(arr, &out, NULL) == STLOAD_OK);
    CHECK(out.ctx != NULL);
    stload_mlx_array_free(arr);
    return out;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_mlx_c SHARDED_FIXTURE_DIR\n");
        return 2;
    }
    stload_model *model = NULL;
    stload_error *err = NULL;
    if (stload_open_dir(argv[1], NULL, &model, &err) != STLOAD_OK) {
        fprintf(stderr, "test_mlx_c: %s\n", stload_error_message(err));
        stload_error_free(err);
        return 1;
    }

    /* Bad arguments: an error, nothing written. */
    stload_mlx_array *arr = NULL;
    CHECK(stload_model_get_mlx(model, WEIGHT, STLOAD_DTYPE_NATIVE, &arr, NULL) == STLOAD_OK);
    mlx_array untouched = mlx_array_new();
    CHECK(stload_mlx_array_to_mlx_c(NULL, &untouched, &err) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err != NULL && strstr(stload_error_message(err), "arr") != NULL);
    stload_error_free(err);
    err = NULL;
    CHECK(untouched.ctx == NULL);
    CHECK(stload_mlx_array_to_mlx_c(arr, NULL, &err) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err != NULL && strstr(stload_error_message(err), "out") != NULL);
    stload_error_free(err);
    err = NULL;
    /* Two handles on one array are independent: freeing one leaves the other. */
    mlx_array twice = mlx_array_new();
    CHECK(stload_mlx_array_to_mlx_c(arr, &twice, NULL) == STLOAD_OK);
    CHECK(twice.ctx != NULL && twice.ctx != stload_mlx_array_raw(arr));
    CHECK(mlx_array_free(twice) == 0);
    stload_mlx_array_free(arr);

    mlx_array w = to_mlx_c(model, WEIGHT);
    mlx_array h = to_mlx_c(model, HEAD);
    void *w_bf16 = stload_values(model, WEIGHT, STLOAD_DTYPE_BF16, 4 * 4 * 2);
    float *w_f32 = stload_values(model, WEIGHT, STLOAD_DTYPE_F32, 4 * 4 * 4);
    float *h_f32 = stload_values(model, HEAD, STLOAD_DTYPE_F32, 2 * 4 * 4);
    /* The mlx-c handles hold their data on their own. */
    stload_model_free(model);

    /* What mlx-c reads of the handles. */
    CHECK(mlx_array_ndim(w) == 2);
    CHECK(mlx_array_shape(w)[0] == 4 && mlx_array_shape(w)[1] == 4);
    CHECK(mlx_array_dtype(w) == MLX_BFLOAT16);
    CHECK(mlx_array_nbytes(w) == 32);
    CHECK(mlx_array_dtype(h) == MLX_FLOAT32);
    CHECK(mlx_array_ndim(h) == 2 && mlx_array_shape(h)[0] == 2 && mlx_array_shape(h)[1] == 4);
    CHECK(mlx_array_eval(w) == 0);
    const float *h_data = mlx_array_data_float32(h);
    CHECK(h_data != NULL && memcmp(h_data, h_f32, 32) == 0);

    /* MLX operations on them: a bit view (C has no bfloat16 accessor), astype (exact) and a
     * matmul head @ weight. */
    mlx_stream s = mlx_default_cpu_stream_new();
    mlx_array w_bits = mlx_array_new();
    CHECK(mlx_view(&w_bits, w, MLX_UINT16, s) == 0);
    CHECK(mlx_array_eval(w_bits) == 0);
    const uint16_t *w_data = mlx_array_data_uint16(w_bits);
    CHECK(w_data != NULL && memcmp(w_data, w_bf16, 32) == 0);
    CHECK(mlx_array_free(w_bits) == 0);
    mlx_array w32 = mlx_array_new();
    mlx_array y = mlx_array_new();
    CHECK(mlx_astype(&w32, w, MLX_FLOAT32, s) == 0);
    CHECK(mlx_array_eval(w32) == 0);
    CHECK(memcmp(mlx_array_data_float32(w32), w_f32, 64) == 0);
    CHECK(mlx_matmul(&y, h, w32, s) == 0);
    CHECK(mlx_array_eval(y) == 0);
    CHECK(mlx_array_ndim(y) == 2 && mlx_array_shape(y)[0] == 2 && mlx_array_shape(y)[1] == 4);
    const float *y_data = mlx_array_data_float32(y);
    CHECK(y_data != NULL);
    for (int i = 0; y_data != NULL && i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            double want = 0;
            for (int k = 0; k < 4; k++) {
                want += (double)h_f32[i * 4 + k] * (double)w_f32[k * 4 + j];
            }
            /* The fixture mixes inf and nan into the weights: those give nan here too. */
            double got = y_data[i * 4 + j];
            CHECK(isnan(want) ? isnan(got) : fabs(got - want) <= 1e-5 * (1 + fabs(want)));
        }
    }

    CHECK(mlx_array_free(y) == 0);
    CHECK(mlx_array_free(w32) == 0);
    CHECK(mlx_array_free(h) == 0);
    CHECK(mlx_array_free(w) == 0);
    CHECK(mlx_stream_free(s) == 0);
    free(w_bf16);
    free(w_f32);
    free(h_f32);
    printf("mlx-c: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
