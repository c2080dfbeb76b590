/*
 * stload_model_write_gguf from C: a written file starts with the GGUF header, progress reaches
 * the total, a cancel or a bad argument leaves no file, and the input is never overwritten.
 * stload_model_write_gguf_split: shards named PREFIX-00001-of-0000N.gguf, none on a cancel or
 * with no limit. stload_options_set_tokenizer_pre: the type given is written, a bad name refused.
 * stload_gguf_type_from_name: llama-quantize's names, any case, to the numbers; a
 * quantised type writes llama.cpp's general.file_type.
 * llama-quantize's overrides (stload_options_set_output_tensor_type, _set_token_embedding_type,
 * _add_tensor_type, _set_pure): a Q4_K_M file has the types given, bad values are refused naming
 * the option and the value, and a float output type with overrides is refused.
 * A written Q8_0 file opens as a model: its Q8_0 tensors have the block dtype
 * and sizes, NATIVE gives the stored blocks and F32 the scale times each byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "stload.h"

int passed, failed;

struct progress {
    size_t calls, done, total;
    bool cancel;
};

static bool on_progress(void *user_data, size_t done, size_t total, const char *name) {
    struct progress *p = user_data;
    p->calls++;
    p->done = done;
    p->total = total;
    return name == NULL && !p->cancel;
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static void test_write(const char *dir) {
    char src[1024], out[1024], input[1024];
    stload_model *m = NULL;
    stload_error *err = NULL;
    struct progress p = {0, 0, 0, false};
    unsigned char head[8];
    uint32_t version;
    FILE *f;
    /* A Hugging Face llama directory: config.json, weights and tokenizer.json. */
    snprintf(src, sizeof src, "%s/llama", dir);
    snprintf(out, sizeof out, "%s/c_test.gguf", dir);
    snprintf(input, sizeof input, "%s/llama/model.safetensors", dir);
    CHECK(stload_open_dir(src, NULL, &m, NULL) == STLOAD_OK);

    CHECK(stload_model_write_gguf(m, out, STLOAD_GGUF_Q8_0, on_progress, &p, NULL) == STLOAD_OK);
    CHECK(p.calls > 0 && p.total > 0 && p.done == p.total);
    f = fopen(out, "rb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fread(head, 1, 8, f) == 8);
        fclose(f);
        memcpy(&version, head + 4, 4);
        CHECK(memcmp(head, "GGUF", 4) == 0 && version == 3);
    }
    CHECK(remove(out) == 0);

    /* A cancel leaves nothing behind. */
    p.cancel = true;
    CHECK(stload_model_write_gguf(m, out, STLOAD_GGUF_F32, on_progress, &p, &err) == STLOAD_ERR_CANCELLED);
    CHECK(err && strstr(stload_error_message(err), "cancelled"));
    stload_error_free(err);
    err = NULL;
    CHECK(!exists(out));

    /* Bad arguments. */
    CHECK(stload_model_write_gguf(NULL, out, STLOAD_GGUF_AUTO, NULL, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_write_gguf(m, NULL, STLOAD_GGUF_AUTO, NULL, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_model_write_gguf(m, out, 99, NULL, NULL, &err) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err && strstr(stload_error_message(err), "99"));
    stload_error_free(err);
    err = NULL;
    CHECK(!exists(out));

    /* Onto an input file: refused, the input intact. */
    CHECK(stload_model_write_gguf(m, input, STLOAD_GGUF_AUTO, NULL, NULL, &err) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err && strstr(stload_error_message(err), "input file"));
    stload_error_free(err);
    stload_model_free(m);
}

/* The N of the shards PREFIX-0000i-of-0000N.gguf found in dir, 0 when there are none. */
static int shard_count(const char *dir, const char *prefix) {
    char path[1200];
    for (int n = 1; n < 100; n++) {
        snprintf(path, sizeof path, "%s/%s-00001-of-%05d.gguf", dir, prefix, n);
        if (exists(path)) {
            return n;
        }
    }
    return 0;
}

static void test_split(const char *dir) {
    char src[1024], out[1024], shard[1200];
    stload_model *m = NULL;
    stload_error *err = NULL;
    struct progress p = {0, 0, 0, false};
    int n;
    snprintf(src, sizeof src, "%s/llama", dir);
    snprintf(out, sizeof out, "%s/c_split.gguf", dir);
    CHECK(stload_open_dir(src, NULL, &m, NULL) == STLOAD_OK);

    CHECK(stload_model_write_gguf_split(m, out, STLOAD_GGUF_F16, 0, 2, on_progress, &p, NULL) == STLOAD_OK);
    CHECK(p.calls > 0 && p.done == p.total);
    n = shard_count(dir, "c_split");
    CHECK(n > 1 && !exists(out));
    {
        /* The set opens whole from its last shard: the tensors of the unsplit file. */
        stload_model *whole = NULL, *set = NULL;
        char one[1024];
        const char *last[1] = {shard}, *single[1] = {one};
        snprintf(one, sizeof one, "%s/c_unsplit.gguf", dir);
        snprintf(shard, sizeof shard, "%s/c_split-%05d-of-%05d.gguf", dir, n, n);
        CHECK(stload_model_write_gguf(m, one, STLOAD_GGUF_F16, NULL, NULL, NULL) == STLOAD_OK);
        CHECK(stload_open_files(single, 1, NULL, &whole, NULL) == STLOAD_OK);
        CHECK(stload_open_files(last, 1, NULL, &set, NULL) == STLOAD_OK);
        CHECK(whole && set && stload_model_len(set) == stload_model_len(whole));
        for (size_t i = 0; whole && set && i < stload_model_len(whole); i++) {
            CHECK(strcmp(stload_model_name(set, i), stload_model_name(whole, i)) == 0);
        }
        stload_model_free(whole);
        stload_model_free(set);
        CHECK(remove(one) == 0);
    }
    for (int i = 1; i <= n; i++) {
        snprintf(shard, sizeof shard, "%s/c_split-%05d-of-%05d.gguf", dir, i, n);
        CHECK(remove(shard) == 0);
    }

    /* A cancel, and no limit: no shard. */
    p.cancel = true;
    CHECK(stload_model_write_gguf_split(m, out, STLOAD_GGUF_F16, 0, 2, on_progress, &p, NULL) ==
          STLOAD_ERR_CANCELLED);
    CHECK(stload_model_write_gguf_split(m, out, STLOAD_GGUF_F16, 0, 0, NULL, NULL, &err) ==
          STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err && strstr(stload_error_message(err), "limit"));
    stload_error_free(err);
    CHECK(shard_count(dir, "c_split") == 0);
    stload_model_free(m);
}

/* Whether the GGUF file `path` holds the string value `value` right after the key `key`. */
static int has_string_kv(const char *path, const char *key, const char *value) {
    static unsigned char buf[1 << 16];
    size_t n, klen = strlen(key), vlen = strlen(value), i;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* key, then the type (u32 8 = string), the length (u64) and the text */
    for (i = 0; i + klen + 12 + vlen <= n; i++) {
        if (memcmp(buf + i, key, klen) == 0) {
            const unsigned char *v = buf + i + klen;
            uint64_t len;
            memcpy(&len, v + 4, 8);
            return v[0] == 8 && len == vlen && memcmp(v + 12, value, vlen) == 0;
        }
    }
    return 0;
}

static void test_tokenizer_pre(const char *dir) {
    char src[1024], out[1024];
    stload_options *o = stload_options_new();
    stload_model *m = NULL;
    stload_error *err = NULL;
    snprintf(src, sizeof src, "%s/llama", dir);
    snprintf(out, sizeof out, "%s/c_pre.gguf", dir);
    CHECK(stload_options_set_tokenizer_pre(o, "Not A Name", &err) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(err && strstr(stload_error_message(err), "Not A Name") != NULL);
    stload_error_free(err);
    CHECK(stload_options_set_tokenizer_pre(o, NULL, NULL) == STLOAD_OK);
    CHECK(stload_options_set_tokenizer_pre(o, "qwen2", NULL) == STLOAD_OK);
    CHECK(stload_open_dir(src, o, &m, NULL) == STLOAD_OK);
    CHECK(stload_model_write_gguf(m, out, STLOAD_GGUF_F32, NULL, NULL, NULL) == STLOAD_OK);
    CHECK(has_string_kv(out, "tokenizer.ggml.pre", "qwen2"));
    CHECK(remove(out) == 0);
    stload_model_free(m);
    stload_options_free(o);
}

static void test_quantised(const char *dir) {
    char src[1024], out[1024];
    stload_model *m = NULL;
    stload_error *err = NULL;
    stload_gguf_type t = 0;
    unsigned char *bytes;
    long size;
    const char key[] = "general.file_type";
    uint32_t value_type = 0, ftype = 0;
    FILE *f;
    CHECK(stload_gguf_type_from_name("Q4_K_M", &t, NULL) == STLOAD_OK && t == STLOAD_GGUF_Q4_K_M);
    CHECK(stload_gguf_type_from_name("q4_k", &t, NULL) == STLOAD_OK && t == STLOAD_GGUF_Q4_K_M);
    CHECK(stload_gguf_type_from_name("tq2_0", &t, NULL) == STLOAD_OK && t == STLOAD_GGUF_TQ2_0);
    CHECK(stload_gguf_type_from_name("auto", &t, NULL) == STLOAD_OK && t == STLOAD_GGUF_AUTO);
    CHECK(stload_gguf_type_from_name("iq2_xxs", &t, &err) == STLOAD_ERR_NOT_FOUND);
    CHECK(err && strstr(stload_error_message(err), "q4_k_m"));
    stload_error_free(err);
    err = NULL;
    CHECK(stload_gguf_type_from_name(NULL, &t, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_gguf_type_from_name("q8_0", NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);

    snprintf(src, sizeof src, "%s/llama", dir);
    snprintf(out, sizeof out, "%s/c_test_q5_k_s.gguf", dir);
    CHECK(stload_open_dir(src, NULL, &m, NULL) == STLOAD_OK);
    CHECK(stload_model_write_gguf(m, out, STLOAD_GGUF_Q5_K_S, NULL, NULL, NULL) == STLOAD_OK);
    stload_model_free(m);
    /* general.file_type: the key, its value type (4 = u32), then 16 (LLAMA_FTYPE_MOSTLY_Q5_K_S). */
    f = fopen(out, "rb");
    CHECK(f != NULL);
    if (f) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fseek(f, 0, SEEK_SET);
        bytes = malloc((size_t)size);
        CHECK(bytes && fread(bytes, 1, (size_t)size, f) == (size_t)size);
        fclose(f);
        for (long i = 0; bytes && i + (long)sizeof key + 7 < size; i++) {
            if (memcmp(bytes + i, key, sizeof key - 1) == 0) {
                memcpy(&value_type, bytes + i + sizeof key - 1, 4);
                memcpy(&ftype, bytes + i + sizeof key + 3, 4);
                break;
            }
        }
        free(bytes);
        CHECK(value_type == 4 && ftype == 16);
    }
    CHECK(remove(out) == 0);
}

/* The stored dtype of tensor `name` of the GGUF file `path`, or -1. */
static int gguf_dtype(const char *path, const char *name) {
    stload_model *g = NULL;
    stload_tensor_info info;
    int dtype = -1;
    const char *paths[1] = {path};
    if (stload_open_files(paths, 1, NULL, &g, NULL) != STLOAD_OK) return -1;
    if (stload_model_info(g, name, &info, NULL) == STLOAD_OK) dtype = (int)info.dtype;
    stload_model_free(g);
    return dtype;
}

/* Whether `s` is INVALID_ARGUMENT and the error `*errp` (read after the call that set it) names
 * `a` and `b`; frees it. */
static int refused(stload_status s, stload_error **errp, const char *a, const char *b) {
    stload_error *err = *errp;
    int ok = s == STLOAD_ERR_INVALID_ARGUMENT && err && strstr(stload_error_message(err), a) &&
             strstr(stload_error_message(err), b);
    stload_error_free(err);
    *errp = NULL;
    return ok;
}

static void test_type_overrides(const char *dir) {
    char src[1024], out[1024];
    stload_options *o = stload_options_new();
    stload_model *m = NULL;
    stload_error *err = NULL;
    snprintf(src, sizeof src, "%s/llama", dir);
    snprintf(out, sizeof out, "%s/c_overrides.gguf", dir);

    /* Each value is checked when set; the message names the option and the value. */
    CHECK(refused(stload_options_set_output_tensor_type(o, "q9_9", &err), &err, "output tensor type",
                  "q9_9"));
    CHECK(refused(stload_options_set_token_embedding_type(o, "Q4_X", &err), &err,
                  "token embedding type", "Q4_X"));
    CHECK(refused(stload_options_add_tensor_type(o, "attn_v", &err), &err, "tensor type", "attn_v"));
    CHECK(refused(stload_options_add_tensor_type(o, "attn_v=q7_k", &err), &err, "tensor type",
                  "q7_k"));
    CHECK(refused(stload_options_add_tensor_type(o, "attn_(v=q8_0", &err), &err, "tensor type",
                  "attn_(v"));
    CHECK(stload_options_add_tensor_type(o, NULL, NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_options_set_output_tensor_type(NULL, "q8_0", NULL) == STLOAD_ERR_INVALID_ARGUMENT);
    CHECK(stload_options_set_pure(NULL, true, NULL) == STLOAD_ERR_INVALID_ARGUMENT);

    /* The fixture's rows (32 or 16 values) take no K-quant block: Q4_K_M's rule gives Q5_0 to
     * most tensors, Q8_0 to output.weight, F16 to ffn_down (16 wide). Each override shows. */
    CHECK(stload_options_set_output_tensor_type(o, "f32", NULL) == STLOAD_OK);
    CHECK(stload_options_set_output_tensor_type(o, NULL, NULL) == STLOAD_OK); /* cleared */
    CHECK(stload_options_set_token_embedding_type(o, "Q8_0", NULL) == STLOAD_OK);
    CHECK(stload_options_add_tensor_type(o, "attn_q=q5_1", NULL) == STLOAD_OK);
    CHECK(stload_options_add_tensor_type(o, "attn_=bf16", NULL) == STLOAD_OK);
    CHECK(stload_open_dir(src, o, &m, NULL) == STLOAD_OK);
    CHECK(stload_model_write_gguf(m, out, STLOAD_GGUF_Q4_K_M, NULL, NULL, NULL) == STLOAD_OK);
    CHECK(gguf_dtype(out, "token_embd.weight") == STLOAD_DTYPE_Q8_0);
    CHECK(gguf_dtype(out, "output.weight") == STLOAD_DTYPE_Q8_0);
    CHECK(gguf_dtype(out, "blk.0.attn_q.weight") == STLOAD_DTYPE_Q5_1);  /* first match wins */
    CHECK(gguf_dtype(out, "blk.1.attn_k.weight") == STLOAD_DTYPE_BF16);
    CHECK(gguf_dtype(out, "blk.1.ffn_up.weight") == STLOAD_DTYPE_Q5_0);  /* no pattern matches */
    CHECK(remove(out) == 0);

    /* A float output type takes no overrides: refused, naming them, and no file is left. */
    CHECK(refused(stload_model_write_gguf(m, out, STLOAD_GGUF_F16, NULL, NULL, &err), &err,
                  "token embedding type", "f16"));
    CHECK(!exists(out));
    stload_model_free(m);
    m = NULL;

    /* A pattern that matches no tensor is refused by the write, naming it. */
    CHECK(stload_options_add_tensor_type(o, "no_such_tensor=q8_0", NULL) == STLOAD_OK);
    CHECK(stload_open_dir(src, o, &m, NULL) == STLOAD_OK);
    CHECK(refused(stload_model_write_gguf(m, out, STLOAD_GGUF_Q4_K_M, NULL, NULL, &err), &err,
                  "no_such_tensor", "matches no tensor"));
    CHECK(!exists(out));
    stload_model_free(m);
    stload_options_free(o);

    /* --pure: output.weight takes the main type's fallback too (Q5_0, not the rule's Q8_0). */
    o = stload_options_new();
    m = NULL;
    CHECK(stload_options_set_pure(o, true, NULL) == STLOAD_OK);
    CHECK(stload_open_dir(src, o, &m, NULL) == STLOAD_OK);
    CHECK(stload_model_write_gguf(m, out, STLOAD_GGUF_Q4_K_M, NULL, NULL, NULL) == STLOAD_OK);
    CHECK(gguf_dtype(out, "output.weight") == STLOAD_DTYPE_Q5_0);
    CHECK(gguf_dtype(out, "token_embd.weight") == STLOAD_DTYPE_Q5_0);
    CHECK(remove(out) == 0);
    stload_model_free(m);
    stload_options_free(o);
}

/* IEEE half bits to float (normal, subnormal and zero values; the written scales are finite). */
static float half_to_float(uint16_t h) {
    int exp = (h >> 10) & 0x1f;
    float man = (float)(h & 0x3ff);
    float v = exp == 0 ? man / 16777216.0f : (1.0f + man / 1024.0f) * (float)(1u << exp) / 32768.0f;
    return (h & 0x8000) ? -v : v;
}

static void test_read_back(const char *dir) {
    char src[1024], out[1024];
    stload_model *m = NULL, *g = NULL;
    size_t i, n, q8 = 0;
    snprintf(src, sizeof src, "%s/llama", dir);
    snprintf(out, sizeof out, "%s/c_read.gguf", dir);
    CHECK(stload_open_dir(src, NULL, &m, NULL) == STLOAD_OK);
    CHECK(stload_model_write_gguf(m, out, STLOAD_GGUF_Q8_0, NULL, NULL, NULL) == STLOAD_OK);
    stload_model_free(m);
    const char *paths[1] = {out};
    CHECK(stload_open_files(paths, 1, NULL, &g, NULL) == STLOAD_OK);
    CHECK(stload_dtype_block_size(STLOAD_DTYPE_Q8_0) == 32);
    CHECK(stload_dtype_block_bytes(STLOAD_DTYPE_Q8_0) == 34);
    CHECK(stload_dtype_bits(STLOAD_DTYPE_Q8_0) == 0);
    n = g ? stload_model_len(g) : 0;
    for (i = 0; i < n; i++) {
        const char *name = stload_model_name(g, i);
        stload_tensor_info info;
        stload_tensor *blocks = NULL, *values = NULL;
        uint64_t count = 1, b, j;
        size_t d;
        int bad = 0;
        CHECK(stload_model_info(g, name, &info, NULL) == STLOAD_OK);
        CHECK(info.format == STLOAD_FORMAT_GGUF);
        if (info.dtype != STLOAD_DTYPE_Q8_0) continue;
        q8++;
        for (d = 0; d < info.rank; d++) count *= info.shape[d];
        CHECK(info.nbytes == count / 32 * 34);
        CHECK(stload_model_get(g, name, STLOAD_DTYPE_NATIVE, &blocks, NULL) == STLOAD_OK);
        CHECK(stload_model_get(g, name, STLOAD_DTYPE_F32, &values, NULL) == STLOAD_OK);
        if (!blocks || !values) continue;
        CHECK(stload_tensor_nbytes(blocks) == info.nbytes);
        CHECK(stload_tensor_nbytes(values) == count * 4);
        const unsigned char *q = stload_tensor_data(blocks);
        const float *y = stload_tensor_data(values);
        for (b = 0; b < count / 32; b++) {
            float scale = half_to_float((uint16_t)(q[b * 34] | (q[b * 34 + 1] << 8)));
            for (j = 0; j < 32; j++) {
                bad += y[b * 32 + j] != (float)(signed char)q[b * 34 + 2 + j] * scale;
            }
        }
        CHECK(bad == 0);
        stload_tensor_free(blocks);
        stload_tensor_free(values);
    }
    CHECK(q8 > 0);
    {
        /* GGUF keys through the metadata calls: typed, and as text. */
        const char *arch = stload_model_metadata(g, "general.architecture");
        const char *ftype = stload_model_metadata(g, "general.file_type");
        const char *tokens = stload_model_metadata(g, "tokenizer.ggml.tokens");
        char *end = NULL;
        CHECK(arch && strcmp(arch, "llama") == 0);
        CHECK(stload_model_metadata_type(g, "general.architecture") == 8);
        CHECK(stload_model_metadata_type(g, "general.file_type") == 4);
        CHECK(ftype && strtoul(ftype, &end, 10) == 7 && *end == 0); /* MOSTLY_Q8_0 */
        CHECK(stload_model_metadata_type(g, "llama.rope.freq_base") == 6);
        CHECK(stload_model_metadata_type(g, "tokenizer.ggml.tokens") == 9);
        CHECK(tokens && tokens[0] == '[' && tokens[strlen(tokens) - 1] == ']');
        CHECK(stload_model_metadata_type(g, "no.such.key") == -1);
        CHECK(stload_model_metadata(g, "no.such.key") == NULL);
        CHECK(stload_model_metadata_type(NULL, "general.architecture") == -1);
        CHECK(stload_model_metadata_type(g, NULL) == -1);
        n = stload_model_metadata_len(g);
        CHECK(n > 5);
        for (i = 0; i < n; i++) CHECK(stload_model_metadata(g, stload_model_metadata_key(g, i)) != NULL);
    }
    stload_model_free(g);
    CHECK(remove(out) == 0);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    test_write(argv[1]);
    test_split(argv[1]);
    test_tokenizer_pre(argv[1]);
    test_quantised(argv[1]);
    test_type_overrides(argv[1]);
    test_read_back(argv[1]);
    printf("c: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
