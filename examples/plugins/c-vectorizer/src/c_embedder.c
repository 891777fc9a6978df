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

static int32_t embed(const uint8_t *text, uint32_t len, float *out, uint32_t dims) {
    memset(out, 0, dims * sizeof(float));
    /* framed text: ' ' text ' ', read through a 3-byte window */
    uint64_t total = (uint64_t)len + 2;
    uint8_t a = ' ', b = len ? fold(text[0]) : ' ';
    for (uint64_t i = 2; i < total; i++) {
        uint8_t c = i - 1 < len ? fold(text[i - 1]) : ' ';
        uint32_t h = 2166136261u ^ model_seed;
        h = (h ^ a) * 16777619u;
        h = (h ^ b) * 16777619u;
        h = (h ^ c) * 16777619u;
        uint32_t d = h % dims;
        out[d] += (h & 0x80000000u) ? -weights[d] : weights[d];
        a = b;
        b = c;
    }
    /* sum of squares in 16 float lanes (compilers vectorise this to 4x4 lanes: few
     * loop iterations, which is what a wasm loop pays its deadline check on) */
    float acc[16] = {0};
    uint32_t d = 0;
    for (; d + 16 <= dims; d += 16)
        for (int k = 0; k < 16; k++) acc[k] += out[d + k] * out[d + k];
    double norm = 0;
    for (; d < dims; d++) norm += (double)out[d] * out[d];
    for (int k = 0; k < 16; k++) norm += acc[k];
    if (norm > 0) {
        float scale = (float)(1.0 / sqrt(norm));
        for (d = 0; d + 16 <= dims; d += 16)
            for (int k = 0; k < 16; k++) out[d + k] *= scale;
        for (; d < dims; d++) out[d] *= scale;
    }
    return WV_OK;
}

WV_DEFINE_VECTORIZER(embed, model_dims)
