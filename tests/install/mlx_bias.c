/*
 * A C consumer of an installed MLX build of stload: it does not define STLOAD_FEATURE_MLX,
 * because the installed header of such a build defines it. Prints the linked MLX's version,
 * then tensor "bias" of the model (I32, see make_model.py) as an MLX array converted to F32:
 *
 *   mlx 0.32.4
 *   bias F32 [2] 7 -1
 *
 * Usage: mlx_bias MODEL_DIR
 */
#include <stdio.h>
#include <string.h>

#include "stload.h"

#if !defined(STLOAD_FEATURE_MLX)
#error "the installed stload.h does not define STLOAD_FEATURE_MLX"
#endif

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
        return 2;
    }
    stload_model *model = NULL;
    stload_mlx_array *arr = NULL;
    stload_error *err = NULL;
    if (stload_open_dir(argv[1], NULL, &model, &err) != STLOAD_OK ||
        stload_model_get_mlx(model, "bias", STLOAD_DTYPE_F32, &arr, &err) != STLOAD_OK) {
        fprintf(stderr, "mlx_bias: %s\n", stload_error_message(err));
        stload_error_free(err);
        stload_model_free(model);
        return 1;
    }
    /* The array outlives its model. */
    stload_model_free(model);
    printf("mlx %s\n", stload_mlx_version());
    printf("bias %s [", stload_dtype_name(stload_mlx_array_dtype(arr)));
    const uint64_t *shape = stload_mlx_array_shape(arr);
    for (size_t i = 0; i < stload_mlx_array_rank(arr); i++) {
        printf(i ? ", %llu" : "%llu", (unsigned long long)shape[i]);
    }
    printf("]");
    const unsigned char *data = stload_mlx_array_data(arr);
    for (size_t i = 0; i + sizeof(float) <= stload_mlx_array_nbytes(arr); i += sizeof(float)) {
        float v;
        memcpy(&v, data + i, sizeof v);
        printf(" %g", (double)v);
    }
    printf("\n");
    stload_mlx_array_free(arr);
    return 0;
}
