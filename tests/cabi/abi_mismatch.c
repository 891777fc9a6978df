/* A complete vectorizer that says it was built for ABI version 99: the host must refuse it. */
#include <stdlib.h>

#include "weaviate_plugin.h"

static float vector[16];
static const char message[] = "no error";

WV_EXPORT uint32_t wv_abi_version(void) { return 99u; }
WV_EXPORT void *wv_alloc(uint32_t size) { return malloc(size); }
WV_EXPORT void wv_free(void *ptr, uint32_t size) {
    (void)size;
    free(ptr);
}
WV_EXPORT void wv_last_error(const uint8_t **ptr, uint32_t *len) {
    *ptr = (const uint8_t *)message;
    *len = sizeof message - 1;
}
WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    (void)config;
    (void)len;
    return WV_OK;
}
WV_EXPORT int32_t wv_vectorize_batch(const uint8_t *texts, uint32_t texts_len, uint32_t count,
                                     const uint8_t **out_ptr, uint32_t *out_len) {
    (void)texts;
    (void)texts_len;
    (void)count;
    *out_ptr = (const uint8_t *)vector;
    *out_len = sizeof vector;
    return WV_OK;
}
