/*
 * whitespace-normalizer: folds ASCII letters to lower case (config `lowercase`, default
 * true), turns every run of whitespace (space, tab, CR, LF, FF, VT) into one space and
 * trims both ends. UTF-8 beyond ASCII passes through unchanged.
 */
#include "weaviate_plugin_sdk.h"

static int lowercase = 1;

static int space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int32_t normalize(const uint8_t *text, uint32_t len, wv_buf *out) {
    int32_t rc = wv_buf_reserve(out, len);
    if (rc) return rc;
    int pending_space = 0;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = text[i];
        if (space(c)) {
            pending_space = out->len > 0;
            continue;
        }
        if (pending_space) out->data[out->len++] = ' ';
        pending_space = 0;
        if (lowercase && c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
        out->data[out->len++] = c;
    }
    return WV_OK;
}

WV_DEFINE_TRANSFORMER(normalize)

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    double value;
    if (wv_json_get_number(config, len, "lowercase", &value) == 0) lowercase = value != 0;
    return WV_OK;
}
