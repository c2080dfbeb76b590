/*
 * C test of remote models: opens an s3:// model and checks every tensor, as stored and as F32
 * after stload_model_load, against the same file opened locally.
 * Usage: test_remote S3_URL LOCAL_FILE [CACHE_DIR]
 *   With CACHE_DIR, the model is also opened twice with the remote setting cache_dir (the first
 *   open downloads a copy there, the second reads it) and compared the same way.
 *   The S3 server's endpoint is in $STLOAD_TEST_S3_ENDPOINT (set here with
 *   stload_options_set_remote); credentials come from $AWS_ACCESS_KEY_ID and
 *   $AWS_SECRET_ACCESS_KEY, as the AWS tools read them. tests/remote/run.sh sets all three.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stload.h"
#include "check.h"

int passed, failed;

static int same_bytes(const stload_tensor *a, const stload_tensor *b) {
    return a && b && stload_tensor_nbytes(a) == stload_tensor_nbytes(b) &&
           memcmp(stload_tensor_data(a), stload_tensor_data(b), stload_tensor_nbytes(a)) == 0;
}

static void compare(const stload_model *local, const stload_model *remote, stload_dtype dtype) {
    size_t i, n = stload_model_len(local);
    CHECK(n > 0 && n == stload_model_len(remote));
    for (i = 0; i < n; i++) {
        const char *name = stload_model_name(local, i);
        stload_tensor *a = NULL, *b = NULL;
        stload_status sa = stload_model_get(local, name, dtype, &a, NULL);
        stload_status sb = stload_model_get(remote, name, dtype, &b, NULL);
        CHECK(strcmp(name, stload_model_name(remote, i)) == 0);
        CHECK(sa == sb);
        if (sa == STLOAD_OK) CHECK(same_bytes(a, b));
        stload_tensor_free(a);
        stload_tensor_free(b);
    }
}

int main(int argc, char **argv) {
    const char *endpoint = getenv("STLOAD_TEST_S3_ENDPOINT");
    const char *local_path;
    stload_options *opts = stload_options_new();
    stload_model *local = NULL, *remote = NULL;
    stload_error *err = NULL;
    if (argc < 3 || argc > 4 || !endpoint) {
        fprintf(stderr, "usage: STLOAD_TEST_S3_ENDPOINT=... test_remote S3_URL LOCAL_FILE [CACHE_DIR]\n");
        return 2;
    }
    local_path = argv[2];

    /* An unknown key is refused, naming it; the options stay usable. */
    CHECK(stload_options_set_remote(opts, "aws_endpoint_typo", "x", &err) ==
          STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err && strstr(stload_error_message(err), "aws_endpoint_typo") != NULL);
    stload_error_free(err);
    err = NULL;
    CHECK(stload_options_set_remote(opts, "aws_endpoint", endpoint, NULL) == STLOAD_OK);
    CHECK(stload_options_set_remote(opts, "allow_http", "true", NULL) == STLOAD_OK);
    CHECK(stload_options_set_remote(opts, "concurrency", "4", NULL) == STLOAD_OK);
    CHECK(stload_options_set_remote(NULL, "concurrency", "4", NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_options_set_remote(opts, NULL, "4", NULL) == STLOAD_ERR_INVALID_ARGUMENT);

    CHECK(stload_open_files(&local_path, 1, NULL, &local, NULL) == STLOAD_OK);
    if (stload_open_dir(argv[1], opts, &remote, &err) != STLOAD_OK) {
        fprintf(stderr, "open %s: %s\n", argv[1], err ? stload_error_message(err) : "?");
        stload_error_free(err);
        failed++;
    } else {
        compare(local, remote, STLOAD_DTYPE_NATIVE);
        CHECK(stload_model_load(remote, STLOAD_DTYPE_F32, NULL, NULL, NULL) == STLOAD_OK);
        compare(local, remote, STLOAD_DTYPE_F32);
    }
    /* With a cache directory: downloaded by the first open, read from disk by the second. */
    if (argc == 4) {
        int round;
        CHECK(stload_options_set_remote(opts, "cache_dir", argv[3], NULL) == STLOAD_OK);
        for (round = 0; round < 2; round++) {
            stload_model *cached = NULL;
            if (stload_open_dir(argv[1], opts, &cached, &err) != STLOAD_OK) {
                fprintf(stderr, "open %s cached: %s\n", argv[1], err ? stload_error_message(err) : "?");
                stload_error_free(err);
                err = NULL;
                failed++;
                continue;
            }
            compare(local, cached, STLOAD_DTYPE_NATIVE);
            {
                /* Its data is read from the copy in the cache directory. */
                stload_tensor_info info;
                CHECK(stload_model_info(cached, stload_model_name(cached, 0), &info, NULL) == STLOAD_OK);
                CHECK(strncmp(info.file, argv[3], strlen(argv[3])) == 0);
            }
            CHECK(stload_model_load(cached, STLOAD_DTYPE_F32, NULL, NULL, NULL) == STLOAD_OK);
            compare(local, cached, STLOAD_DTYPE_F32);
            stload_model_free(cached);
        }
        CHECK(stload_options_set_remote(opts, "cache_dir", "", NULL) == STLOAD_OK);
    }
    /* A missing object is an error naming it, never a model. */
    {
        stload_model *none = NULL;
        CHECK(stload_open_dir("s3://models/no-such-prefix/", opts, &none, &err) != STLOAD_OK);
        CHECK(none == NULL);
        CHECK(err && strstr(stload_error_message(err), "no-such-prefix") != NULL);
        stload_error_free(err);
    }
    stload_model_free(local);
    stload_model_free(remote);
    stload_options_free(opts);
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
