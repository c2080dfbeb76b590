/*
 * C tests of the core ABI: values, errors, NULL arguments, lifetimes, threads.
 * Usage: test_core FIXTURES_DIR   (written by tests/python/make_fixtures.py)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stload.h"
#include "check.h"

int passed, failed;
static const char *fixtures;


static char *path_of(const char *name) {
    size_t len = strlen(fixtures) + strlen(name) + 2;
    char *p = malloc(len);
    snprintf(p, len, "%s/%s", fixtures, name);
    return p;
}

/* Reads a whole file; returns NULL when missing. */
static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long size;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)size + 1);
    *len = fread(buf, 1, (size_t)size, f);
    fclose(f);
    return buf;
}

static stload_model *open_all_dtypes(void) {
    char *a = path_of("all_dtypes.safetensors"), *b = path_of("subbyte_f6.safetensors");
    const char *paths[2];
    stload_model *m = NULL;
    paths[0] = a;
    paths[1] = b;
    CHECK(stload_open_files(paths, 2, NULL, &m, NULL) == STLOAD_OK);
    free(a);
    free(b);
    return m;
}

static void test_version_and_dtypes(void) {
    stload_dtype d = 0;
    stload_error *err = NULL;
    CHECK(strlen(stload_version()) >= 5);
    CHECK(strcmp(stload_dtype_name(STLOAD_DTYPE_BF16), "BF16") == 0);
    CHECK(strcmp(stload_dtype_name(STLOAD_DTYPE_F8_E4M3FNUZ), "F8_E4M3FNUZ") == 0);
    CHECK(stload_dtype_name(STLOAD_DTYPE_NATIVE) == NULL);
    CHECK(stload_dtype_name(999) == NULL);
    CHECK(stload_dtype_bits(STLOAD_DTYPE_F4) == 4);
    CHECK(stload_dtype_bits(STLOAD_DTYPE_F6_E3M2) == 6);
    CHECK(stload_dtype_bits(STLOAD_DTYPE_C64) == 64);
    CHECK(stload_dtype_bits(0) == 0);
    CHECK(stload_dtype_from_name("bfloat16", &d, NULL) == STLOAD_OK && d == STLOAD_DTYPE_BF16);
    CHECK(stload_dtype_from_name("FLOAT32", &d, NULL) == STLOAD_OK && d == STLOAD_DTYPE_F32);
    CHECK(stload_dtype_from_name("int64", &d, NULL) == STLOAD_OK && d == STLOAD_DTYPE_I64);
    d = 77;
    CHECK(stload_dtype_from_name("float13", &d, &err) == STLOAD_ERR_NOT_FOUND && d == 77);
    CHECK(err != NULL && strstr(stload_error_message(err), "float13") != NULL);
    CHECK(stload_error_status(err) == STLOAD_ERR_NOT_FOUND);
    stload_error_free(err);
}

static void test_values_match_python(void) {
    stload_model *m = open_all_dtypes();
    size_t i, n = stload_model_len(m);
    CHECK(n == 24);
    for (i = 0; i < n; i++) {
        const char *name = stload_model_name(m, i);
        char rel[256];
        char *path;
        size_t len = 0;
        unsigned char *want;
        stload_tensor *t = NULL;
        stload_tensor_info info;
        snprintf(rel, sizeof rel, "expected/%s.bin", name);
        path = path_of(rel);
        want = read_all(path, &len);
        CHECK(want != NULL);
        CHECK(stload_model_get(m, name, STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_OK);
        CHECK(stload_tensor_nbytes(t) == len);
        CHECK(want && len == stload_tensor_nbytes(t) && (len == 0 || memcmp(want, stload_tensor_data(t), len) == 0));
        CHECK(stload_model_info(m, name, &info, NULL) == STLOAD_OK);
        CHECK(info.dtype == stload_tensor_dtype(t) && info.rank == stload_tensor_rank(t));
        CHECK(info.nbytes == len && strstr(info.file, ".safetensors") != NULL);
        CHECK(strcmp(info.original_name, name) == 0);
        if (i > 0) CHECK(strcmp(stload_model_name(m, i - 1), name) < 0);
        stload_tensor_free(t);
        free(want);
        free(path);
    }
    CHECK(stload_model_name(m, n) == NULL);
    CHECK(strcmp(stload_model_metadata(m, "format"), "pt") == 0);
    CHECK(strcmp(stload_model_metadata(m, "note"), "gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93") == 0);
    CHECK(stload_model_metadata(m, "absent") == NULL);
    CHECK(stload_model_metadata_len(m) == 2);
    CHECK(strcmp(stload_model_metadata_key(m, 0), "format") == 0);
    CHECK(stload_model_metadata_key(m, 2) == NULL);
    stload_model_free(m);
}

static void test_shape_and_sharded_dir(void) {
    char *dir = path_of("sharded");
    stload_model *m = NULL;
    stload_tensor *t = NULL;
    const uint64_t *shape;
    CHECK(stload_open_dir(dir, NULL, &m, NULL) == STLOAD_OK);
    CHECK(stload_model_len(m) == 6);
    CHECK(stload_model_get(m, "lm_head.weight", STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_OK);
    shape = stload_tensor_shape(t);
    CHECK(stload_tensor_rank(t) == 2 && shape[0] == 2 && shape[1] == 4);
    CHECK(stload_tensor_dtype(t) == STLOAD_DTYPE_F32 && stload_tensor_nbytes(t) == 32);
    stload_tensor_free(t);
    stload_model_free(m);
    free(dir);
}

static void test_errors(void) {
    stload_model *m = NULL;
    stload_error *err = NULL;
    char *bad = path_of("expected/f32.bin"); /* raw floats: not a safetensors file */
    const char *paths[1];
    paths[0] = bad;
    CHECK(stload_open_dir("/nonexistent-stload-dir", NULL, &m, &err) == STLOAD_ERR_IO && m == NULL);
    CHECK(err && strstr(stload_error_message(err), "nonexistent-stload-dir") != NULL);
    stload_error_free(err);
    err = NULL;
    CHECK(stload_open_files(paths, 1, NULL, &m, &err) != STLOAD_OK && m == NULL);
    CHECK(err && strstr(stload_error_message(err), "f32.bin") != NULL);
    stload_error_free(err);
    err = NULL;
    m = open_all_dtypes();
    {
        stload_tensor *t = NULL;
        CHECK(stload_model_get(m, "missing", STLOAD_DTYPE_NATIVE, &t, &err) == STLOAD_ERR_NOT_FOUND && t == NULL);
        CHECK(err && strstr(stload_error_message(err), "\"missing\"") != NULL);
        stload_error_free(err);
        err = NULL;
        CHECK(stload_model_get(m, "f32", 200, &t, &err) == STLOAD_ERR_INVALID_ARGUMENT && t == NULL);
        stload_error_free(err);
        err = NULL;
        /* Without an error object the status alone reports the failure. */
        CHECK(stload_model_get(m, "missing", STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_ERR_NOT_FOUND);
    }
    stload_model_free(m);
    free(bad);
}

static void test_options(void) {
    stload_options *o = stload_options_new();
    stload_model *m = NULL;
    stload_error *err = NULL;
    char *file = path_of("all_dtypes.safetensors");
    const char *paths[1];
    paths[0] = file;
    CHECK(o != NULL);
    CHECK(stload_options_set_max_header_size(o, 0, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_options_set_max_header_size(o, 64, NULL) == STLOAD_OK);
    CHECK(stload_options_set_threads(o, 2, NULL) == STLOAD_OK);
    CHECK(stload_options_set_cache(o, false, NULL) == STLOAD_OK);
    CHECK(stload_open_files(paths, 1, o, &m, &err) == STLOAD_ERR_LIMIT && m == NULL);
    CHECK(err && strstr(stload_error_message(err), "exceeds the limit of 64 bytes") != NULL);
    stload_error_free(err);
    stload_options_free(o);
    free(file);
}

static void test_null_arguments(void) {
    stload_model *m = NULL;
    stload_tensor *t = NULL;
    stload_tensor_info info;
    stload_error *err = NULL;
    stload_model *real = open_all_dtypes();
    CHECK(stload_open_dir(NULL, NULL, &m, &err) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err && strstr(stload_error_message(err), "dir is NULL") != NULL);
    stload_error_free(err);
    CHECK(stload_open_dir(fixtures, NULL, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_open_files(NULL, 1, NULL, &m, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    {
        const char *paths[1] = {NULL};
        CHECK(stload_open_files(paths, 1, NULL, &m, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    }
    CHECK(stload_model_len(NULL) == 0);
    CHECK(stload_model_name(NULL, 0) == NULL);
    CHECK(stload_model_metadata(NULL, "format") == NULL);
    CHECK(stload_model_metadata(real, NULL) == NULL);
    CHECK(stload_model_metadata_len(NULL) == 0 && stload_model_metadata_key(NULL, 0) == NULL);
    CHECK(stload_model_info(NULL, "f32", &info, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_info(real, NULL, &info, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_info(real, "f32", NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_get(NULL, "f32", 0, &t, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_get(real, NULL, 0, &t, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_get(real, "f32", 0, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_tensor_data(NULL) == NULL && stload_tensor_nbytes(NULL) == 0);
    CHECK(stload_tensor_rank(NULL) == 0 && stload_tensor_shape(NULL) == NULL);
    CHECK(stload_tensor_dtype(NULL) == 0);
    CHECK(stload_options_set_threads(NULL, 1, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_dtype_from_name(NULL, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_error_message(NULL) == NULL);
    CHECK(stload_error_status(NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    stload_model_release_all(NULL);
    stload_model_free(NULL);
    stload_tensor_free(NULL);
    stload_options_free(NULL);
    stload_error_free(NULL);
    stload_model_free(real);
}

static void test_tensor_outlives_model(void) {
    stload_model *m = open_all_dtypes();
    stload_tensor *t = NULL, *u = NULL;
    unsigned char copy[140];
    CHECK(stload_model_get(m, "f32", STLOAD_DTYPE_NATIVE, &t, NULL) == STLOAD_OK);
    CHECK(stload_tensor_nbytes(t) == sizeof copy);
    memcpy(copy, stload_tensor_data(t), sizeof copy);
    stload_model_release_all(m);
    CHECK(memcmp(copy, stload_tensor_data(t), sizeof copy) == 0);
    CHECK(stload_model_get(m, "f32", STLOAD_DTYPE_F32, &u, NULL) == STLOAD_OK);
    stload_model_free(m);
    CHECK(memcmp(copy, stload_tensor_data(t), sizeof copy) == 0);
    CHECK(memcmp(copy, stload_tensor_data(u), sizeof copy) == 0);
    stload_tensor_free(t);
    stload_tensor_free(u);
}

static void *get_many(void *arg) {
    const stload_model *m = (const stload_model *)arg;
    size_t n = stload_model_len(m), i;
    long bad = 0;
    for (i = 0; i < 2000; i++) {
        const char *name = stload_model_name(m, i % n);
        stload_tensor_info info;
        stload_tensor *t = NULL;
        if (stload_model_get(m, name, STLOAD_DTYPE_NATIVE, &t, NULL) != STLOAD_OK) bad++;
        if (stload_model_info(m, name, &info, NULL) != STLOAD_OK || info.nbytes != stload_tensor_nbytes(t)) bad++;
        if (i % 500 == 0) stload_model_release_all(m);
        stload_tensor_free(t);
    }
    return (void *)bad;
}

static void test_eight_threads(void) {
    stload_model *m = open_all_dtypes();
    pthread_t threads[8];
    int i;
    for (i = 0; i < 8; i++) CHECK(pthread_create(&threads[i], NULL, get_many, m) == 0);
    for (i = 0; i < 8; i++) {
        void *bad = NULL;
        pthread_join(threads[i], &bad);
        CHECK(bad == NULL);
    }
    stload_model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    fixtures = argv[1];
    test_version_and_dtypes();
    test_values_match_python();
    test_shape_and_sharded_dir();
    test_errors();
    test_options();
    test_null_arguments();
    test_tensor_outlives_model();
    test_eight_threads();
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
