/*
 * weaviate_plugin.h -- the C ABI between weaviate-ext and wasm / native plugins.
 *
 * ABI version 1.
 *
 * One contract for two runtimes:
 *   - runtime: wasm    a WASI reactor module (wasm32-wasi, -mexec-model=reactor) that
 *                      exports the functions below; the host runs it in wasmtime.
 *   - runtime: native  a shared library (.so) built from the same source; the host
 *                      loads it with cffi, in its own process, unsandboxed.
 *
 * ------------------------------------------------------------------------------------
 * Conventions
 * ------------------------------------------------------------------------------------
 *
 * Memory.  Every pointer is an address in the plugin's memory (wasm: linear memory;
 *   native: the process). The host writes inputs into buffers it obtained from
 *   wv_alloc and may reuse them across calls; a plugin must not keep pointers to its
 *   inputs after it returns. Outputs are owned by the plugin: it stores a pointer and a
 *   length through the out_ptr/out_len arguments, and the buffer must stay valid and
 *   unchanged until the next call into the same plugin instance. The host copies what
 *   it needs before that. A host never calls wv_free on an output.
 *
 * Strings.  UTF-8, pointer + length, not NUL-terminated (they may contain NUL).
 *
 * Packed strings (a batch of texts).  `count` entries, each a uint32 little-endian
 *   byte length followed by that many UTF-8 bytes, no padding:
 *       [len0:u32le][bytes0][len1:u32le][bytes1]...
 *   The total length in bytes is passed too; a plugin must not read past it.
 *
 * Vectors.  Packed little-endian IEEE-754 float32, row after row: a batch of `count`
 *   texts gives count * dims floats (out_len = count * dims * 4 bytes). The host takes
 *   dims = out_len / 4 / count and checks it against the manifest's
 *   capabilities.dimensions.
 *
 * JSON.  Configuration, generation options, credentials and identities cross as UTF-8
 *   JSON text (an object).
 *
 * Status.  Every hook returns an int32:
 *     < 0  an error; the host then calls wv_last_error to read a message.
 *          WV_ERROR (-1) generic, WV_ERR_NOMEM (-2) out of memory (the host raises
 *          ResourceLimitExceeded), WV_ERR_INVALID (-3) the input is not acceptable
 *          (InvalidInput), WV_ERR_DENIED (-4) credentials recognised and rejected
 *          (AuthenticationError). Any other negative value is treated as WV_ERROR.
 *    >= 0  success; 0 unless the hook documents other values (WV_NOT_FOUND, ...).
 *
 * Batches.  A batch crosses the boundary in one call. The host never sends more than
 *   the manifest's capabilities.maxBatchSize items and never an empty batch.
 *
 * Threads.  A plugin instance is called by one thread at a time. The wasm host runs a
 *   small pool of instances (sized from resources.cpu), each with its own memory;
 *   the native host serialises the calls into a library.
 *
 * Lifecycle.  wasm: the host instantiates the module, calls the reactor's
 *   _initialize, checks wv_abi_version, then calls wv_init once per instance. After a
 *   trap the instance is discarded and a fresh one is made (and initialised) for the
 *   next call. native: dlopen, wv_abi_version, wv_set_emit (if exported), wv_init.
 *
 * Sandbox (wasm).  WASI deny-by-default: no arguments, no environment, no files, no
 *   sockets. The manifest's spec.permissions.env passes named environment variables
 *   and spec.permissions.directories pre-opens host directories (read-only unless
 *   mode: rw) at the guest path given. Memory is limited by resources.memory; a call
 *   running past its deadline is interrupted. stdout/stderr go to the host's log.
 *
 * ------------------------------------------------------------------------------------
 * Exports: every plugin
 * ------------------------------------------------------------------------------------
 *
 *   uint32_t wv_abi_version(void);
 *       Return WV_ABI_VERSION as compiled. A mismatch refuses the load.
 *
 *   void *wv_alloc(uint32_t size);
 *       Allocate size bytes (8-byte aligned) for the host to write inputs into;
 *       NULL (0) when out of memory.
 *
 *   void wv_free(void *ptr, uint32_t size);
 *       Release a buffer from wv_alloc (size is the size it was allocated with).
 *
 *   int32_t wv_init(const uint8_t *config, uint32_t config_len);
 *       The plugin's resolved configuration (spec.config after host values and
 *       defaults; secrets revealed) as a JSON object. Called once per instance before
 *       any hook. Load models here. An error refuses the load.
 *
 *   void wv_last_error(const uint8_t **msg_ptr, uint32_t *msg_len);
 *       The message of the last error on this instance (UTF-8). Valid until the next
 *       call.
 *
 * ------------------------------------------------------------------------------------
 * Exports: one set per plugin type (spec.type)
 * ------------------------------------------------------------------------------------
 *
 * vectorizer (required: wv_vectorize_batch; optional: wv_vectorize_into)
 *   int32_t wv_vectorize_batch(const uint8_t *texts, uint32_t texts_len, uint32_t count,
 *                              const uint8_t **out_ptr, uint32_t *out_len);
 *       texts: packed strings; out: count * dims packed float32.
 *   int32_t wv_vectorize_into(const uint8_t *texts, uint32_t texts_len, uint32_t count,
 *                             float *out, uint32_t out_floats);
 *       The fast path, used when the manifest declares capabilities.dimensions: texts
 *       are the `count` UTF-8 texts joined by the byte 0xFF (which no UTF-8 text
 *       contains; no length prefixes), and the plugin writes count * dims float32 into
 *       the host's buffer `out` of `out_floats` floats (exactly count * dims). The host
 *       packs nothing and copies nothing for a native plugin. WV_DEFINE_VECTORIZER
 *       (sdk/c) and export_vectorizer! (sdk/rust) define both exports.
 *
 * transformer (required: wv_transform; optional: wv_transform_batch)
 *   int32_t wv_transform(const uint8_t *text, uint32_t len,
 *                        const uint8_t **out_ptr, uint32_t *out_len);
 *       out: the transformed text (UTF-8).
 *   int32_t wv_transform_batch(const uint8_t *texts, uint32_t texts_len, uint32_t count,
 *                              const uint8_t **out_ptr, uint32_t *out_len);
 *       out: `count` packed strings, one per input, in order.
 *
 * reranker (required: wv_rerank)
 *   int32_t wv_rerank(const uint8_t *query, uint32_t query_len,
 *                     const uint8_t *docs, uint32_t docs_len, uint32_t count,
 *                     const uint8_t **out_ptr, uint32_t *out_len);
 *       docs: packed strings; out: `count` packed float32 scores in input order
 *       (higher ranks higher). The host sorts.
 *
 * generator (required: wv_generate and wv_generate_stream)
 *   int32_t wv_generate(const uint8_t *prompt, uint32_t prompt_len,
 *                       const uint8_t *options, uint32_t options_len,
 *                       const uint8_t **out_ptr, uint32_t *out_len);
 *       options: JSON object (max_tokens, temperature, ...); out: the whole answer.
 *   int32_t wv_generate_stream(const uint8_t *prompt, uint32_t prompt_len,
 *                              const uint8_t *options, uint32_t options_len);
 *       Produce the answer chunk by chunk through the host's wv_emit (below). When
 *       wv_emit returns non-zero the caller stopped listening: return 0 promptly.
 *
 * storage (required: wv_store, wv_retrieve, wv_delete)
 *   int32_t wv_store(const uint8_t *key, uint32_t key_len,
 *                    const uint8_t *data, uint32_t data_len);
 *   int32_t wv_retrieve(const uint8_t *key, uint32_t key_len,
 *                       const uint8_t **out_ptr, uint32_t *out_len);
 *       0 and the bytes, or WV_NOT_FOUND (1) when there is no such key.
 *   int32_t wv_delete(const uint8_t *key, uint32_t key_len);
 *       1 if the key existed, 0 if it did not.
 *
 * auth (required: wv_authenticate; optional: wv_authorize)
 *   int32_t wv_authenticate(const uint8_t *credentials, uint32_t len,
 *                           const uint8_t **out_ptr, uint32_t *out_len);
 *       credentials: JSON object of strings. 0 and an identity JSON
 *       {"subject": "...", "roles": ["..."], "claims": {...}}; WV_NOT_FOUND (1) when
 *       the credentials are not this plugin's kind; WV_ERR_DENIED when they are and
 *       are wrong.
 *   int32_t wv_authorize(const uint8_t *identity, uint32_t identity_len,
 *                        const uint8_t *resource, uint32_t resource_len,
 *                        const uint8_t *action, uint32_t action_len);
 *       identity: the JSON above; 1 allow, 0 deny, WV_ABSTAIN (2) no opinion.
 *
 * ------------------------------------------------------------------------------------
 * Imports: what the host provides
 * ------------------------------------------------------------------------------------
 *
 *   int32_t wv_emit(const uint8_t *chunk, uint32_t len);
 *       wasm: imported from module "weaviate". Deliver one chunk of a streamed answer
 *       (UTF-8, whole code points). Returns 0 to continue, non-zero when the caller
 *       stopped listening.
 *       native: the host passes the function through the export
 *           void wv_set_emit(int32_t (*emit)(const uint8_t *, uint32_t));
 *       which generator libraries must provide (the C SDK does).
 */
#ifndef WEAVIATE_PLUGIN_H
#define WEAVIATE_PLUGIN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WV_ABI_VERSION 1u

/* status codes */
#define WV_OK 0
#define WV_NOT_FOUND 1
#define WV_ABSTAIN 2
#define WV_ERROR (-1)
#define WV_ERR_NOMEM (-2)
#define WV_ERR_INVALID (-3)
#define WV_ERR_DENIED (-4)

/* Mark an ABI function as exported from the .wasm / .so (build with
 * -fvisibility=hidden so that nothing else is). */
#define WV_EXPORT __attribute__((visibility("default")))

#if defined(__wasm__)
#define WV_IMPORT(name) __attribute__((import_module("weaviate"), import_name(name)))
#else
#define WV_IMPORT(name)
#endif

/* every plugin */
WV_EXPORT uint32_t wv_abi_version(void);
WV_EXPORT void *wv_alloc(uint32_t size);
WV_EXPORT void wv_free(void *ptr, uint32_t size);
WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t config_len);
WV_EXPORT void wv_last_error(const uint8_t **msg_ptr, uint32_t *msg_len);

/* vectorizer */
WV_EXPORT int32_t wv_vectorize_batch(const uint8_t *texts, uint32_t texts_len, uint32_t count,
                                     const uint8_t **out_ptr, uint32_t *out_len);
WV_EXPORT int32_t wv_vectorize_into(const uint8_t *texts, uint32_t texts_len, uint32_t count,
                                    float *out, uint32_t out_floats);

/* transformer */
WV_EXPORT int32_t wv_transform(const uint8_t *text, uint32_t len, const uint8_t **out_ptr,
                               uint32_t *out_len);
WV_EXPORT int32_t wv_transform_batch(const uint8_t *texts, uint32_t texts_len, uint32_t count,
                                     const uint8_t **out_ptr, uint32_t *out_len);

/* reranker */
WV_EXPORT int32_t wv_rerank(const uint8_t *query, uint32_t query_len, const uint8_t *docs,
                            uint32_t docs_len, uint32_t count, const uint8_t **out_ptr,
                            uint32_t *out_len);

/* generator */
WV_EXPORT int32_t wv_generate(const uint8_t *prompt, uint32_t prompt_len, const uint8_t *options,
                              uint32_t options_len, const uint8_t **out_ptr, uint32_t *out_len);
WV_EXPORT int32_t wv_generate_stream(const uint8_t *prompt, uint32_t prompt_len,
                                     const uint8_t *options, uint32_t options_len);

/* storage */
WV_EXPORT int32_t wv_store(const uint8_t *key, uint32_t key_len, const uint8_t *data,
                           uint32_t data_len);
WV_EXPORT int32_t wv_retrieve(const uint8_t *key, uint32_t key_len, const uint8_t **out_ptr,
                              uint32_t *out_len);
WV_EXPORT int32_t wv_delete(const uint8_t *key, uint32_t key_len);

/* auth */
WV_EXPORT int32_t wv_authenticate(const uint8_t *credentials, uint32_t len,
                                  const uint8_t **out_ptr, uint32_t *out_len);
WV_EXPORT int32_t wv_authorize(const uint8_t *identity, uint32_t identity_len,
                               const uint8_t *resource, uint32_t resource_len,
                               const uint8_t *action, uint32_t action_len);

/* host import (see above) */
typedef int32_t (*wv_emit_fn)(const uint8_t *chunk, uint32_t len);
#if defined(__wasm__)
WV_IMPORT("wv_emit") int32_t wv_emit(const uint8_t *chunk, uint32_t len);
#else
WV_EXPORT void wv_set_emit(wv_emit_fn emit);
#endif

#ifdef __cplusplus
}
#endif

#endif /* WEAVIATE_PLUGIN_H */
