/*
 * apikey-auth (C): API keys checked against configured SHA-256 digests, and role-based
 * authorization rules with glob patterns. The same configuration and behaviour as
 * examples/plugins/python-apikey-auth:
 *
 *   keys   {key_id: {"sha256": hex digest of the key, "roles": [role, ...]}}
 *          The plugin never holds the keys themselves, only their digests.
 *   rules  [{"role": r, "resource": glob, "action": glob, "allow": bool}, ...]
 *          role "*" matches any identity. Globs: '*' any run of bytes, '?' one byte,
 *          [abc] / [a-z] / [!abc] a set (like Python's fnmatchcase, byte-wise).
 *   pepper a secret: when set, digests are HMAC-SHA256(pepper, key).
 *
 * wv_authenticate looks at credentials.api_key only: none -> WV_NOT_FOUND (not this
 * plugin's kind of credentials; also when no keys are configured, so an unconfigured
 * plugin stays out of the way); a key whose digest matches a configured one -> the
 * identity {"subject": key_id, "roles": [...], "claims": {"key_id", "method"}}; any
 * other key -> WV_ERR_DENIED ("invalid API key"). The digest of the presented key is
 * compared with every configured digest in constant time, without stopping at a match.
 *
 * wv_authorize: among the rules for the identity's roles that match the resource and
 * action, any deny gives 0 (deny wins), else an allow gives 1, else WV_ABSTAIN.
 *
 * SHA-256 (FIPS 180-4) and HMAC (RFC 2104) are implemented below; no library needed.
 */
#include <stdlib.h>
#include <string.h>

#include "weaviate_plugin_sdk.h"

/* ---- SHA-256 ------------------------------------------------------------------------- */

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t block[64];
    uint32_t used;
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n) { return x >> n | x << (32 - n); }

static void sha256_block(sha256_ctx *c, const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    uint32_t e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = cc;
        cc = b;
        b = a;
        a = t1 + t2;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
    c->h[5] += f;
    c->h[6] += g;
    c->h[7] += h;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, H0, sizeof H0);
    c->bytes = 0;
    c->used = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n) {
    c->bytes += n;
    while (n) {
        uint32_t take = 64 - c->used;
        if (take > n) take = (uint32_t)n;
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used == 64) {
            sha256_block(c, c->block);
            c->used = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->bytes * 8;
    uint8_t pad = 0x80;
    sha256_update(c, &pad, 1);
    pad = 0;
    while (c->used != 56) sha256_update(c, &pad, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, p, n);
    sha256_final(&c, out);
}

static void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t n,
                        uint8_t out[32]) {
    uint8_t k[64] = {0}, pad[64], inner[32];
    if (key_len > 64) sha256(key, key_len, k);
    else memcpy(k, key, key_len);
    sha256_ctx c;
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    sha256_init(&c);
    sha256_update(&c, pad, 64);
    sha256_update(&c, msg, n);
    sha256_final(&c, inner);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    sha256_init(&c);
    sha256_update(&c, pad, 64);
    sha256_update(&c, inner, 32);
    sha256_final(&c, out);
}

/* 1 if equal, in time independent of where they differ. */
static uint32_t equal_ct(const uint8_t *a, const uint8_t *b, size_t n) {
    volatile uint8_t diff = 0;
    for (size_t i = 0; i < n; i++) diff |= a[i] ^ b[i];
    return (uint32_t)((diff - 1u) >> 31) & 1u; /* diff == 0 -> 1 */
}

/* ---- configuration ---------------------------------------------------------------- */

typedef struct {
    wv_buf id;    /* decoded key id */
    wv_buf roles; /* the roles as a JSON array (checked: strings only) */
    uint8_t digest[32];
} api_key;

typedef struct {
    wv_buf role, resource, action; /* decoded, NUL-terminated */
    int allow;
} rule;

static api_key *keys;
static uint32_t key_count;
static rule *rules;
static uint32_t rule_count;
static wv_buf pepper;

static void free_config(void) {
    for (uint32_t i = 0; i < key_count; i++) {
        free(keys[i].id.data);
        free(keys[i].roles.data);
    }
    for (uint32_t i = 0; i < rule_count; i++) {
        free(rules[i].role.data);
        free(rules[i].resource.data);
        free(rules[i].action.data);
    }
    free(keys);
    free(rules);
    free(pepper.data);
    keys = NULL;
    rules = NULL;
    key_count = rule_count = 0;
    memset(&pepper, 0, sizeof pepper);
}

/* Decode a string token into `out`, NUL-terminated (the NUL is not counted in len). */
static int32_t get_string(const uint8_t *val, uint32_t len, wv_buf *out) {
    int32_t rc = wv_json_decode_string(val, len, out);
    if (!rc) rc = wv_buf_reserve(out, 1);
    if (!rc) out->data[out->len] = 0;
    return rc;
}

static int hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int32_t parse_key(const uint8_t *id, uint32_t id_len, const uint8_t *val, uint32_t len,
                         api_key *key) {
    memset(key, 0, sizeof *key);
    if (get_string(id, id_len, &key->id)) return WV_ERR_INVALID;
    const char *where = (const char *)key->id.data;
    const uint8_t *v, *k;
    uint32_t vl, kl;
    wv_json_iter it;
    if (wv_json_iter_init(&it, val, len) || val[0] != '{')
        return wv_error(WV_ERR_INVALID, "config keys.%s must be an object with sha256 and roles",
                        where);
    int32_t rc, seen_sha = 0;
    while ((rc = wv_json_iter_next(&it, &k, &kl, &v, &vl)) == 1) {
        if (wv_json_string_equals(k, kl, "sha256")) {
            if (vl != 66 || v[0] != '"') rc = -1;
            for (int i = 0; rc != -1 && i < 32; i++) {
                int hi = hex(v[1 + 2 * i]), lo = hex(v[2 + 2 * i]);
                if (hi < 0 || lo < 0) rc = -1;
                else key->digest[i] = (uint8_t)(hi << 4 | lo);
            }
            if (rc == -1)
                return wv_error(WV_ERR_INVALID, "config keys.%s.sha256 must be 64 hex digits", where);
            seen_sha = 1;
        } else if (wv_json_string_equals(k, kl, "roles")) {
            wv_json_iter roles;
            const uint8_t *rk, *rv;
            uint32_t rkl, rvl;
            if (wv_json_iter_init(&roles, v, vl) || v[0] != '[')
                return wv_error(WV_ERR_INVALID, "config keys.%s.roles must be a list of strings", where);
            while ((rc = wv_json_iter_next(&roles, &rk, &rkl, &rv, &rvl)) == 1)
                if (rv[0] != '"')
                    return wv_error(WV_ERR_INVALID, "config keys.%s.roles must be a list of strings", where);
            if (rc < 0) return rc;
            wv_buf_clear(&key->roles);
            if (wv_buf_append(&key->roles, v, vl)) return WV_ERR_NOMEM;
        } else {
            return wv_error(WV_ERR_INVALID, "config keys.%s has an unknown field %.*s", where,
                            (int)kl, (const char *)k);
        }
    }
    if (rc < 0) return rc;
    if (!seen_sha) return wv_error(WV_ERR_INVALID, "config keys.%s.sha256 is missing", where);
    if (!key->roles.len && wv_buf_append(&key->roles, "[]", 2)) return WV_ERR_NOMEM;
    return WV_OK;
}

static int32_t parse_rule(uint32_t index, const uint8_t *val, uint32_t len, rule *r) {
    memset(r, 0, sizeof *r);
    r->allow = -1;
    const uint8_t *k, *v;
    uint32_t kl, vl;
    wv_json_iter it;
    if (wv_json_iter_init(&it, val, len) || val[0] != '{')
        return wv_error(WV_ERR_INVALID, "config rules[%u] must be an object", index);
    int32_t rc;
    while ((rc = wv_json_iter_next(&it, &k, &kl, &v, &vl)) == 1) {
        wv_buf *field = wv_json_string_equals(k, kl, "role")       ? &r->role
                        : wv_json_string_equals(k, kl, "resource") ? &r->resource
                        : wv_json_string_equals(k, kl, "action")   ? &r->action
                                                                   : NULL;
        if (field) {
            if (v[0] != '"' || get_string(v, vl, field))
                return wv_error(WV_ERR_INVALID, "config rules[%u].%.*s must be a string", index,
                                (int)(kl - 2), (const char *)k + 1);
        } else if (wv_json_string_equals(k, kl, "allow")) {
            if (vl == 4 && !memcmp(v, "true", 4)) r->allow = 1;
            else if (vl == 5 && !memcmp(v, "false", 5)) r->allow = 0;
            else return wv_error(WV_ERR_INVALID, "config rules[%u].allow must be true or false", index);
        } else {
            return wv_error(WV_ERR_INVALID, "config rules[%u] has an unknown field %.*s", index,
                            (int)kl, (const char *)k);
        }
    }
    if (rc < 0) return rc;
    if (!r->role.data || !r->resource.data || !r->action.data || r->allow < 0)
        return wv_error(WV_ERR_INVALID,
                        "config rules[%u] needs role, resource, action (strings) and allow", index);
    return WV_OK;
}

/* Count the members of an object / elements of an array (checked), or < 0. */
static int32_t count_items(const uint8_t *val, uint32_t len, uint8_t open, const char *what) {
    wv_json_iter it;
    const uint8_t *k, *v;
    uint32_t kl, vl;
    if (wv_json_iter_init(&it, val, len) || val[0] != open)
        return wv_error(WV_ERR_INVALID, "config %s must be %s", what,
                        open == '{' ? "an object" : "a list");
    int32_t n = 0, rc;
    while ((rc = wv_json_iter_next(&it, &k, &kl, &v, &vl)) == 1) n++;
    return rc < 0 ? rc : n;
}

WV_EXPORT int32_t wv_init(const uint8_t *config, uint32_t len) {
    free_config();
    const uint8_t *val, *k, *v;
    uint32_t vl, kl, l;
    wv_json_iter it;
    int32_t rc;
    if (wv_json_find(config, len, "pepper", &val, &vl)) {
        if (val[0] != '"' || wv_json_decode_string(val, vl, &pepper))
            return wv_error(WV_ERR_INVALID, "config pepper must be a string");
    }
    if (wv_json_find(config, len, "keys", &val, &vl) && !(vl == 4 && !memcmp(val, "null", 4))) {
        int32_t n = count_items(val, vl, '{', "keys");
        if (n < 0) return n;
        keys = calloc((size_t)n + 1, sizeof *keys);
        if (!keys) return wv_error(WV_ERR_NOMEM, "out of memory");
        wv_json_iter_init(&it, val, vl);
        while ((rc = wv_json_iter_next(&it, &k, &kl, &v, &l)) == 1) {
            rc = parse_key(k, kl, v, l, &keys[key_count]);
            key_count++; /* freed by free_config even when it failed */
            if (rc) return rc;
        }
    }
    if (wv_json_find(config, len, "rules", &val, &vl) && !(vl == 4 && !memcmp(val, "null", 4))) {
        int32_t n = count_items(val, vl, '[', "rules");
        if (n < 0) return n;
        rules = calloc((size_t)n + 1, sizeof *rules);
        if (!rules) return wv_error(WV_ERR_NOMEM, "out of memory");
        wv_json_iter_init(&it, val, vl);
        while ((rc = wv_json_iter_next(&it, &k, &kl, &v, &l)) == 1) {
            rc = parse_rule(rule_count, v, l, &rules[rule_count]);
            rule_count++;
            if (rc) return rc;
        }
    }
    return WV_OK;
}

/* ---- authenticate -------------------------------------------------------------------- */

WV_EXPORT int32_t wv_authenticate(const uint8_t *credentials, uint32_t len,
                                  const uint8_t **out_ptr, uint32_t *out_len) {
    static wv_buf presented;
    const uint8_t *val;
    uint32_t vl;
    /* without configured keys the plugin recognises no API key: let others decide */
    if (key_count == 0) return WV_NOT_FOUND;
    if (!wv_json_find(credentials, len, "api_key", &val, &vl)) return WV_NOT_FOUND;
    if (vl == 4 && !memcmp(val, "null", 4)) return WV_NOT_FOUND;
    wv_buf_clear(&presented);
    if (val[0] != '"' || wv_json_decode_string(val, vl, &presented))
        return wv_error(WV_ERR_DENIED, "api_key must be a string");
    uint8_t digest[32];
    if (pepper.len) hmac_sha256(pepper.data, pepper.len, presented.data, presented.len, digest);
    else sha256(presented.data, presented.len, digest);
    memset(presented.data, 0, presented.len); /* do not keep the key around */
    /* every digest is compared, in constant time, without stopping at a match */
    uint32_t found = 0, index = 0;
    for (uint32_t i = 0; i < key_count; i++) {
        uint32_t hit = equal_ct(digest, keys[i].digest, 32) & (found ^ 1u);
        uint32_t mask = 0u - hit;
        index = (index & ~mask) | (i & mask);
        found |= hit;
    }
    if (!found) return wv_error(WV_ERR_DENIED, "invalid API key");
    api_key *key = &keys[index];
    wv_buf *out = wv_output_begin();
    int32_t rc = wv_buf_append(out, "{\"subject\":", 11);
    if (!rc) rc = wv_json_append_string(out, key->id.data, key->id.len);
    if (!rc) rc = wv_buf_append(out, ",\"roles\":", 9);
    if (!rc) rc = wv_buf_append(out, key->roles.data, key->roles.len);
    if (!rc) rc = wv_buf_append(out, ",\"claims\":{\"key_id\":", 20);
    if (!rc) rc = wv_json_append_string(out, key->id.data, key->id.len);
    if (!rc) rc = wv_buf_append(out, ",\"method\":\"api_key\"}}", 21);
    if (rc) return rc;
    return wv_output_finish(out_ptr, out_len);
}

/* ---- authorize ----------------------------------------------------------------------- */

/* fnmatchcase, byte-wise: '*', '?', [set], [!set], [a-z]. */
static int glob(const uint8_t *p, const uint8_t *pend, const uint8_t *s, const uint8_t *send) {
    const uint8_t *star_p = NULL, *star_s = NULL;
    while (s < send) {
        if (p < pend && *p == '*') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        if (p < pend && *p == '[') {
            const uint8_t *q = p + 1;
            int negate = q < pend && *q == '!';
            if (negate) q++;
            const uint8_t *first = q;
            int hit = 0;
            while (q < pend && (*q != ']' || q == first)) {
                if (q + 2 < pend && q[1] == '-' && q[2] != ']') {
                    if (*s >= q[0] && *s <= q[2]) hit = 1;
                    q += 3;
                } else {
                    if (*s == *q) hit = 1;
                    q++;
                }
            }
            if (q < pend) { /* a closed set */
                if (hit != negate) {
                    p = q + 1;
                    s++;
                    continue;
                }
                goto backtrack;
            }
            /* no closing ']': a literal '[' */
        }
        if (p < pend && (*p == '?' || *p == *s)) {
            p++;
            s++;
            continue;
        }
    backtrack:
        if (!star_p) return 0;
        p = star_p;
        s = ++star_s;
    }
    while (p < pend && *p == '*') p++;
    return p == pend;
}

static int matches(const wv_buf *pattern, const uint8_t *s, uint32_t n) {
    return glob(pattern->data, pattern->data + pattern->len, s, s + n);
}

WV_EXPORT int32_t wv_authorize(const uint8_t *identity, uint32_t identity_len,
                               const uint8_t *resource, uint32_t resource_len,
                               const uint8_t *action, uint32_t action_len) {
    const uint8_t *roles = NULL, *k, *v;
    uint32_t roles_len = 0, kl, vl;
    wv_json_iter it;
    if (!wv_json_find(identity, identity_len, "roles", &roles, &roles_len)) roles_len = 0;
    int allowed = 0;
    for (uint32_t i = 0; i < rule_count; i++) {
        const rule *r = &rules[i];
        int applies = r->role.len == 1 && r->role.data[0] == '*';
        if (!applies && roles_len && wv_json_iter_init(&it, roles, roles_len) == WV_OK) {
            while (!applies && wv_json_iter_next(&it, &k, &kl, &v, &vl) == 1)
                applies = v[0] == '"' && wv_json_string_equals(v, vl, (const char *)r->role.data);
        }
        if (!applies || !matches(&r->resource, resource, resource_len) ||
            !matches(&r->action, action, action_len))
            continue;
        if (!r->allow) return 0; /* a matching deny wins */
        allowed = 1;
    }
    return allowed ? 1 : WV_ABSTAIN;
}
