/*
 * echo-config: the simplest leak detector. A transformer that answers
 *   "config"     with the JSON config it received in wv_init,
 *   "env:NAME"   with the environment variable NAME as WASI shows it ("(unset)"),
 *   "file:PATH"  with the first line of PATH ("denied: ..." when it cannot open it).
 * Built by tests/security/test_grants.py; nothing built is committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weaviate_plugin_sdk.h"

static char config[8192];
static uint32_t config_len;

static int32_t echo(const uint8_t *text, uint32_t len, wv_buf *out) {
    char request[1024];
    if (len >= sizeof request) return wv_buf_append(out, "too long", 8);
    memcpy(request, text, len);
    request[len] = 0;
    if (strcmp(request, "config") == 0) return wv_buf_append(out, config, config_len);
    if (strncmp(request, "env:", 4) == 0) {
        const char *value = getenv(request + 4);
        if (value == NULL) value = "(unset)";
        return wv_buf_append(out, value, (uint32_t)strlen(value));
    }
    if (strncmp(request, "file:", 5) == 0) {
        char line[512];
        FILE *file = fopen(request + 5, "r");
        if (file == NULL) {
            int n = snprintf(line, sizeof line, "denied: %s", strerror(errno));
            return wv_buf_append(out, line, (uint32_t)n);
        }
        if (fgets(line, sizeof line, file) == NULL) line[0] = 0;
        fclose(file);
        return wv_buf_append(out, line, (uint32_t)strcspn(line, "\n"));
    }
    return wv_buf_append(out, text, len);
}

WV_DEFINE_TRANSFORMER(echo)

WV_EXPORT int32_t wv_init(const uint8_t *json, uint32_t len) {
    if (len > sizeof config) len = sizeof config;
    memcpy(config, json, len);
    config_len = len;
    return WV_OK;
}
