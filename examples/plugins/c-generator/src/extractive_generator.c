/*
 * extractive-generator: answers with the most representative sentences of its prompt,
 * streamed word by word through the host's wv_emit.
 *
 * The prompt is the text to summarise; a leading instruction ("Summarize:", "Summarise
 * the following:", "Summary:", "TL;DR:") is dropped. Sentences end at '.', '!' or '?'
 * followed by whitespace; whitespace inside a sentence collapses to one space. Words
 * are runs of ASCII letters, digits, '_' and non-ASCII bytes, lower-cased; common
 * English stop words are ignored. A word weighs its frequency in the prompt divided by
 * the highest frequency; a sentence scores the sum of its words' weights divided by the
 * square root of its word count. The `sentences` best sentences (ties: the earlier)
 * are the answer, in their original order, joined by one space. The option max_tokens
 * keeps only the first max_tokens words.
 *
 * wv_generate returns the whole answer; wv_generate_stream emits the same answer word
 * by word ("Vector", " search", ...), so the chunks concatenate to wv_generate's answer.
 * The same algorithm as examples/plugins/python-extractive-generator (ASCII case
 * folding only).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "weaviate_plugin_sdk.h"

static uint32_t max_sentences = 2;

static const char *const STOP_WORDS[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have",
    "he", "her", "his", "i", "in", "is", "it", "its", "of", "on", "or", "she", "that", "the",
    "their", "them", "they", "this", "to", "was", "were", "will", "with", "you", "your", "we",
    "our", "not", "no", "so", "than", "then", "there", "these", "those", "which", "who",
    "what", "when", "where", "how", "all", "any", "can", "do", "does",
};

static int is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static int is_word(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}
static uint8_t lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

/* ---- word counts: an open-addressing hash table of lower-cased words ---------------- */

typedef struct {
    const uint8_t *word; /* into the lower-cased prompt */
    uint32_t len;
    uint32_t count;
} slot;

static slot *table;
static uint32_t table_cap; /* a power of two */

static uint32_t hash(const uint8_t *s, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

static int is_stop_word(const uint8_t *w, uint32_t n) {
    for (size_t i = 0; i < sizeof STOP_WORDS / sizeof *STOP_WORDS; i++)
        if (strlen(STOP_WORDS[i]) == n && memcmp(STOP_WORDS[i], w, n) == 0) return 1;
    return 0;
}

static slot *lookup(const uint8_t *w, uint32_t n) {
    for (uint32_t i = hash(w, n) & (table_cap - 1);; i = (i + 1) & (table_cap - 1)) {
        slot *s = &table[i];
        if (!s->word || (s->len == n && memcmp(s->word, w, n) == 0)) return s;
    }
}

/* Count the content words of `low` (already lower-cased); the highest count. */
static int32_t count_words(const uint8_t *low, uint32_t len, uint32_t *top) {
    uint32_t cap = 16;
    while (cap < len + 16) cap *= 2; /* more slots than words: the probe always ends */
    slot *fresh = calloc(cap, sizeof *fresh);
    if (!fresh) return wv_error(WV_ERR_NOMEM, "out of memory counting words");
    free(table);
    table = fresh;
    table_cap = cap;
    *top = 1;
    for (uint32_t i = 0; i < len;) {
        if (!is_word(low[i])) {
            i++;
            continue;
        }
        uint32_t start = i;
        while (i < len && is_word(low[i])) i++;
        if (is_stop_word(low + start, i - start)) continue;
        slot *s = lookup(low + start, i - start);
        if (!s->word) {
            s->word = low + start;
            s->len = i - start;
        }
        if (++s->count > *top) *top = s->count;
    }
    return WV_OK;
}

/* The score of one (collapsed) sentence. */
static double score(const uint8_t *s, uint32_t len, uint32_t top) {
    uint8_t word[256];
    double sum = 0;
    uint32_t words = 0;
    for (uint32_t i = 0; i < len;) {
        if (!is_word(s[i])) {
            i++;
            continue;
        }
        uint32_t n = 0;
        int truncated = 0;
        while (i < len && is_word(s[i])) {
            if (n < sizeof word) word[n++] = lower(s[i]);
            else truncated = 1;
            i++;
        }
        if (truncated || is_stop_word(word, n)) continue;
        words++;
        slot *found = lookup(word, n);
        sum += found->word ? (double)found->count / top : 0.0;
    }
    return words ? sum / sqrt((double)words) : 0.0;
}

/* ---- the answer --------------------------------------------------------------------- */

typedef struct {
    uint32_t start, len; /* into the collapsed text */
    double score;
} sentence;

static wv_buf collapsed; /* the sentences, whitespace collapsed, back to back */
static wv_buf sentences_buf;
static wv_buf lowered;

static int prefix_ci(const uint8_t *p, const uint8_t *end, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != (uint8_t)word[i]) return 0;
    return 1;
}

/* Past a leading instruction ("Summarize the following:"), or `p` itself. */
static const uint8_t *skip_instruction(const uint8_t *p, const uint8_t *end) {
    static const char *const LEADS[] = {"summarize", "summarise", "summary", "tl;dr", "tldr"};
    const uint8_t *q = p;
    while (q < end && is_space(*q)) q++;
    for (size_t i = 0; i < sizeof LEADS / sizeof *LEADS; i++) {
        size_t n = strlen(LEADS[i]);
        if (!prefix_ci(q, end, LEADS[i]) || (q + n < end && is_word(q[n]))) continue;
        const uint8_t *r = q + n;
        for (int k = 0; r < end && k <= 80 && *r != '\n'; r++, k++) {
            if (*r == ':') {
                for (r++; r < end && is_space(*r);) r++;
                return r;
            }
        }
        break;
    }
    return p;
}

static int by_rank(const void *a, const void *b) {
    const sentence *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->start < y->start ? -1 : 1;
}
static int by_position(const void *a, const void *b) {
    const sentence *x = a, *y = b;
    return x->start < y->start ? -1 : (x->start > y->start);
}

/* The summary of `prompt` into `out`, cut to `limit` words (-1: no limit). */
static int32_t summarize(const uint8_t *prompt, uint32_t len, int64_t limit, wv_buf *out) {
    const uint8_t *end = prompt + len, *p = skip_instruction(prompt, end);
    wv_buf_clear(&collapsed);
    wv_buf_clear(&sentences_buf);
    int32_t rc = wv_buf_reserve(&collapsed, len);
    if (rc) return rc;
    /* split and collapse */
    uint32_t count = 0;
    while (p < end) {
        while (p < end && is_space(*p)) p++;
        if (p >= end) break;
        sentence s = {collapsed.len, 0, 0};
        int gap = 0;
        while (p < end) {
            uint8_t c = *p++;
            if (is_space(c)) {
                gap = 1;
                continue;
            }
            if (gap) collapsed.data[collapsed.len++] = ' ';
            gap = 0;
            collapsed.data[collapsed.len++] = c;
            if ((c == '.' || c == '!' || c == '?') && p < end && is_space(*p)) break;
        }
        s.len = collapsed.len - s.start;
        rc = wv_buf_append(&sentences_buf, &s, sizeof s);
        if (rc) return rc;
        count++;
    }
    sentence *all = (sentence *)sentences_buf.data;
    uint32_t keep = count <= max_sentences ? count : max_sentences;
    if (count > max_sentences) {
        wv_buf_clear(&lowered);
        rc = wv_buf_reserve(&lowered, len);
        if (rc) return rc;
        for (uint32_t i = 0; i < len; i++) lowered.data[i] = lower(prompt[i]);
        uint32_t top = 1;
        rc = count_words(lowered.data, len, &top);
        if (rc) return rc;
        for (uint32_t i = 0; i < count; i++)
            all[i].score = score(collapsed.data + all[i].start, all[i].len, top);
        qsort(all, count, sizeof *all, by_rank);
        qsort(all, keep, sizeof *all, by_position);
    }
    /* join, counting words */
    int64_t words = 0;
    for (uint32_t i = 0; i < keep && limit != 0; i++) {
        const uint8_t *s = collapsed.data + all[i].start;
        for (uint32_t j = 0; j < all[i].len; j++) {
            if (j == 0 || s[j] == ' ') {
                if (limit >= 0 && words == limit) return WV_OK;
                words++;
                if (out->len) {
                    rc = wv_buf_append(out, " ", 1);
                    if (rc) return rc;
                }
                if (s[j] == ' ') continue;
            }
            rc = wv_buf_append(out, s + j, 1);
            if (rc) return rc;
        }
    }
    return WV_OK;
}

/* options.max_tokens: -1 when absent or null, else an integer >= 0. */
static int32_t max_tokens(const uint8_t *options, uint32_t len, int64_t *limit) {
    const uint8_t *val;
    uint32_t n;
    *limit = -1;
    if (!wv_json_find(options, len, "max_tokens", &val, &n) || (n == 4 && !memcmp(val, "null", 4)))
        return WV_OK;
    double v;
    if ((val[0] != '-' && (val[0] < '0' || val[0] > '9')) ||
        wv_json_get_number(options, len, "max_tokens", &v) < 0 || v < 0 || v != floor(v) ||
        v > 1e9)
        return wv_error(WV_ERR_INVALID, "option max_tokens must be an integer >= 0, got %.*s",
                        (int)(n > 40 ? 40 : n), (const char *)val);
    *limit = (int64_t)v;
    return WV_OK;
}

/* ---- the ABI ------------------------------------------------------------------------ */

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    double value;
    max_sentences = 2;
    if (wv_json_get_number(config, len, "sentences", &value) == 0) {
        if (value < 1 || value != floor(value) || value > 1e6)
            return wv_error(WV_ERR_INVALID, "config sentences must be an integer >= 1, got %g",
                            value);
        max_sentences = (uint32_t)value;
    }
    return WV_OK;
}

WV_EXPORT int32_t wv_generate(const uint8_t *prompt, uint32_t prompt_len, const uint8_t *options,
                              uint32_t options_len, const uint8_t **out_ptr, uint32_t *out_len) {
    int64_t limit;
    int32_t rc = max_tokens(options, options_len, &limit);
    if (rc) return rc;
    wv_buf *out = wv_output_begin();
    rc = summarize(prompt, prompt_len, limit, out);
    if (rc) return rc;
    return wv_output_finish(out_ptr, out_len);
}

WV_EXPORT int32_t wv_generate_stream(const uint8_t *prompt, uint32_t prompt_len,
                                     const uint8_t *options, uint32_t options_len) {
    static wv_buf answer;
    int64_t limit;
    int32_t rc = max_tokens(options, options_len, &limit);
    if (rc) return rc;
    wv_buf_clear(&answer);
    rc = summarize(prompt, prompt_len, limit, &answer);
    if (rc) return rc;
    /* word by word: "first", " second", " third" */
    for (uint32_t i = 0; i < answer.len;) {
        uint32_t j = i + 1;
        while (j < answer.len && answer.data[j] != ' ') j++;
        if (wv_sdk_emit(answer.data + i, j - i)) return WV_OK; /* the caller stopped */
        i = j;
    }
    return WV_OK;
}
