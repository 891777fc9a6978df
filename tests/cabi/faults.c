/*
 * A vectorizer (16 dimensions) that misbehaves on request, for the runtime tests.
 * The text selects the behaviour; any other text gets a normal vector, so a good call
 * after a fault shows the plugin still serves.
 *
 *   "loop"        never returns (the deadline must stop it)
 *   "bomb"        allocates 1 MiB blocks until malloc fails, then traps
 *   "trap"        executes unreachable
 *   "wrong dims"  returns 15 floats per text instead of 16
 *   "oob"         returns an output pointer outside linear memory
 *   "fail"        returns WV_ERROR with a message
 *   "env"         fails with a message saying what getenv("WV_FAULT_SECRET") saw
 *   "file:PATH"   fails with a message saying whether fopen(PATH) worked
 *   "write:PATH"  fails with a message saying whether fopen(PATH, "w") worked
 *
 * Built twice (tests/cabi/build.sh): faults exports wv_vectorize_batch only (the packed
 * path); faults_into (faults_into.c, WV_FAULTS_INTO) also wv_vectorize_into, the fast
 * path a vectorizer declaring its dimensions is called through ("oob" and "wrong dims"
 * do not apply there: the host sizes and owns the output).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weaviate_plugin_sdk.h"

#define DIMS 16

static int is(const uint8_t *text, uint32_t len, const char *word) {
    size_t n = strlen(word);
    return len == n && memcmp(text, word, n) == 0;
}

static int starts(const uint8_t *text, uint32_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(text, prefix, n) == 0;
}

static int32_t embed(const uint8_t *text, uint32_t len, float *out, uint32_t dims) {
    for (uint32_t d = 0; d < dims; d++) out[d] = 0;
    for (uint32_t i = 0; i < len; i++) out[(text[i] + i) % dims] += 1.0f;
    out[0] += 1.0f;
    return WV_OK;
}

static volatile uint64_t spin;
static char *volatile keep; /* so that the compiler cannot drop the allocations */

static int32_t misbehave(const uint8_t *text, uint32_t len) {
    if (is(text, len, "loop")) {
        for (;;) spin++;
    }
    if (is(text, len, "bomb")) {
        for (;;) {
            char *block = malloc(1 << 20);
            if (!block) __builtin_trap();
            memset(block, 1, 1 << 20);
            keep = block;
        }
    }
    if (is(text, len, "trap")) __builtin_trap();
    if (starts(text, len, "say:") || starts(text, len, "part:")) {
        /* print the rest to stdout (say: as a line, part: without its newline) */
        int line = text[0] == 's';
        uint32_t skip = line ? 4 : 5;
        printf("%.*s%s", (int)(len - skip), (const char *)text + skip, line ? "\n" : "");
        fflush(stdout);
        return 1;
    }
    if (is(text, len, "fail")) return wv_error(WV_ERROR, "asked to fail");
    if (is(text, len, "env")) {
        const char *value = getenv("WV_FAULT_SECRET");
        return wv_error(WV_ERROR, "env WV_FAULT_SECRET=%s", value ? value : "(unset)");
    }
    if (starts(text, len, "file:") || starts(text, len, "write:")) {
        char path[512];
        int writing = text[0] == 'w';
        uint32_t skip = writing ? 6 : 5;
        uint32_t n = len - skip < sizeof path - 1 ? len - skip : sizeof path - 1;
        memcpy(path, text + skip, n);
        path[n] = 0;
        FILE *f = fopen(path, writing ? "w" : "r");
        if (f) {
            if (writing) fputs("written by the fault plugin\n", f);
            fclose(f);
        }
        return wv_error(WV_ERROR, "%s %s: %s", writing ? "write" : "open", path,
                        f ? "ok" : "denied");
    }
    return 1;
}

WV_EXPORT int32_t wv_vectorize_batch(const uint8_t *texts, uint32_t texts_len, uint32_t count,
                                     const uint8_t **out_ptr, uint32_t *out_len) {
    wv_texts it;
    const uint8_t *text;
    uint32_t len;
    wv_texts_init(&it, texts, texts_len);
    while (wv_texts_next(&it, &text, &len) == 1) {
        if (is(text, len, "oob")) {
            *out_ptr = (const uint8_t *)(uintptr_t)0xFFFFFF00u;
            *out_len = 4096;
            return WV_OK;
        }
        if (is(text, len, "wrong dims")) {
            static float short_vector[DIMS - 1];
            *out_ptr = (const uint8_t *)short_vector;
            *out_len = sizeof short_vector;
            return WV_OK;
        }
        int32_t rc = misbehave(text, len);
        if (rc <= 0) return rc;
    }
    return wv_sdk_vectorize_batch(embed, DIMS, texts, texts_len, count, out_ptr, out_len);
}

#ifdef WV_FAULTS_INTO
WV_EXPORT int32_t wv_vectorize_into(const uint8_t *texts, uint32_t texts_len, uint32_t count,
                                    float *out, uint32_t out_floats) {
    const uint8_t *pos = texts;
    const uint8_t *end = texts + texts_len;
    for (uint32_t i = 0; i < count && pos <= end; i++) {
        const uint8_t *stop = memchr(pos, 0xFF, (size_t)(end - pos));
        if (stop == NULL) stop = end;
        int32_t rc = misbehave(pos, (uint32_t)(stop - pos));
        if (rc <= 0) return rc;
        pos = stop + 1;
    }
    return wv_sdk_vectorize_into(embed, DIMS, texts, texts_len, count, out, out_floats);
}
#endif

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    (void)config;
    (void)len;
    fprintf(stderr, "faults: ready\n");
    return WV_OK;
}
