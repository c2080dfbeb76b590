/*
 * Stress test of the C ABI: many threads hammering one model, then many open/free cycles,
 * with the resident set size measured before and after.
 *
 * Phase 1: STRESS_THREADS threads (default 8) each run STRESS_OPS (default 100000) random
 *   operations on one shared model: get as stored, get converted, copy_to, keeping tensors
 *   across operations, freeing them, release_all, and the listing calls. Every tensor's values
 *   are checked against what the file holds.
 * Phase 2: STRESS_OPENS (default 10000) cycles of open, get, convert, free; every tenth also
 *   opens a malformed file and frees the error.
 * RSS is read from /proc/self/statm after a warm-up and at the end; growth must stay below
 *   STRESS_RSS_MIB (default 64) MiB.
 *
 * Usage: stress   (writes its own model file to a temporary directory)
 * Ends with "stress: N passed, M failed" and exits non-zero on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stload.h"

/* Checks from many threads: counters are atomic so the tally itself is race-free. */
static _Atomic long passed, failed;

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (cond) {                                                                     \
            passed++;                                                                   \
        } else {                                                                        \
            if (failed++ < 20)                                                          \
                fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                               \
    } while (0)

/* The model the program writes: element k of every tensor holds the value (k % 251) + t, where
 * t is the tensor's number, exactly representable in every float dtype used here. */
#define N_TENSORS 6
static const struct {
    const char *name;
    const char *dtype;
    stload_dtype code;
    unsigned elem_size;
    uint64_t rows, cols;
} TENSORS[N_TENSORS] = {
    {"blk.0.attn.weight", "BF16", STLOAD_DTYPE_BF16, 2, 64, 96},
    {"blk.0.ffn.weight", "F16", STLOAD_DTYPE_F16, 2, 128, 64},
    {"blk.1.attn.weight", "F32", STLOAD_DTYPE_F32, 4, 32, 64},
    {"blk.1.ffn.weight", "F64", STLOAD_DTYPE_F64, 8, 16, 40},
    {"embed.weight", "BF16", STLOAD_DTYPE_BF16, 2, 300, 32},
    {"norm.weight", "F32", STLOAD_DTYPE_F32, 4, 1, 4096},
};

static float expected_value(int t, uint64_t k) { return (float)(k % 251) + (float)t; }

static uint64_t elements(int t) { return TENSORS[t].rows * TENSORS[t].cols; }

/* Encodes v (a small integer) in the tensor's dtype, little-endian. */
static void encode(int t, float v, unsigned char *out) {
    uint32_t f32;
    memcpy(&f32, &v, 4);
    switch (TENSORS[t].code) {
    case STLOAD_DTYPE_BF16: { /* small integers: the top half of the F32 bits is exact */
        uint16_t b = (uint16_t)(f32 >> 16);
        memcpy(out, &b, 2);
        break;
    }
    case STLOAD_DTYPE_F16: { /* v < 2048: exponent and 10-bit mantissa built by hand */
        uint16_t h = 0;
        if (v != 0.0f) {
            int e = 0;
            uint32_t m = (uint32_t)v;
            while ((m >> e) > 1) e++;
            h = (uint16_t)(((e + 15) << 10) | (((m << 10) >> e) & 0x3ff));
        }
        memcpy(out, &h, 2);
        break;
    }
    case STLOAD_DTYPE_F32:
        memcpy(out, &v, 4);
        break;
    default: {
        double d = v;
        memcpy(out, &d, 8);
    }
    }
}

/* Writes the model as one safetensors file at path; returns 0 on success. */
static int write_model(const char *path) {
    char header[4096];
    size_t len = 0;
    uint64_t offset = 0, n;
    FILE *f;
    int t;
    len += (size_t)snprintf(header + len, sizeof header - len,
                            "{\"__metadata__\":{\"format\":\"stress\"}");
    for (t = 0; t < N_TENSORS; t++) {
        uint64_t bytes = elements(t) * TENSORS[t].elem_size;
        len += (size_t)snprintf(header + len, sizeof header - len,
                                ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%llu,%llu],"
                                "\"data_offsets\":[%llu,%llu]}",
                                TENSORS[t].name, TENSORS[t].dtype,
                                (unsigned long long)TENSORS[t].rows,
                                (unsigned long long)TENSORS[t].cols,
                                (unsigned long long)offset, (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    len += (size_t)snprintf(header + len, sizeof header - len, "}");
    f = fopen(path, "wb");
    if (!f) return -1;
    n = len;
    fwrite(&n, 8, 1, f); /* little-endian hosts only, like the library's tests */
    fwrite(header, 1, len, f);
    for (t = 0; t < N_TENSORS; t++) {
        unsigned char v[8];
        uint64_t k;
        for (k = 0; k < elements(t); k++) {
            encode(t, expected_value(t, k), v);
            fwrite(v, TENSORS[t].elem_size, 1, f);
        }
    }
    return fclose(f);
}

static long env_long(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

static double rss_mib(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static uint64_t next_random(uint64_t *s) { /* xorshift64 */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Reads element k of a tensor's data as float, in the tensor's own dtype. */
static float element_as_float(const stload_tensor *tensor, uint64_t k) {
    const unsigned char *p = stload_tensor_data(tensor);
    switch (stload_tensor_dtype(tensor)) {
    case STLOAD_DTYPE_F32: {
        float v;
        memcpy(&v, p + k * 4, 4);
        return v;
    }
    case STLOAD_DTYPE_F64: {
        double v;
        memcpy(&v, p + k * 8, 8);
        return (float)v;
    }
    case STLOAD_DTYPE_BF16: {
        uint16_t b;
        uint32_t bits;
        float v;
        memcpy(&b, p + k * 2, 2);
        bits = (uint32_t)b << 16;
        memcpy(&v, &bits, 4);
        return v;
    }
    default:
        return -1.0f; /* F16 is only read after conversion */
    }
}

/* Checks a tensor of tensor number t: size, dtype, shape and a few values. */
static void check_tensor(const stload_tensor *tensor, int t, stload_dtype dtype, uint64_t *seed) {
    unsigned size = dtype == STLOAD_DTYPE_F64 ? 8 : dtype == STLOAD_DTYPE_F32 ? 4 : 2;
    uint64_t k = next_random(seed) % elements(t);
    CHECK(stload_tensor_dtype(tensor) == dtype);
    CHECK(stload_tensor_nbytes(tensor) == elements(t) * size);
    CHECK(stload_tensor_rank(tensor) == 2 && stload_tensor_shape(tensor)[0] == TENSORS[t].rows);
    if (dtype != STLOAD_DTYPE_F16) {
        CHECK(element_as_float(tensor, k) == expected_value(t, k));
        CHECK(element_as_float(tensor, elements(t) - 1) == expected_value(t, elements(t) - 1));
    }
}

struct worker {
    const stload_model *model;
    long ops;
    uint64_t seed;
};

#define HELD 8
static const stload_dtype TARGETS[3] = {STLOAD_DTYPE_F32, STLOAD_DTYPE_BF16, STLOAD_DTYPE_F64};

static void *work(void *arg) {
    struct worker *w = arg;
    stload_tensor *held[HELD] = {0};
    int held_t[HELD] = {0};
    stload_dtype held_d[HELD] = {0};
    float *buf = malloc(4096 * sizeof(float) * 8);
    long i;
    for (i = 0; i < w->ops; i++) {
        uint64_t r = next_random(&w->seed);
        int t = (int)(r % N_TENSORS);
        unsigned op = (unsigned)((r >> 8) % 100);
        int slot = (int)((r >> 16) % HELD);
        stload_tensor *tensor = NULL;
        stload_dtype dtype = STLOAD_DTYPE_NATIVE;
        if (op < 35) { /* as stored: zero-copy */
            CHECK(stload_model_get(w->model, TENSORS[t].name, STLOAD_DTYPE_NATIVE, &tensor, NULL) ==
                  STLOAD_OK);
            dtype = TENSORS[t].code;
        } else if (op < 65) { /* converted (cached by the model) */
            dtype = TARGETS[(r >> 24) % 3];
            CHECK(stload_model_get(w->model, TENSORS[t].name, dtype, &tensor, NULL) == STLOAD_OK);
        } else if (op < 80) { /* converted into our buffer */
            stload_tensor *src = NULL;
            size_t n = (size_t)elements(t);
            CHECK(stload_model_get(w->model, TENSORS[t].name, STLOAD_DTYPE_NATIVE, &src, NULL) ==
                  STLOAD_OK);
            if (src) {
                uint64_t k = next_random(&w->seed) % n;
                CHECK(stload_tensor_copy_to(src, STLOAD_DTYPE_F32, buf, n * 4, NULL) == STLOAD_OK);
                CHECK(buf[k] == expected_value(t, k));
                /* A wrong length is refused, and writes nothing. */
                CHECK(stload_tensor_copy_to(src, STLOAD_DTYPE_F32, buf, n * 4 - 4, NULL) ==
                      STLOAD_ERR_BUFFER_SIZE);
                stload_tensor_free(src);
            }
        } else if (op < 85) { /* let go of a kept tensor */
            stload_tensor_free(held[slot]);
            held[slot] = NULL;
        } else if (op < 88) { /* drop every cache and mapping; kept tensors must stay valid */
            stload_model_release_all(w->model);
        } else if (op < 94) { /* read a kept tensor, possibly after a release_all */
            if (held[slot]) check_tensor(held[slot], held_t[slot], held_d[slot], &w->seed);
        } else { /* listing and lookups; errors are objects to free */
            stload_error *err = NULL;
            stload_tensor_info info;
            CHECK(stload_model_len(w->model) == N_TENSORS);
            CHECK(strcmp(stload_model_name(w->model, (size_t)t), TENSORS[t].name) == 0);
            CHECK(stload_model_info(w->model, TENSORS[t].name, &info, NULL) == STLOAD_OK);
            CHECK(strcmp(stload_model_metadata(w->model, "format"), "stress") == 0);
            CHECK(stload_model_get(w->model, "missing", 0, &tensor, &err) == STLOAD_ERR_NOT_FOUND);
            CHECK(err && strstr(stload_error_message(err), "missing") != NULL);
            stload_error_free(err);
            tensor = NULL;
        }
        if (tensor) {
            check_tensor(tensor, t, dtype, &w->seed);
            if (((r >> 32) & 3) == 0) { /* keep one in four for later */
                stload_tensor_free(held[slot]);
                held[slot] = tensor;
                held_t[slot] = t;
                held_d[slot] = dtype;
            } else {
                stload_tensor_free(tensor);
            }
        }
    }
    for (i = 0; i < HELD; i++) stload_tensor_free(held[i]);
    free(buf);
    return NULL;
}

static void run_threads(const stload_model *model, int threads, long ops, uint64_t seed) {
    pthread_t ids[64];
    struct worker w[64];
    int i;
    for (i = 0; i < threads; i++) {
        w[i].model = model;
        w[i].ops = ops;
        w[i].seed = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        CHECK(pthread_create(&ids[i], NULL, work, &w[i]) == 0);
    }
    for (i = 0; i < threads; i++) pthread_join(ids[i], NULL);
}

/* One open/free cycle; every tenth also opens the malformed file and frees the error. */
static void open_cycle(const char *good, const char *bad, long i) {
    stload_model *m = NULL;
    stload_tensor *tensor = NULL;
    stload_error *err = NULL;
    const char *paths[1];
    uint64_t seed = (uint64_t)i + 1;
    paths[0] = good;
    CHECK(stload_open_files(paths, 1, NULL, &m, NULL) == STLOAD_OK);
    if (!m) return;
    CHECK(stload_model_get(m, TENSORS[i % N_TENSORS].name, STLOAD_DTYPE_F32, &tensor, NULL) ==
          STLOAD_OK);
    if (tensor) check_tensor(tensor, (int)(i % N_TENSORS), STLOAD_DTYPE_F32, &seed);
    stload_model_free(m); /* the tensor outlives its model */
    if (tensor) CHECK(stload_tensor_nbytes(tensor) == elements((int)(i % N_TENSORS)) * 4);
    stload_tensor_free(tensor);
    if (i % 10 == 0) {
        paths[0] = bad;
        m = NULL;
        CHECK(stload_open_files(paths, 1, NULL, &m, &err) == STLOAD_ERR_FORMAT && m == NULL);
        CHECK(err && strstr(stload_error_message(err), "bad.safetensors") != NULL);
        stload_error_free(err);
        err = NULL;
    }
}

int main(void) {
    long threads = env_long("STRESS_THREADS", 8), ops = env_long("STRESS_OPS", 100000);
    long opens = env_long("STRESS_OPENS", 10000), bound = env_long("STRESS_RSS_MIB", 64);
    char dir[] = "/tmp/stload-stress-XXXXXX";
    char good[64], bad[64];
    double rss_warm, rss_threads, rss_end;
    stload_model *model = NULL;
    stload_options *opts;
    FILE *f;
    long i;
    if (threads < 1 || threads > 64) threads = 8;
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(good, sizeof good, "%s/model.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    if (write_model(good) != 0) {
        perror("write model");
        return 1;
    }
    /* A file whose header promises more data than there is. */
    f = fopen(bad, "wb");
    if (f) {
        const char *h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
        uint64_t n = strlen(h);
        fwrite(&n, 8, 1, f);
        fwrite(h, 1, n, f);
        fclose(f);
    }

    /* Two conversion threads per model so the parallel paths run too. */
    opts = stload_options_new();
    CHECK(stload_options_set_threads(opts, 2, NULL) == STLOAD_OK);
    {
        const char *paths[1];
        paths[0] = good;
        CHECK(stload_open_files(paths, 1, opts, &model, NULL) == STLOAD_OK);
    }
    stload_options_free(opts);
    if (!model) return 1;

    /* Warm-up: allocator arenas, caches and mappings reach their working size. */
    run_threads(model, (int)threads, ops / 20 + 1, 1);
    for (i = 0; i < opens / 20 + 1; i++) open_cycle(good, bad, i);
    rss_warm = rss_mib();

    run_threads(model, (int)threads, ops, 2);
    rss_threads = rss_mib();
    stload_model_release_all(model);
    for (i = 0; i < opens; i++) open_cycle(good, bad, i);
    stload_model_free(model);
    rss_end = rss_mib();

    printf("stress: %ld threads x %ld ops, %ld open/free cycles; RSS %.1f MiB after warm-up, "
           "%.1f after the threads, %.1f at the end (bound +%ld MiB)\n",
           threads, ops, opens, rss_warm, rss_threads, rss_end, bound);
    CHECK(rss_threads - rss_warm < (double)bound);
    CHECK(rss_end - rss_warm < (double)bound);
    unlink(good);
    unlink(bad);
    rmdir(dir);
    printf("stress: %ld passed, %ld failed\n", (long)passed, (long)failed);
    return failed == 0 ? 0 : 1;
}
