/*
 * c-embedder: a hashing character-trigram vectorizer with a small model file.
 *
 * The model (build/model/model.bin, written by build.sh) holds the number of dimensions, a
 * hash seed and one weight per dimension:
 *     "WVHM" | u32 version (1) | u32 dims | u32 seed | dims x float32 weights   (LE)
 * A text is lowercased (ASCII), framed by spaces, and every byte trigram is hashed
 * (FNV-1a with the seed) to a dimension and a sign; the weighted counts are then
 * L2-normalised. Deterministic, no allocation per call.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weaviate_plugin_sdk.h"

#define MAX_DIMS 4096

static uint32_t model_dims;
static uint32_t model_seed;
static float weights[MAX_DIMS];
static int lowercase = 1;

static uint32_t read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int32_t load_model(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return wv_error(WV_ERROR, "cannot open model file %s", path);
    uint8_t head[16];
    if (fread(head, 1, 16, f) != 16 || memcmp(head, "WVHM", 4) != 0 || read_u32(head + 4) != 1) {
        fclose(f);
        return wv_error(WV_ERROR, "%s is not a WVHM v1 model file", path);
    }
    uint32_t dims = read_u32(head + 8);
    if (dims == 0 || dims > MAX_DIMS) {
        fclose(f);
        return wv_error(WV_ERROR, "model %s has %u dimensions (1..%d)", path, dims, MAX_DIMS);
    }
    size_t got = fread(weights, sizeof(float), dims, f);
    fclose(f);
    if (got != dims) return wv_error(WV_ERROR, "model %s is truncated", path);
    model_dims = dims;
    model_seed = read_u32(head + 12);
    return WV_OK;
}

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    char path[1024], resolved[2048];
    if (wv_json_get_string(config, len, "modelPath", path, sizeof path) < 0)
        return wv_error(WV_ERR_INVALID, "config.modelPath is missing or too long");
    if (!wv_resolve_path(path, resolved, sizeof resolved))
        return wv_error(WV_ERR_INVALID, "config.modelPath is too long");
    int32_t rc = load_model(resolved);
    if (rc) return rc;
    double value;
    if (wv_json_get_number(config, len, "dimensions", &value) == 0 && (uint32_t)value != model_dims)
        return wv_error(WV_ERR_INVALID, "config.dimensions is %g but the model has %u", value,
                        model_dims);
    if (wv_json_get_number(config, len, "lowercase", &value) == 0) lowercase = value != 0;
    printf("c-embedder: loaded %s (%u dimensions)\n", path, model_dims);
    fflush(stdout);
    return WV_OK;
}

static inline uint8_t fold(uint8_t c) {
    return (lowercase && c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* One trigram (a, b, c) into out; *sumsq follows the sum of squares of out (exact
 * products in double), so no pass over the vector is needed to normalise it. */
static inline void trigram(float *out, uint32_t dims, uint32_t seed, uint8_t a, uint8_t b,
                           uint8_t c, double *sumsq) {
    uint32_t h = 2166136261u ^ seed;
    h = (h ^ a) * 16777619u;
    h = (h ^ b) * 16777619u;
    h = (h ^ c) * 16777619u;
    uint32_t d = h % dims;
    float before = out[d];
    float after = before + ((h & 0x80000000u) ? -weights[d] : weights[d]);
    out[d] = after;
    *sumsq += (double)after * after - (double)before * before;
}

/* Loops are few and wide: in WebAssembly every loop back-edge pays the epoch check that
 * enforces the call's deadline, so the trigram loop is unrolled 4x (WV_UNROLL: clang's
 * -funroll-loops does not unroll a loop with a runtime trip count for wasm32), the sum
 * of squares is kept as the trigrams are added (no norm loop), and the scale loop works
 * on 64 floats (16 SIMD vectors) per iteration. See docs/performance.md. */
#define LANES 64

static int32_t embed(const uint8_t *text, uint32_t len, float *out, uint32_t dims) {
    memset(out, 0, dims * sizeof(float));
    const uint32_t seed = model_seed;
    double sumsq = 0;
    /* framed text: ' ' text ' ', read through a 3-byte window */
    uint8_t a = ' ', b = len ? fold(text[0]) : ' ';
    if (len) {
        WV_UNROLL(4)
        for (uint32_t i = 1; i < len; i++) {
            uint8_t c = fold(text[i]);
            trigram(out, dims, seed, a, b, c, &sumsq);
            a = b;
            b = c;
        }
        trigram(out, dims, seed, a, b, ' ', &sumsq);
    }
    if (sumsq > 0) {
        float scale = (float)(1.0 / sqrt(sumsq));
        uint32_t d = 0;
        for (; d + LANES <= dims; d += LANES)
            for (int k = 0; k < LANES; k++) out[d + k] *= scale;
        for (; d < dims; d++) out[d] *= scale;
    }
    return WV_OK;
}

WV_DEFINE_VECTORIZER(embed, model_dims)
