/* weaviate_plugin_sdk.c -- see weaviate_plugin_sdk.h. */
#if !defined(__wasm__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif
#include "weaviate_plugin_sdk.h"

#if !defined(__wasm__)
#include <dlfcn.h>
#endif

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the exports every plugin needs ---------------------------------------------- */

static char last_error[1024];
static uint32_t last_error_len;

WV_EXPORT uint32_t wv_abi_version(void) { return WV_ABI_VERSION; }

WV_EXPORT void *wv_alloc(uint32_t size) { return malloc(size ? size : 1); }

WV_EXPORT void wv_free(void *ptr, uint32_t size) {
    (void)size;
    free(ptr);
}

WV_EXPORT void wv_last_error(const uint8_t **msg_ptr, uint32_t *msg_len) {
    *msg_ptr = (const uint8_t *)last_error;
    *msg_len = last_error_len;
}

int32_t wv_error(int32_t status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(last_error, sizeof last_error, fmt, args);
    va_end(args);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof last_error) n = sizeof last_error - 1;
    last_error_len = (uint32_t)n;
    return status;
}

#if !defined(__wasm__)
static wv_emit_fn host_emit;
WV_EXPORT void wv_set_emit(wv_emit_fn emit) { host_emit = emit; }
#endif

int32_t wv_sdk_emit(const void *chunk, uint32_t len) {
#if defined(__wasm__)
    return wv_emit((const uint8_t *)chunk, len);
#else
    return host_emit ? host_emit((const uint8_t *)chunk, len) : 1;
#endif
}

const char *wv_resolve_path(const char *path, char *buf, uint32_t cap) {
    size_t n = strlen(path);
#if !defined(__wasm__)
    Dl_info info;
    if (path[0] != '/' && dladdr((void *)&wv_abi_version, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        size_t dir = slash ? (size_t)(slash - info.dli_fname) : 0;
        if (dir + 1 + n + 1 > cap) return NULL;
        if (dir) {
            memcpy(buf, info.dli_fname, dir);
            buf[dir] = '/';
            memcpy(buf + dir + 1, path, n + 1);
        } else {
            memcpy(buf, path, n + 1);
        }
        return buf;
    }
#endif
    if (n + 1 > cap) return NULL;
    memcpy(buf, path, n + 1);
    return buf;
}

/* ---- buffers ---------------------------------------------------------------------- */

int32_t wv_buf_reserve(wv_buf *buf, uint32_t extra) {
    uint64_t need = (uint64_t)buf->len + extra;
    if (need <= buf->cap) return WV_OK;
    if (need > 0xFFFFFFF0u) return wv_error(WV_ERR_NOMEM, "buffer larger than 4 GiB");
    uint64_t cap = buf->cap ? buf->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > 0xFFFFFFF0u) cap = need;
    uint8_t *data = realloc(buf->data, (size_t)cap);
    if (!data) return wv_error(WV_ERR_NOMEM, "out of memory (%llu bytes)", (unsigned long long)cap);
    buf->data = data;
    buf->cap = (uint32_t)cap;
    return WV_OK;
}

int32_t wv_buf_append(wv_buf *buf, const void *data, uint32_t len) {
    int32_t rc = wv_buf_reserve(buf, len);
    if (rc) return rc;
    if (len) memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return WV_OK;
}

int32_t wv_buf_append_packed(wv_buf *buf, const void *data, uint32_t len) {
    uint8_t head[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                       (uint8_t)(len >> 24)};
    int32_t rc = wv_buf_reserve(buf, len + 4);
    if (rc) return rc;
    wv_buf_append(buf, head, 4);
    return wv_buf_append(buf, data, len);
}

void wv_buf_clear(wv_buf *buf) { buf->len = 0; }

static wv_buf output;

wv_buf *wv_output_begin(void) {
    output.len = 0;
    return &output;
}

int32_t wv_output_finish(const uint8_t **out_ptr, uint32_t *out_len) {
    *out_ptr = output.data;
    *out_len = output.len;
    return WV_OK;
}

/* ---- packed strings ---------------------------------------------------------------- */

void wv_texts_init(wv_texts *it, const uint8_t *packed, uint32_t packed_len) {
    it->pos = packed;
    it->end = packed + packed_len;
}

int32_t wv_texts_next(wv_texts *it, const uint8_t **ptr, uint32_t *len) {
    if (it->pos == it->end) return 0;
    if (it->end - it->pos < 4) return wv_error(WV_ERR_INVALID, "truncated packed string header");
    uint32_t n = (uint32_t)it->pos[0] | (uint32_t)it->pos[1] << 8 | (uint32_t)it->pos[2] << 16 |
                 (uint32_t)it->pos[3] << 24;
    it->pos += 4;
    if ((uint64_t)(it->end - it->pos) < n) return wv_error(WV_ERR_INVALID, "truncated packed string");
    *ptr = it->pos;
    *len = n;
    it->pos += n;
    return 1;
}

/* ---- JSON: top-level keys of an object ------------------------------------------- */

static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p at '"': past the closing quote, or NULL. */
static const uint8_t *skip_string(const uint8_t *p, const uint8_t *end) {
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* Skip any JSON value; NULL if malformed. */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end) {
    p = skip_ws(p, end);
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                if (!p) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if (*p == '}' || *p == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']') p++;
    return p;
}

/* The value of top-level `key`, or NULL. */
static const uint8_t *find_key(const uint8_t *json, uint32_t len, const char *key,
                               const uint8_t **end_out) {
    const uint8_t *p = json, *end = json + len;
    size_t klen = strlen(key);
    p = skip_ws(p, end);
    if (p >= end || *p != '{') return NULL;
    p++;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"') return NULL;
        const uint8_t *kstart = p + 1, *kend = skip_string(p, end);
        if (!kend) return NULL;
        p = skip_ws(kend, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        if ((size_t)(kend - 1 - kstart) == klen && memcmp(kstart, key, klen) == 0) {
            *end_out = end;
            return p;
        }
        p = skip_value(p, end);
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        return NULL;
    }
}

int32_t wv_json_get_string(const uint8_t *json, uint32_t len, const char *key, char *buf,
                           uint32_t cap) {
    const uint8_t *end, *p = find_key(json, len, key, &end);
    if (!p || *p != '"' || cap == 0) return -1;
    uint32_t n = 0;
    for (p++; p < end && *p != '"'; p++) {
        uint8_t c = *p;
        if (c == '\\' && p + 1 < end) {
            c = *++p;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'r') c = '\r';
        }
        if (n + 1 >= cap) return -2;
        buf[n++] = (char)c;
    }
    buf[n] = 0;
    return (int32_t)n;
}

int32_t wv_json_get_number(const uint8_t *json, uint32_t len, const char *key, double *out) {
    const uint8_t *end, *p = find_key(json, len, key, &end);
    if (!p) return -1;
    if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
        *out = 1;
        return 0;
    }
    if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
        *out = 0;
        return 0;
    }
    char tmp[64];
    size_t n = 0;
    while (p < end && n + 1 < sizeof tmp && strchr("+-0123456789.eE", *p)) tmp[n++] = (char)*p++;
    if (n == 0) return -1;
    tmp[n] = 0;
    *out = strtod(tmp, NULL);
    return 0;
}

/* ---- adapters ---------------------------------------------------------------------- */

int32_t wv_sdk_vectorize_batch(wv_embed_fn embed, uint32_t dims, const uint8_t *texts,
                               uint32_t texts_len, uint32_t count, const uint8_t **out_ptr,
                               uint32_t *out_len) {
    if (dims == 0) return wv_error(WV_ERROR, "the vectorizer has 0 dimensions (not initialised?)");
    uint64_t bytes = (uint64_t)count * dims * sizeof(float);
    if (bytes > 0x7FFFFFFFu) return wv_error(WV_ERR_NOMEM, "batch output too large");
    wv_buf *out = wv_output_begin();
    int32_t rc = wv_buf_reserve(out, (uint32_t)bytes);
    if (rc) return rc;
    wv_texts it;
    wv_texts_init(&it, texts, texts_len);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *text = NULL;
        uint32_t len = 0;
        rc = wv_texts_next(&it, &text, &len);
        if (rc < 0) return rc;
        if (rc == 0) return wv_error(WV_ERR_INVALID, "%u texts announced, %u sent", count, i);
        rc = embed(text, len, (float *)(out->data + (size_t)i * dims * sizeof(float)), dims);
        if (rc < 0) return rc;
    }
    out->len = (uint32_t)bytes;
    return wv_output_finish(out_ptr, out_len);
}

int32_t wv_sdk_transform(wv_transform_fn fn, const uint8_t *text, uint32_t len,
                         const uint8_t **out_ptr, uint32_t *out_len) {
    wv_buf *out = wv_output_begin();
    int32_t rc = fn(text, len, out);
    if (rc < 0) return rc;
    return wv_output_finish(out_ptr, out_len);
}

int32_t wv_sdk_transform_batch(wv_transform_fn fn, const uint8_t *texts, uint32_t texts_len,
                               uint32_t count, const uint8_t **out_ptr, uint32_t *out_len) {
    static wv_buf one;
    wv_buf *out = wv_output_begin();
    wv_texts it;
    wv_texts_init(&it, texts, texts_len);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *text = NULL;
        uint32_t len = 0;
        int32_t rc = wv_texts_next(&it, &text, &len);
        if (rc < 0) return rc;
        if (rc == 0) return wv_error(WV_ERR_INVALID, "%u texts announced, %u sent", count, i);
        wv_buf_clear(&one);
        rc = fn(text, len, &one);
        if (rc < 0) return rc;
        rc = wv_buf_append_packed(out, one.data, one.len);
        if (rc < 0) return rc;
    }
    return wv_output_finish(out_ptr, out_len);
}

int32_t wv_sdk_rerank(wv_score_fn fn, const uint8_t *query, uint32_t query_len,
                      const uint8_t *docs, uint32_t docs_len, uint32_t count,
                      const uint8_t **out_ptr, uint32_t *out_len) {
    wv_buf *out = wv_output_begin();
    int32_t rc = wv_buf_reserve(out, count * (uint32_t)sizeof(float));
    if (rc) return rc;
    wv_texts it;
    wv_texts_init(&it, docs, docs_len);
    float *scores = (float *)out->data;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *doc = NULL;
        uint32_t len = 0;
        rc = wv_texts_next(&it, &doc, &len);
        if (rc < 0) return rc;
        if (rc == 0) return wv_error(WV_ERR_INVALID, "%u documents announced, %u sent", count, i);
        rc = fn(query, query_len, doc, len, &scores[i]);
        if (rc < 0) return rc;
    }
    out->len = count * (uint32_t)sizeof(float);
    return wv_output_finish(out_ptr, out_len);
}
