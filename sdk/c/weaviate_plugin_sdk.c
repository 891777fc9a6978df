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
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

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

/* ---- JSON: nested values ----------------------------------------------------------- */

static const uint8_t *trim_end(const uint8_t *start, const uint8_t *stop) {
    while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t' || stop[-1] == '\n' ||
                            stop[-1] == '\r'))
        stop--;
    return stop;
}

int32_t wv_json_find(const uint8_t *json, uint32_t len, const char *key, const uint8_t **val,
                     uint32_t *val_len) {
    const uint8_t *end, *p = find_key(json, len, key, &end);
    if (!p) return 0;
    const uint8_t *q = skip_value(p, end);
    if (!q) return 0;
    q = trim_end(p, q);
    if (q == p) return 0;
    *val = p;
    *val_len = (uint32_t)(q - p);
    return 1;
}

int32_t wv_json_iter_init(wv_json_iter *it, const uint8_t *val, uint32_t len) {
    const uint8_t *end = val + len, *p = skip_ws(val, end);
    if (p >= end || (*p != '{' && *p != '['))
        return wv_error(WV_ERR_INVALID, "expected a JSON object or array");
    it->close = *p == '{' ? '}' : ']';
    it->pos = p + 1;
    it->end = end;
    it->started = 0;
    return WV_OK;
}

int32_t wv_json_iter_next(wv_json_iter *it, const uint8_t **key, uint32_t *key_len,
                          const uint8_t **val, uint32_t *val_len) {
    const uint8_t *end = it->end, *p = skip_ws(it->pos, end);
    if (p >= end) return wv_error(WV_ERR_INVALID, "unterminated JSON object or array");
    if (*p == it->close) {
        it->pos = p;
        return 0;
    }
    if (it->started) {
        if (*p != ',') return wv_error(WV_ERR_INVALID, "expected ',' in JSON");
        p = skip_ws(p + 1, end);
    }
    *key = NULL;
    *key_len = 0;
    if (it->close == '}') {
        const uint8_t *k = p < end && *p == '"' ? skip_string(p, end) : NULL;
        if (!k) return wv_error(WV_ERR_INVALID, "expected a key in JSON object");
        *key = p;
        *key_len = (uint32_t)(k - p);
        p = skip_ws(k, end);
        if (p >= end || *p != ':') return wv_error(WV_ERR_INVALID, "expected ':' in JSON object");
        p = skip_ws(p + 1, end);
    }
    const uint8_t *q = skip_value(p, end);
    if (!q || q == p) return wv_error(WV_ERR_INVALID, "malformed JSON value");
    *val = p;
    *val_len = (uint32_t)(trim_end(p, q) - p);
    it->pos = q;
    it->started = 1;
    return 1;
}

static int hex_digit(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* p at the 4 hex digits after \u: the code unit, or -1. */
static int32_t hex4(const uint8_t *p, const uint8_t *end) {
    if (end - p < 4) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static int32_t append_utf8(wv_buf *out, uint32_t cp) {
    uint8_t b[4];
    uint32_t n;
    if (cp < 0x80) {
        b[0] = (uint8_t)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6);
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | cp >> 12);
        b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (uint8_t)(0xF0 | cp >> 18);
        b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (uint8_t)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return wv_buf_append(out, b, n);
}

int32_t wv_json_decode_string(const uint8_t *val, uint32_t len, wv_buf *out) {
    if (len < 2 || val[0] != '"' || val[len - 1] != '"')
        return wv_error(WV_ERR_INVALID, "expected a JSON string");
    const uint8_t *p = val + 1, *end = val + len - 1;
    while (p < end) {
        const uint8_t *run = p;
        while (p < end && *p != '\\') p++;
        int32_t rc = wv_buf_append(out, run, (uint32_t)(p - run));
        if (rc) return rc;
        if (p >= end) break;
        if (++p >= end) return wv_error(WV_ERR_INVALID, "malformed JSON string escape");
        uint8_t c = *p++;
        uint32_t cp;
        switch (c) {
        case '"': case '\\': case '/': cp = c; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            int32_t unit = hex4(p, end);
            if (unit < 0) return wv_error(WV_ERR_INVALID, "malformed \\u escape in JSON string");
            p += 4;
            cp = (uint32_t)unit;
            if (unit >= 0xD800 && unit <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                int32_t low = hex4(p + 2, end);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + (((uint32_t)unit - 0xD800) << 10) + ((uint32_t)low - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* a lone surrogate */
            break;
        }
        default: return wv_error(WV_ERR_INVALID, "unknown escape \\%c in JSON string", c);
        }
        rc = append_utf8(out, cp);
        if (rc) return rc;
    }
    return WV_OK;
}

int32_t wv_json_string_equals(const uint8_t *val, uint32_t len, const char *text) {
    wv_buf tmp = {0};
    int32_t equal = 0;
    if (wv_json_decode_string(val, len, &tmp) == WV_OK) {
        size_t n = strlen(text);
        equal = tmp.len == n && (n == 0 || memcmp(tmp.data, text, n) == 0);
    }
    free(tmp.data);
    return equal;
}

int32_t wv_json_append_string(wv_buf *out, const void *data, uint32_t len) {
    static const char hex[] = "0123456789abcdef";
    const uint8_t *s = data;
    int32_t rc = wv_buf_reserve(out, len + 2);
    if (rc) return rc;
    out->data[out->len++] = '"';
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        uint32_t n = 2;
        if (c == '"' || c == '\\') esc[1] = (char)c;
        else if (c == '\n') esc[1] = 'n';
        else if (c == '\r') esc[1] = 'r';
        else if (c == '\t') esc[1] = 't';
        else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        } else {
            rc = wv_buf_append(out, &c, 1);
            if (rc) return rc;
            continue;
        }
        rc = wv_buf_append(out, esc, n);
        if (rc) return rc;
    }
    return wv_buf_append(out, "\"", 1);
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

/* The first 0xFF byte in [p, end), or NULL: memchr, except in WebAssembly, where
 * wasi-libc's memchr is a byte loop (an epoch check per byte): there 16 bytes per step
 * with SIMD128 (build-plugin.sh enables it), else 8 with a word trick. */
static const uint8_t *wv_find_separator(const uint8_t *p, const uint8_t *end) {
#if defined(__wasm_simd128__)
    const v128_t ff = wasm_i8x16_splat((int8_t)0xFF);
    while (end - p >= 16) {
        uint32_t mask = (uint32_t)wasm_i8x16_bitmask(wasm_i8x16_eq(wasm_v128_load(p), ff));
        if (mask) return p + __builtin_ctz(mask);
        p += 16;
    }
#elif defined(__wasm__)
    while (end - p >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        uint64_t x = ~word; /* a 0xFF byte is now 0x00 */
        if ((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) break;
        p += 8;
    }
#else
    return memchr(p, 0xFF, (size_t)(end - p));
#endif
    for (; p < end; p++)
        if (*p == 0xFF) return p;
    return NULL;
}

int32_t wv_sdk_vectorize_into(wv_embed_fn embed, uint32_t dims, const uint8_t *texts,
                              uint32_t texts_len, uint32_t count, float *out,
                              uint32_t out_floats) {
    if (dims == 0) return wv_error(WV_ERROR, "the vectorizer has 0 dimensions (not initialised?)");
    if ((uint64_t)count * dims != out_floats)
        return wv_error(WV_ERR_INVALID, "%u texts of %u dimensions do not fill %u floats", count,
                        dims, out_floats);
    const uint8_t *pos = texts;
    const uint8_t *end = texts + texts_len;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *stop = wv_find_separator(pos, end);
        if (i + 1 < count && stop == NULL)
            return wv_error(WV_ERR_INVALID, "%u texts announced, %u sent", count, i + 1);
        if (i + 1 == count) {
            if (stop != NULL)
                return wv_error(WV_ERR_INVALID, "more than the %u texts announced", count);
            stop = end;
        }
        int32_t rc = embed(pos, (uint32_t)(stop - pos), out + (size_t)i * dims, dims);
        if (rc < 0) return rc;
        pos = stop + 1;
    }
    return WV_OK;
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
