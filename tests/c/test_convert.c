/*
 * C tests of conversion: stload_convert, stload_tensor_copy_to, converted gets, stload_model_load.
 * Usage: test_convert FIXTURES_DIR   (written by tests/python/make_fixtures.py)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stload.h"
#include "check.h"

int passed, failed;


/* bfloat16 -> float32 is exact: the bf16 bits are the upper half of the f32 bits. */
static float bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void test_buffer_conversion(void) {
    uint16_t bf[4] = {0x3f80, 0xc000, 0x7f80, 0x0001}; /* 1, -2, +inf, smallest subnormal */
    float out[4], back_src[2] = {1.0f, 3.0f};
    uint16_t back[2];
    stload_error *err = NULL;
    int i;
    CHECK(stload_convert(bf, STLOAD_DTYPE_BF16, out, STLOAD_DTYPE_F32, 4, NULL) == STLOAD_OK);
    for (i = 0; i < 4; i++) CHECK(memcmp(&out[i], &(float){bf16_to_f32(bf[i])}, 4) == 0);
    CHECK(stload_convert(back_src, STLOAD_DTYPE_F32, back, STLOAD_DTYPE_BF16, 2, NULL) == STLOAD_OK);
    CHECK(back[0] == 0x3f80 && back[1] == 0x4040);
    CHECK(stload_convert(NULL, STLOAD_DTYPE_F32, NULL, STLOAD_DTYPE_F16, 0, NULL) == STLOAD_OK);
    CHECK(stload_convert(bf, STLOAD_DTYPE_BF16, NULL, STLOAD_DTYPE_F32, 4, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_convert(bf, STLOAD_DTYPE_NATIVE, out, STLOAD_DTYPE_F32, 4, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_convert(out, STLOAD_DTYPE_F32, bf, STLOAD_DTYPE_BOOL, 4, &err) == STLOAD_ERR_UNSUPPORTED);
    CHECK(err && strstr(stload_error_message(err), "F32") && strstr(stload_error_message(err), "BOOL"));
    stload_error_free(err);
}

static stload_model *open_fixture(const char *dir) {
    char path[1024];
    const char *paths[1];
    stload_model *m = NULL;
    snprintf(path, sizeof path, "%s/all_dtypes.safetensors", dir);
    paths[0] = path;
    CHECK(stload_open_files(paths, 1, NULL, &m, NULL) == STLOAD_OK);
    return m;
}

static void test_converted_get_and_copy_to(const char *dir) {
    stload_model *m = open_fixture(dir);
    stload_tensor *native = NULL, *f32 = NULL, *again = NULL;
    const uint16_t *bf;
    const float *f;
    float *copy;
    size_t i, n;
    stload_error *err = NULL;
    CHECK(stload_model_get(m, "bf16", STLOAD_DTYPE_NATIVE, &native, NULL) == STLOAD_OK);
    CHECK(stload_model_get(m, "bf16", STLOAD_DTYPE_F32, &f32, NULL) == STLOAD_OK);
    CHECK(stload_tensor_dtype(f32) == STLOAD_DTYPE_F32);
    n = stload_tensor_nbytes(native) / 2;
    CHECK(stload_tensor_nbytes(f32) == n * 4);
    bf = (const uint16_t *)stload_tensor_data(native);
    f = (const float *)stload_tensor_data(f32);
    for (i = 0; i < n; i++) {
        float want = bf16_to_f32(bf[i]);
        CHECK(memcmp(&f[i], &want, 4) == 0);
    }
    /* Cached: the second get returns the same memory. */
    CHECK(stload_model_get(m, "bf16", STLOAD_DTYPE_F32, &again, NULL) == STLOAD_OK);
    CHECK(stload_tensor_data(again) == stload_tensor_data(f32));
    stload_tensor_free(again);
    again = NULL;
    copy = malloc(n * 4);
    CHECK(stload_tensor_copy_to(native, STLOAD_DTYPE_F32, copy, n * 4, NULL) == STLOAD_OK);
    CHECK(memcmp(copy, f, n * 4) == 0);
    CHECK(stload_tensor_copy_to(native, STLOAD_DTYPE_F32, copy, n * 4 - 1, &err) == STLOAD_ERR_BUFFER_SIZE);
    CHECK(err && strstr(stload_error_message(err), "need") != NULL);
    stload_error_free(err);
    err = NULL;
    CHECK(stload_model_get(m, "c64", STLOAD_DTYPE_F32, &again, &err) == STLOAD_ERR_UNSUPPORTED && again == NULL);
    CHECK(err && strstr(stload_error_message(err), "\"c64\"") != NULL);
    stload_error_free(err);
    free(copy);
    stload_tensor_free(native);
    stload_model_free(m);
    /* Converted tensors outlive the model too. */
    CHECK(memcmp(stload_tensor_data(f32), stload_tensor_data(f32), 4) == 0 && f[0] == f[0]);
    stload_tensor_free(f32);
}

struct progress_log {
    size_t calls, last_done, last_total, stop_after;
};

static bool on_progress(void *user, size_t done, size_t total, const char *name) {
    struct progress_log *log = (struct progress_log *)user;
    log->calls++;
    log->last_done = done;
    log->last_total = total;
    return name != NULL && (log->stop_after == 0 || done < log->stop_after);
}

static void test_load(const char *dir) {
    stload_model *m = open_fixture(dir);
    struct progress_log log = {0, 0, 0, 0};
    stload_tensor *a = NULL, *b = NULL;
    stload_error *err = NULL;
    CHECK(stload_model_load(m, STLOAD_DTYPE_F32, on_progress, &log, NULL) == STLOAD_OK);
    CHECK(log.calls == stload_model_len(m) && log.last_done == log.last_total);
    CHECK(stload_model_get(m, "f16", STLOAD_DTYPE_F32, &a, NULL) == STLOAD_OK);
    CHECK(stload_model_get(m, "f16", STLOAD_DTYPE_F32, &b, NULL) == STLOAD_OK);
    CHECK(stload_tensor_data(a) == stload_tensor_data(b));
    stload_tensor_free(a);
    stload_tensor_free(b);
    CHECK(stload_model_load(m, STLOAD_DTYPE_NATIVE, NULL, NULL, NULL) == STLOAD_OK);
    log.calls = 0;
    log.stop_after = 2;
    CHECK(stload_model_load(m, STLOAD_DTYPE_BF16, on_progress, &log, &err) == STLOAD_ERR_CANCELLED);
    CHECK(log.calls == 2 && err != NULL);
    stload_error_free(err);
    CHECK(stload_model_load(NULL, STLOAD_DTYPE_F32, NULL, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    stload_model_free(m);
}

/* A whole model into one caller-owned, page-aligned buffer: each slot holds what a converted
 * get gives, at a multiple of the alignment. */
static void test_load_into(const char *dir) {
    stload_model *m = open_fixture(dir);
    struct progress_log log = {0, 0, 0, 0};
    stload_error *err = NULL;
    uint64_t size = 0;
    size_t i, n = stload_model_len(m);
    stload_arena_slot *slots = calloc(n, sizeof *slots);
    unsigned char *buf = NULL;
    CHECK(stload_model_arena_size(m, STLOAD_DTYPE_F32, 4096, &size, NULL) == STLOAD_OK);
    CHECK(size > 0);
    buf = aligned_alloc(4096, (size + 1 + 4095) / 4096 * 4096); /* C11: a multiple of the alignment */
    CHECK(buf != NULL);
    CHECK(stload_model_load_into(m, STLOAD_DTYPE_F32, 4096, buf, size, slots, on_progress, &log, NULL) ==
          STLOAD_OK);
    CHECK(log.calls == n && log.last_done == n);
    for (i = 0; i < n; i++) {
        stload_tensor *t = NULL;
        const char *name = stload_model_name(m, i);
        CHECK(slots[i].offset % 4096 == 0 && slots[i].offset + slots[i].nbytes <= size);
        CHECK(stload_model_get(m, name, slots[i].dtype, &t, NULL) == STLOAD_OK);
        if (!t) continue;
        CHECK(stload_tensor_nbytes(t) == slots[i].nbytes);
        CHECK(memcmp(buf + slots[i].offset, stload_tensor_data(t), slots[i].nbytes) == 0);
        stload_tensor_free(t);
    }
    /* A buffer one byte short, a misaligned one, an alignment that is no power of two. */
    CHECK(stload_model_load_into(m, STLOAD_DTYPE_F32, 4096, buf, size - 1, NULL, NULL, NULL, &err) ==
          STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err && strstr(stload_error_message(err), "needs"));
    stload_error_free(err);
    err = NULL;
    CHECK(stload_model_load_into(m, STLOAD_DTYPE_F32, 4096, buf + 1, size, NULL, NULL, NULL, &err) ==
          STLOAD_ERR_INVALID_ARGUMENT);
    stload_error_free(err);
    CHECK(stload_model_arena_size(m, STLOAD_DTYPE_F32, 24, &size, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_arena_size(m, STLOAD_DTYPE_F32, 32, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_load_into(m, STLOAD_DTYPE_F32, 32, NULL, 64, NULL, NULL, NULL, NULL) ==
          STLOAD_ERR_INVALID_ARGUMENT);
    free(buf);
    free(slots);
    stload_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    test_buffer_conversion();
    test_converted_get_and_copy_to(argv[1]);
    test_load(argv[1]);
    test_load_into(argv[1]);
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
