/* A "vectorizer" that exports only part of the ABI: no wv_vectorize_batch, no wv_init. */
#include <stdlib.h>

#include "weaviate_plugin.h"

WV_EXPORT uint32_t wv_abi_version(void) { return WV_ABI_VERSION; }
WV_EXPORT void *wv_alloc(uint32_t size) { return malloc(size); }
WV_EXPORT void wv_free(void *ptr, uint32_t size) {
    (void)size;
    free(ptr);
}
