/*
 * inspect: print every tensor of a safetensors model: name, dtype, shape, bytes, first values.
 *
 *   inspect MODEL_DIR
 *   inspect FILE.safetensors [FILE.safetensors ...]
 */
#include <stdio.h>
#include <string.h>

#include "stload.h"

/* Prints up to `n` leading values of the common dtypes, raw bytes otherwise. */
static void print_values(const stload_tensor *t, size_t n) {
    const unsigned char *p = (const unsigned char *)stload_tensor_data(t);
    size_t bytes = stload_tensor_nbytes(t);
    stload_dtype dtype = stload_tensor_dtype(t);
    size_t size = stload_dtype_bits(dtype) / 8;
    size_t i;
    printf("[");
    for (i = 0; size > 0 && i < n && (i + 1) * size <= bytes; i++) {
        const unsigned char *e = p + i * size;
        if (i > 0) printf(", ");
        if (dtype == STLOAD_DTYPE_F32) {
            float v;
            memcpy(&v, e, sizeof v);
            printf("%g", v);
        } else if (dtype == STLOAD_DTYPE_F64) {
            double v;
            memcpy(&v, e, sizeof v);
            printf("%g", v);
        } else if (dtype == STLOAD_DTYPE_BF16) {
            /* bfloat16 is the upper half of a float32. */
            unsigned int bits = ((unsigned int)e[0] | ((unsigned int)e[1] << 8)) << 16;
            float v;
            memcpy(&v, &bits, sizeof v);
            printf("%g", v);
        } else if (dtype == STLOAD_DTYPE_I64) {
            long long v;
            memcpy(&v, e, sizeof v);
            printf("%lld", v);
        } else if (dtype == STLOAD_DTYPE_I32) {
            int v;
            memcpy(&v, e, sizeof v);
            printf("%d", v);
        } else if (dtype == STLOAD_DTYPE_U8 || dtype == STLOAD_DTYPE_BOOL) {
            printf("%u", (unsigned)e[0]);
        } else {
            size_t b;
            for (b = 0; b < size; b++) printf("%02x", (unsigned)e[b]);
        }
    }
    if (bytes > n * size) printf(", ...");
    printf("]");
}

static int fail(const char *what, stload_error *err) {
    fprintf(stderr, "inspect: %s: %s\n", what, stload_error_message(err));
    stload_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    stload_model *model = NULL;
    stload_error *err = NULL;
    stload_status st;
    size_t i, n;

    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR | FILE.safetensors...\n", argv[0]);
        return 2;
    }
    if (argc == 2 && strstr(argv[1], ".safetensors") == NULL) {
        st = stload_open_dir(argv[1], NULL, &model, &err);
    } else {
        st = stload_open_files((const char *const *)(argv + 1), (size_t)(argc - 1), NULL, &model, &err);
    }
    if (st != STLOAD_OK) return fail("open", err);

    n = stload_model_len(model);
    for (i = 0; i < n; i++) {
        const char *name = stload_model_name(model, i);
        stload_tensor *t = NULL;
        size_t d, rank;
        const uint64_t *shape;
        if (stload_model_get(model, name, STLOAD_DTYPE_NATIVE, &t, &err) != STLOAD_OK) {
            stload_model_free(model);
            return fail(name, err);
        }
        rank = stload_tensor_rank(t);
        shape = stload_tensor_shape(t);
        printf("%-40s %-11s [", name, stload_dtype_name(stload_tensor_dtype(t)));
        for (d = 0; d < rank; d++) printf(d ? ", %llu" : "%llu", (unsigned long long)shape[d]);
        printf("] %zu bytes ", stload_tensor_nbytes(t));
        print_values(t, 4);
        printf("\n");
        stload_tensor_free(t);
    }
    printf("%zu tensors\n", n);
    stload_model_free(model);
    return 0;
}
