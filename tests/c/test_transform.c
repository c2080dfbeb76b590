/*
 * C tests of renames, architectures, split/stack rules, slices, read mode and prefetch.
 * Usage: test_transform ARCH_FIXTURES_DIR   (written by tests/python/make_arch_fixtures.py)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stload.h"
#include "check.h"

int passed, failed;


static char dir[1024];

static stload_model *open_with(stload_options *o) {
    stload_model *m = NULL;
    stload_error *err = NULL;
    if (stload_open_dir(dir, o, &m, &err) != STLOAD_OK) {
        fprintf(stderr, "open: %s\n", stload_error_message(err));
        stload_error_free(err);
    }
    return m;
}

static void test_arch_and_info(void) {
    stload_options *o = stload_options_new();
    stload_model *m;
    stload_tensor_info info;
    stload_tensor *q = NULL, *q32 = NULL;
    stload_error *err = NULL;
    CHECK(stload_options_set_arch(o, "gpt9", &err) == STLOAD_ERR_UNSUPPORTED);
    CHECK(err && strstr(stload_error_message(err), "gpt9") != NULL);
    stload_error_free(err);
    CHECK(stload_options_set_arch(o, "llama", NULL) == STLOAD_OK);
    m = open_with(o);
    CHECK(m != NULL);
    CHECK(stload_model_info(m, "blk.0.attn_q.weight", &info, NULL) == STLOAD_OK);
    CHECK(strcmp(info.original_name, "model.layers.0.self_attn.q_proj.weight") == 0);
    CHECK(info.format == STLOAD_FORMAT_SAFETENSORS && info.rank == 2);
    CHECK(stload_model_get(m, "blk.0.attn_q.weight", STLOAD_DTYPE_NATIVE, &q, NULL) == STLOAD_OK);
    CHECK(stload_model_get(m, "blk.0.attn_q.weight", STLOAD_DTYPE_F32, &q32, NULL) == STLOAD_OK);
    CHECK(stload_tensor_nbytes(q32) == 2 * stload_tensor_nbytes(q));
    stload_tensor_free(q);
    stload_tensor_free(q32);
    stload_model_free(m);
    stload_options_free(o);
}

static void test_rename_split_stack_slice(void) {
    const char *pairs[4] = {"model.layers", "L", "model.", ""};
    const char *parts[2] = {"a", "b"};
    const uint64_t rows[2] = {10, 6};
    const char *stacked[2] = {"L.0.mlp.up_proj.weight", "L.1.mlp.up_proj.weight"};
    stload_options *o = stload_options_new();
    stload_model *m;
    stload_tensor *t = NULL, *whole = NULL;
    stload_error *err = NULL;
    CHECK(stload_options_set_rename(o, pairs, 2, NULL) == STLOAD_OK);
    CHECK(stload_options_add_split(o, "L.0.mlp.gate_proj.weight", 2, parts, rows, NULL) == STLOAD_OK);
    CHECK(stload_options_add_stack(o, 2, stacked, "ups", NULL) == STLOAD_OK);
    CHECK(stload_options_set_rename(NULL, pairs, 2, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_options_set_rename(o, NULL, 2, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_options_add_split(o, NULL, 2, parts, rows, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_options_add_stack(o, 0, stacked, "x", NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    m = open_with(o);
    CHECK(m != NULL);
    CHECK(stload_model_get(m, "b", STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_OK);
    CHECK(stload_tensor_rank(t) == 2 && stload_tensor_shape(t)[0] == 6);
    stload_tensor_free(t);
    t = NULL;
    CHECK(stload_model_get(m, "ups", STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_OK);
    CHECK(stload_tensor_rank(t) == 3 && stload_tensor_shape(t)[0] == 2);
    stload_tensor_free(t);
    t = NULL;
    /* A slice along axis 0 is the matching rows of the whole tensor. */
    CHECK(stload_model_get(m, "L.0.mlp.down_proj.weight", STLOAD_DTYPE_NATIVE, &whole, NULL) == STLOAD_OK);
    CHECK(stload_model_get_slice(m, "L.0.mlp.down_proj.weight", 0, 4, 12, STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_OK);
    CHECK(stload_tensor_nbytes(t) == 8 * 16 * 2);
    CHECK(memcmp(stload_tensor_data(t), (const char *)stload_tensor_data(whole) + 4 * 16 * 2, 8 * 16 * 2) == 0);
    stload_tensor_free(t);
    t = NULL;
    CHECK(stload_model_get_slice(m, "L.0.mlp.down_proj.weight", 1, 5, 99, 0, &t, &err) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(t == NULL && err && strstr(stload_error_message(err), "out of range") != NULL);
    stload_error_free(err);
    stload_tensor_free(whole);
    stload_model_free(m);
    stload_options_free(o);
}

static bool count_bytes(void *user, size_t done, size_t total, const char *name) {
    *(size_t *)user = done;
    return name == NULL && done <= total;
}

static void test_read_mode_and_prefetch(void) {
    stload_options *o = stload_options_new();
    stload_model *mapped, *read;
    stload_tensor *a = NULL, *b = NULL;
    size_t done = 0;
    const char *one[1] = {"lm_head.weight"};
    CHECK(stload_options_set_read_mode(o, true, NULL) == STLOAD_OK);
    CHECK(stload_options_set_check_interval_ms(o, 0, NULL) == STLOAD_OK);
    CHECK(stload_options_set_max_tensors(o, 1000, NULL) == STLOAD_OK);
    CHECK(stload_options_set_max_load_bytes(o, 1 << 30, NULL) == STLOAD_OK);
    CHECK(stload_options_set_prefetch(o, false, NULL) == STLOAD_OK);
    read = open_with(o);
    mapped = open_with(NULL);
    CHECK(read && mapped);
    CHECK(stload_model_get(read, "lm_head.weight", STLOAD_DTYPE_NATIVE, &a, NULL) == STLOAD_OK);
    CHECK(stload_model_get(mapped, "lm_head.weight", STLOAD_DTYPE_NATIVE, &b, NULL) == STLOAD_OK);
    CHECK(stload_tensor_nbytes(a) == stload_tensor_nbytes(b));
    CHECK(memcmp(stload_tensor_data(a), stload_tensor_data(b), stload_tensor_nbytes(a)) == 0);
    CHECK(stload_model_prefetch(mapped, NULL, 0, count_bytes, &done, NULL) == STLOAD_OK && done > 0);
    CHECK(stload_model_prefetch(read, one, 1, NULL, NULL, NULL) == STLOAD_OK);
    CHECK(stload_model_prefetch(NULL, NULL, 0, NULL, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    stload_tensor_free(a);
    stload_tensor_free(b);
    stload_model_free(read);
    stload_model_free(mapped);
    stload_options_free(o);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s ARCH_FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s/llama", argv[1]);
    test_arch_and_info();
    test_rename_split_stack_slice();
    test_read_mode_and_prefetch();
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
