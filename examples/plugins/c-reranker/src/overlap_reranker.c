/*
 * overlap-reranker: scores a document by the query words it contains.
 *
 * Words are runs of letters, digits and non-ASCII bytes, compared case-insensitively
 * (ASCII). score = (distinct query words found in the document) / sqrt(1 + words in
 * the document) + 0.001 * (query words found / query words), so a shorter document
 * that covers the query ranks first. Config: `lengthPenalty` (number, default 1.0)
 * scales the length normalisation (0 turns it off).
 */
#include <math.h>

#include "weaviate_plugin_sdk.h"

static double length_penalty = 1.0;

static int word_byte(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static uint8_t lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c; }

/* Next word at or after *pos; 1 and (start, len) or 0 at the end. */
static int next_word(const uint8_t *s, uint32_t n, uint32_t *pos, uint32_t *start, uint32_t *len) {
    uint32_t i = *pos;
    while (i < n && !word_byte(s[i])) i++;
    if (i >= n) return 0;
    *start = i;
    while (i < n && word_byte(s[i])) i++;
    *len = i - *start;
    *pos = i;
    return 1;
}

static int same_word(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen) {
    if (alen != blen) return 0;
    for (uint32_t i = 0; i < alen; i++)
        if (lower(a[i]) != lower(b[i])) return 0;
    return 1;
}

static int contains(const uint8_t *doc, uint32_t doc_len, const uint8_t *word, uint32_t len) {
    uint32_t pos = 0, start, wlen;
    while (next_word(doc, doc_len, &pos, &start, &wlen))
        if (same_word(doc + start, wlen, word, len)) return 1;
    return 0;
}

static int32_t score(const uint8_t *query, uint32_t query_len, const uint8_t *doc,
                     uint32_t doc_len, float *out) {
    uint32_t pos = 0, start, len, found = 0, total = 0, doc_words = 0;
    while (next_word(query, query_len, &pos, &start, &len)) {
        total++;
        if (contains(doc, doc_len, query + start, len)) found++;
    }
    pos = 0;
    while (next_word(doc, doc_len, &pos, &start, &len)) doc_words++;
    double norm = length_penalty > 0 ? pow(1.0 + doc_words, 0.5 * length_penalty) : 1.0;
    double coverage = total ? (double)found / total : 0.0;
    *out = (float)(found / norm + 0.001 * coverage);
    return WV_OK;
}

WV_DEFINE_RERANKER(score)

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    double value;
    if (wv_json_get_number(config, len, "lengthPenalty", &value) == 0) {
        if (value < 0) return wv_error(WV_ERR_INVALID, "lengthPenalty must be >= 0, got %g", value);
        length_penalty = value;
    }
    return WV_OK;
}
