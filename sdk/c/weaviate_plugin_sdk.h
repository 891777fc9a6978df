/*
 * weaviate_plugin_sdk.h -- helpers for writing weaviate-ext plugins in C.
 *
 * Compile weaviate_plugin_sdk.c together with your plugin source, with
 * -fvisibility=hidden and -I hookspecs -I sdk/c:
 *
 *   wasm:   clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--export-dynamic \
 *               -fvisibility=hidden -o plugin.wasm plugin.c weaviate_plugin_sdk.c
 *   native: gcc -O2 -shared -fPIC -fvisibility=hidden -o plugin.so plugin.c \
 *               weaviate_plugin_sdk.c
 *
 * The SDK implements the exports every plugin needs (wv_abi_version, wv_alloc,
 * wv_free, wv_last_error, and wv_set_emit for native builds). The plugin implements
 * wv_init and either its type's exports directly (see hookspecs/weaviate_plugin.h) or
 * one small function plus a WV_DEFINE_* macro below, e.g. a vectorizer:
 *
 *   static int32_t embed(const uint8_t *text, uint32_t len, float *out, uint32_t dims) {
 *       ... fill out[0..dims) ...
 *       return WV_OK;
 *   }
 *   WV_DEFINE_VECTORIZER(embed, 768)
 *   WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) { return WV_OK; }
 */
#ifndef WEAVIATE_PLUGIN_SDK_H
#define WEAVIATE_PLUGIN_SDK_H

#include <stddef.h>
#include <stdint.h>

#include "weaviate_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loops ----------------------------------------------------------------------- */

/* Put before a hot loop whose trip count is only known at run time (a loop over a
 * text's bytes): clang unrolls it n times. In WebAssembly every loop back-edge pays an
 * epoch check (how the host enforces call deadlines), and clang's -funroll-loops leaves
 * such loops alone for wasm32, so fewer back-edges are worth asking for; the check of
 * the deadline still comes once per n iterations. Nothing with other compilers. */
#if defined(__clang__)
#define WV_UNROLL_PRAGMA_(x) _Pragma(#x)
#define WV_UNROLL(n) WV_UNROLL_PRAGMA_(clang loop unroll_count(n))
#else
#define WV_UNROLL(n)
#endif

/* ---- errors -------------------------------------------------------------------- */

/* Record the message wv_last_error returns (printf-style) and return `status`. */
int32_t wv_error(int32_t status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- a growable byte buffer ------------------------------------------------------ */

typedef struct {
    uint8_t *data;
    uint32_t len;
    uint32_t cap;
} wv_buf;

/* Make room for `extra` more bytes; 0 on success, WV_ERR_NOMEM otherwise. */
int32_t wv_buf_reserve(wv_buf *buf, uint32_t extra);
int32_t wv_buf_append(wv_buf *buf, const void *data, uint32_t len);
/* Append a packed string: u32 little-endian length, then the bytes. */
int32_t wv_buf_append_packed(wv_buf *buf, const void *data, uint32_t len);
void wv_buf_clear(wv_buf *buf);

/* The plugin's output buffer: emptied by wv_output_begin, valid until the next call. */
wv_buf *wv_output_begin(void);
/* Hand the output buffer to the host through out_ptr/out_len; returns WV_OK. */
int32_t wv_output_finish(const uint8_t **out_ptr, uint32_t *out_len);

/* ---- packed strings ---------------------------------------------------------------- */

typedef struct {
    const uint8_t *pos;
    const uint8_t *end;
} wv_texts;

void wv_texts_init(wv_texts *it, const uint8_t *packed, uint32_t packed_len);
/* The next string: 1 and (ptr, len), 0 at the end, WV_ERR_INVALID if malformed. */
int32_t wv_texts_next(wv_texts *it, const uint8_t **ptr, uint32_t *len);

/* ---- JSON config (top-level keys of a flat object) ------------------------------- */

/* Copy the string value of top-level `key` into buf (NUL-terminated, escapes \" \\ \/
 * \n \t decoded). Returns its length, -1 if absent or not a string, -2 if too long. */
int32_t wv_json_get_string(const uint8_t *json, uint32_t len, const char *key, char *buf,
                           uint32_t cap);
/* The number or boolean (1/0) value of top-level `key`; 0 if found, -1 otherwise. */
int32_t wv_json_get_number(const uint8_t *json, uint32_t len, const char *key, double *out);

/* ---- JSON values: nested objects and arrays (config, credentials, identities) ----- */

/* The raw text of the value of top-level `key` (a string token keeps its quotes):
 * 1 and (val, val_len) when found, 0 when absent or the JSON is malformed. */
int32_t wv_json_find(const uint8_t *json, uint32_t len, const char *key, const uint8_t **val,
                     uint32_t *val_len);

/* Iterates the members of an object or the elements of an array. */
typedef struct {
    const uint8_t *pos;
    const uint8_t *end;
    uint8_t close;
    uint8_t started;
} wv_json_iter;

/* Start on a value that is an object or an array: 0, or WV_ERR_INVALID if it is not. */
int32_t wv_json_iter_init(wv_json_iter *it, const uint8_t *val, uint32_t len);
/* The next member (key: the raw key token with its quotes; NULL/0 for arrays) and its
 * raw value: 1, 0 at the end, WV_ERR_INVALID if malformed. */
int32_t wv_json_iter_next(wv_json_iter *it, const uint8_t **key, uint32_t *key_len,
                          const uint8_t **val, uint32_t *val_len);

/* Decode a string token (with its quotes; every JSON escape including \uXXXX and
 * surrogate pairs) and append the UTF-8 to `out`: WV_OK, WV_ERR_INVALID if `val` is not
 * a well-formed string, WV_ERR_NOMEM. */
int32_t wv_json_decode_string(const uint8_t *val, uint32_t len, wv_buf *out);
/* 1 if the string token decodes to exactly the NUL-terminated `text`, else 0. */
int32_t wv_json_string_equals(const uint8_t *val, uint32_t len, const char *text);
/* Append `data` as a JSON string token (quotes, escapes) to `out`. */
int32_t wv_json_append_string(wv_buf *out, const void *data, uint32_t len);

/* ---- paths ------------------------------------------------------------------------- */

/* Resolve a path from the config for opening. wasm: unchanged (relative paths resolve
 * against the directories the manifest grants, e.g. "model/x" under guest "/model").
 * native: a relative path is taken relative to the directory of the .so, so that the
 * same manifest default works for both builds. Returns buf, or NULL if too long. */
const char *wv_resolve_path(const char *path, char *buf, uint32_t cap);

/* ---- streaming (generators) -------------------------------------------------------- */

/* Send one chunk to the host (wasm import or the native callback). Non-zero: stop. */
int32_t wv_sdk_emit(const void *chunk, uint32_t len);

/* ---- adapters: a plugin type from one function ------------------------------------ */

/* Vectorizer: fill out[0..dims) for one text. */
typedef int32_t (*wv_embed_fn)(const uint8_t *text, uint32_t len, float *out, uint32_t dims);
int32_t wv_sdk_vectorize_batch(wv_embed_fn embed, uint32_t dims, const uint8_t *texts,
                               uint32_t texts_len, uint32_t count, const uint8_t **out_ptr,
                               uint32_t *out_len);
/* wv_vectorize_into: texts joined by 0xFF, the vectors written to the host's buffer. */
int32_t wv_sdk_vectorize_into(wv_embed_fn embed, uint32_t dims, const uint8_t *texts,
                              uint32_t texts_len, uint32_t count, float *out,
                              uint32_t out_floats);
#define WV_DEFINE_VECTORIZER(embed, dims)                                                       \
    WV_EXPORT int32_t wv_vectorize_batch(const uint8_t *texts, uint32_t texts_len,              \
                                         uint32_t count, const uint8_t **out_ptr,               \
                                         uint32_t *out_len) {                                   \
        return wv_sdk_vectorize_batch((embed), (dims), texts, texts_len, count, out_ptr,        \
                                      out_len);                                                 \
    }                                                                                           \
    WV_EXPORT int32_t wv_vectorize_into(const uint8_t *texts, uint32_t texts_len,               \
                                        uint32_t count, float *out, uint32_t out_floats) {      \
        return wv_sdk_vectorize_into((embed), (dims), texts, texts_len, count, out, out_floats); \
    }

/* Transformer: append the transformed text to `out`. */
typedef int32_t (*wv_transform_fn)(const uint8_t *text, uint32_t len, wv_buf *out);
int32_t wv_sdk_transform(wv_transform_fn fn, const uint8_t *text, uint32_t len,
                         const uint8_t **out_ptr, uint32_t *out_len);
int32_t wv_sdk_transform_batch(wv_transform_fn fn, const uint8_t *texts, uint32_t texts_len,
                               uint32_t count, const uint8_t **out_ptr, uint32_t *out_len);
#define WV_DEFINE_TRANSFORMER(fn)                                                               \
    WV_EXPORT int32_t wv_transform(const uint8_t *text, uint32_t len, const uint8_t **out_ptr, \
                                   uint32_t *out_len) {                                         \
        return wv_sdk_transform((fn), text, len, out_ptr, out_len);                             \
    }                                                                                           \
    WV_EXPORT int32_t wv_transform_batch(const uint8_t *texts, uint32_t texts_len,              \
                                         uint32_t count, const uint8_t **out_ptr,               \
                                         uint32_t *out_len) {                                   \
        return wv_sdk_transform_batch((fn), texts, texts_len, count, out_ptr, out_len);         \
    }

/* Reranker: the score of one document for the query. */
typedef int32_t (*wv_score_fn)(const uint8_t *query, uint32_t query_len, const uint8_t *doc,
                               uint32_t doc_len, float *score);
int32_t wv_sdk_rerank(wv_score_fn fn, const uint8_t *query, uint32_t query_len,
                      const uint8_t *docs, uint32_t docs_len, uint32_t count,
                      const uint8_t **out_ptr, uint32_t *out_len);
#define WV_DEFINE_RERANKER(fn)                                                                  \
    WV_EXPORT int32_t wv_rerank(const uint8_t *query, uint32_t query_len, const uint8_t *docs, \
                                uint32_t docs_len, uint32_t count, const uint8_t **out_ptr,     \
                                uint32_t *out_len) {                                            \
        return wv_sdk_rerank((fn), query, query_len, docs, docs_len, count, out_ptr, out_len);  \
    }

#ifdef __cplusplus
}
#endif

#endif /* WEAVIATE_PLUGIN_SDK_H */
