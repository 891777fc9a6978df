/*
 * kv-store: a key-value store in C. Keys are UTF-8 strings, values any bytes.
 *
 * The data lives in a hash table inside the plugin (chained buckets, FNV-1a, grown at
 * load factor 1). With config `logFile` set, every store and delete is first appended
 * to that file as a record, then applied in memory, so the data survives restarts and
 * the replacement of a wasm instance after a trap:
 *
 *     record = op ('S' store | 'D' delete) : u8, key length : u32le,
 *              value length : u32le, FNV-1a of key + value : u32le, key, value
 *
 * wv_init replays the file. A torn record at the end (a crash mid-write) is dropped and
 * the file rewritten without it (and without overwritten or deleted records); the same
 * compaction runs when dead records outweigh live data by more than 1 MiB. `sync`
 * (default true) fsyncs each write. As wasm the file must be in a directory the
 * manifest grants with mode rw (spec.permissions.directories); as native a relative
 * path is relative to the .so. Without `logFile` the store is memory-only.
 *
 * One table per instance: run the wasm build with resources.cpu "1" (one instance).
 */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weaviate_plugin_sdk.h"

typedef struct entry {
    struct entry *next;
    uint32_t hash;
    uint32_t key_len;
    uint32_t value_len;
    uint8_t bytes[]; /* key, then value */
} entry;

static entry **buckets;
static uint32_t bucket_count; /* a power of two, or 0 */
static uint32_t entries;
static uint64_t live_bytes; /* log bytes of the live records */
static uint64_t log_bytes;  /* bytes in the log file */

static char log_path[1024];
static FILE *log_file;
static int sync_writes = 1;

#define HEADER 13u
#define COMPACT_SLACK (1024u * 1024u)

static uint32_t fnv(uint32_t h, const uint8_t *s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}
static uint32_t key_hash(const uint8_t *k, uint32_t n) { return fnv(2166136261u, k, n); }

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the table ---------------------------------------------------------------------- */

static entry **find(const uint8_t *key, uint32_t len, uint32_t h) {
    if (!bucket_count) return NULL;
    entry **at = &buckets[h & (bucket_count - 1)];
    for (; *at; at = &(*at)->next)
        if ((*at)->hash == h && (*at)->key_len == len && memcmp((*at)->bytes, key, len) == 0)
            return at;
    return at;
}

static int32_t grow(void) {
    uint32_t count = bucket_count ? bucket_count * 2 : 64;
    entry **fresh = calloc(count, sizeof *fresh);
    if (!fresh) return wv_error(WV_ERR_NOMEM, "out of memory growing the table");
    for (uint32_t i = 0; i < bucket_count; i++) {
        for (entry *e = buckets[i], *next; e; e = next) {
            next = e->next;
            entry **slot = &fresh[e->hash & (count - 1)];
            e->next = *slot;
            *slot = e;
        }
    }
    free(buckets);
    buckets = fresh;
    bucket_count = count;
    return WV_OK;
}

static int32_t table_put(const uint8_t *key, uint32_t klen, const uint8_t *value, uint32_t vlen) {
    if (entries >= bucket_count) {
        int32_t rc = grow();
        if (rc) return rc;
    }
    uint32_t h = key_hash(key, klen);
    entry *e = malloc(sizeof *e + (size_t)klen + vlen);
    if (!e) return wv_error(WV_ERR_NOMEM, "out of memory storing %u bytes", vlen);
    e->hash = h;
    e->key_len = klen;
    e->value_len = vlen;
    memcpy(e->bytes, key, klen);
    if (vlen) memcpy(e->bytes + klen, value, vlen);
    entry **at = find(key, klen, h);
    if (*at) { /* overwrite */
        entry *old = *at;
        e->next = old->next;
        live_bytes -= HEADER + old->key_len + old->value_len;
        free(old);
    } else {
        e->next = NULL;
        entries++;
    }
    *at = e;
    live_bytes += HEADER + klen + vlen;
    return WV_OK;
}

static int table_remove(const uint8_t *key, uint32_t klen) {
    entry **at = find(key, klen, key_hash(key, klen));
    if (!at || !*at) return 0;
    entry *old = *at;
    *at = old->next;
    live_bytes -= HEADER + old->key_len + old->value_len;
    free(old);
    entries--;
    return 1;
}

static void table_clear(void) {
    for (uint32_t i = 0; i < bucket_count; i++) {
        for (entry *e = buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(buckets);
    buckets = NULL;
    bucket_count = entries = 0;
    live_bytes = 0;
}

/* ---- the log -------------------------------------------------------------------------- */

static int32_t io_error(const char *what) {
    return wv_error(WV_ERROR, "%s %s: %s", what, log_path, strerror(errno));
}

static int32_t write_record(FILE *f, uint8_t op, const uint8_t *key, uint32_t klen,
                            const uint8_t *value, uint32_t vlen) {
    uint8_t head[HEADER];
    head[0] = op;
    put_u32(head + 1, klen);
    put_u32(head + 5, vlen);
    put_u32(head + 9, fnv(fnv(2166136261u, key, klen), value, vlen));
    if (fwrite(head, 1, HEADER, f) != HEADER || fwrite(key, 1, klen, f) != klen ||
        (vlen && fwrite(value, 1, vlen, f) != vlen))
        return io_error("cannot write");
    return WV_OK;
}

static int32_t flush(FILE *f) {
    if (fflush(f) != 0) return io_error("cannot write");
    if (sync_writes && fsync(fileno(f)) != 0) return io_error("cannot sync");
    return WV_OK;
}

/* Rewrite the log with the live records only (to a temporary file, then renamed). */
static int32_t compact(void) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", log_path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return io_error("cannot create a temporary file next to");
    int32_t rc = WV_OK;
    for (uint32_t i = 0; i < bucket_count && !rc; i++)
        for (entry *e = buckets[i]; e && !rc; e = e->next)
            rc = write_record(f, 'S', e->bytes, e->key_len, e->bytes + e->key_len, e->value_len);
    if (!rc) rc = flush(f);
    if (fclose(f) != 0 && !rc) rc = io_error("cannot write");
    if (!rc && rename(tmp, log_path) != 0) rc = io_error("cannot replace");
    if (rc) {
        remove(tmp);
        return rc;
    }
    if (log_file) fclose(log_file);
    log_file = fopen(log_path, "ab");
    if (!log_file) return io_error("cannot open");
    log_bytes = live_bytes;
    return WV_OK;
}

/* Load the log into the table; 1 if it needs compacting. */
static int32_t replay(void) {
    FILE *f = fopen(log_path, "rb");
    if (!f) return errno == ENOENT ? 1 : io_error("cannot open");
    uint8_t head[HEADER];
    wv_buf record = {0};
    int32_t rc = WV_OK;
    uint64_t good = 0;
    for (;;) {
        size_t got = fread(head, 1, HEADER, f);
        if (got == 0) break;
        uint32_t klen = get_u32(head + 1), vlen = get_u32(head + 5);
        uint64_t body = (uint64_t)klen + vlen;
        if (got < HEADER || (head[0] != 'S' && head[0] != 'D') || body > 0x7FFFFFFFu) break;
        wv_buf_clear(&record);
        if ((rc = wv_buf_reserve(&record, (uint32_t)body))) break;
        if (fread(record.data, 1, (size_t)body, f) != body) break; /* torn */
        if (get_u32(head + 9) != fnv(2166136261u, record.data, (uint32_t)body)) break;
        if (head[0] == 'S') rc = table_put(record.data, klen, record.data + klen, vlen);
        else table_remove(record.data, klen);
        if (rc) break;
        good += HEADER + body;
    }
    int torn = !feof(f) || ferror(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    free(record.data);
    if (rc) return rc;
    log_bytes = size < 0 ? good : (uint64_t)size;
    return torn || log_bytes != good || log_bytes > live_bytes;
}

static int32_t log_op(uint8_t op, const uint8_t *key, uint32_t klen, const uint8_t *value,
                      uint32_t vlen) {
    if (!log_file) return WV_OK;
    int32_t rc = write_record(log_file, op, key, klen, value, vlen);
    if (!rc) rc = flush(log_file);
    if (!rc) log_bytes += HEADER + (uint64_t)klen + vlen;
    return rc;
}

static int32_t maybe_compact(void) {
    if (log_file && log_bytes > live_bytes + COMPACT_SLACK) return compact();
    return WV_OK;
}

/* ---- the ABI ---------------------------------------------------------------------------- */

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    /* a native library can be initialised again (a reload): start from scratch */
    table_clear();
    if (log_file) fclose(log_file);
    log_file = NULL;
    log_bytes = 0;
    double value;
    sync_writes = wv_json_get_number(config, len, "sync", &value) == 0 ? value != 0 : 1;
    char path[1024];
    int32_t n = wv_json_get_string(config, len, "logFile", path, sizeof path);
    if (n == -2) return wv_error(WV_ERR_INVALID, "config logFile is too long");
    if (n <= 0) return WV_OK; /* memory only */
    if (!wv_resolve_path(path, log_path, sizeof log_path - 8))
        return wv_error(WV_ERR_INVALID, "config logFile is too long");
    int32_t rc = replay();
    if (rc < 0) return rc;
    if (rc > 0) return compact();
    log_file = fopen(log_path, "ab");
    return log_file ? WV_OK : io_error("cannot open");
}

WV_EXPORT int32_t wv_store(const uint8_t *key, uint32_t key_len, const uint8_t *data,
                           uint32_t data_len) {
    if (key_len == 0) return wv_error(WV_ERR_INVALID, "the key is empty");
    int32_t rc = log_op('S', key, key_len, data, data_len);
    if (rc) return rc;
    rc = table_put(key, key_len, data, data_len);
    if (rc) return rc;
    return maybe_compact();
}

WV_EXPORT int32_t wv_retrieve(const uint8_t *key, uint32_t key_len, const uint8_t **out_ptr,
                              uint32_t *out_len) {
    entry **at = find(key, key_len, key_hash(key, key_len));
    if (!at || !*at) return WV_NOT_FOUND;
    /* the entry stays unchanged until the next call: hand it out without a copy */
    *out_ptr = (*at)->bytes + (*at)->key_len;
    *out_len = (*at)->value_len;
    return WV_OK;
}

WV_EXPORT int32_t wv_delete(const uint8_t *key, uint32_t key_len) {
    entry **at = find(key, key_len, key_hash(key, key_len));
    if (!at || !*at) return 0;
    int32_t rc = log_op('D', key, key_len, NULL, 0);
    if (rc) return rc;
    table_remove(key, key_len);
    rc = maybe_compact();
    return rc ? rc : 1;
}
