/*
 * mlx_load: load every tensor of a safetensors model as MLX arrays in float32, the way an
 * MLX host does at start-up, then check each array against stload's own conversion.
 *
 *   mlx_load MODEL_DIR
 *
 * Build against stload built with `cargo build --release --features mlx`; define
 * STLOAD_FEATURE_MLX (here, before the include) to see the MLX part of stload.h.
 * Exits 0 when every array holds the values stload_tensor_copy_to gives, 1 otherwise.
 */
#define STLOAD_FEATURE_MLX 1

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stload.h"

static int fail(const char *what, stload_error *err) {
    fprintf(stderr, "mlx_load: %s: %s\n", what, err ? stload_error_message(err) : "failed");
    stload_error_free(err);
    return 1;
}

static bool progress(void *user_data, size_t done, size_t total, const char *name) {
    size_t *calls = (size_t *)user_data;
    (*calls)++;
    if (done == total) {
        printf("loaded %zu tensors, the last \"%s\"\n", total, name);
    }
    return true;
}

/* Whether `arr` holds the values of tensor `name` as F32 (floats) or as stored (others). */
static int same_as_stload(stload_model *model, const char *name, const stload_mlx_array *arr) {
    stload_tensor *t = NULL;
    stload_error *err = NULL;
    if (stload_model_get(model, name, STLOAD_DTYPE_NATIVE, &t, &err) != STLOAD_OK) {
        return fail(name, err);
    }
    stload_dtype want = stload_mlx_array_dtype(arr);
    size_t n = stload_mlx_array_nbytes(arr);
    void *buf = malloc(n > 0 ? n : 1);
    int rc = 0;
    if (buf == NULL) {
        rc = 1;
    } else if (stload_tensor_copy_to(t, want, buf, n, &err) != STLOAD_OK) {
        rc = fail(name, err);
    } else if (n > 0 && memcmp(buf, stload_mlx_array_data(arr), n) != 0) {
        fprintf(stderr, "mlx_load: %s: values differ\n", name);
        rc = 1;
    }
    free(buf);
    stload_tensor_free(t);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: mlx_load MODEL_DIR\n");
        return 2;
    }
    printf("MLX %s\n", stload_mlx_version());
    stload_model *model = NULL;
    stload_error *err = NULL;
    if (stload_open_dir(argv[1], NULL, &model, &err) != STLOAD_OK) {
        return fail(argv[1], err);
    }
    size_t calls = 0;
    if (stload_model_load_mlx(model, STLOAD_DTYPE_F32, progress, &calls, &err) != STLOAD_OK) {
        stload_model_free(model);
        return fail("load", err);
    }
    size_t n = stload_model_len(model);
    stload_mlx_array **arrays = calloc(n > 0 ? n : 1, sizeof *arrays);
    int rc = arrays == NULL || calls != n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *name = stload_model_name(model, i);
        /* Served from the arrays stload_model_load_mlx made. */
        if (stload_model_get_mlx(model, name, STLOAD_DTYPE_F32, &arrays[i], &err) != STLOAD_OK) {
            rc = fail(name, err);
            break;
        }
        stload_mlx_array *arr = arrays[i];
        if (stload_mlx_array_eval(arr, &err) != STLOAD_OK) {
            rc = fail(name, err);
            break;
        }
        printf("%-28s %-5s [", name, stload_dtype_name(stload_mlx_array_dtype(arr)));
        for (size_t d = 0; d < stload_mlx_array_rank(arr); d++) {
            printf(d > 0 ? ", %llu" : "%llu",
                   (unsigned long long)stload_mlx_array_shape(arr)[d]);
        }
        printf("] %zu bytes%s\n", stload_mlx_array_nbytes(arr),
               stload_mlx_array_is_wrapped(arr) ? " (wraps the file)" : "");
        if (stload_mlx_array_raw(arr) == NULL || stload_mlx_array_data(arr) == NULL) {
            fprintf(stderr, "mlx_load: %s: no MLX array or data\n", name);
            rc = 1;
        }
        rc = rc || same_as_stload(model, name, arr);
    }
    /* The arrays outlive the model: free it first, then read them once more. */
    stload_model_release_all(model);
    stload_model_free(model);
    double sum = 0;
    for (size_t i = 0; arrays != NULL && i < n; i++) {
        if (arrays[i] != NULL && stload_mlx_array_dtype(arrays[i]) == STLOAD_DTYPE_F32) {
            const float *v = (const float *)stload_mlx_array_data(arrays[i]);
            size_t count = stload_mlx_array_nbytes(arrays[i]) / sizeof(float);
            for (size_t k = 0; k < count; k++) {
                if (v[k] == v[k] && v[k] - v[k] == 0) sum += v[k]; /* finite values */
            }
        }
        stload_mlx_array_free(arrays[i]);
    }
    free(arrays);
    printf("sum of finite values after the model was freed: %g\n", sum);
    printf(rc == 0 ? "ok\n" : "FAILED\n");
    return rc;
}
