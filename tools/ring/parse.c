/* Node lists on the command line: "host:port[:weight][ name]", comma-separated. */
#include "tools/ring/ring.h"
#include "tools/ring/ring_err.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ring_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A decimal number of s[0..n) in [min, max]; no sign, no spaces. */
static int parse_uint(const char *s, size_t n, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 10) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max) {
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Bytes a host or name may hold: printable, no space, no comma (the list separator). */
static bool word_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == ',') {
            return false;
        }
    }
    return n > 0;
}

int ring_parse_node(const char *text, struct ring_node *out, char *err, size_t errlen)
{
    const char *host, *hend, *rest, *end, *sp;
    uint32_t port, weight = 1;

    memset(out, 0, sizeof(*out));
    /* an optional " name" after the address, as twemproxy's "host:port:weight name" */
    sp = strchr(text, ' ');
    end = sp ? sp : text + strlen(text);
    if (sp != NULL) {
        const char *name = sp + 1;
        size_t nlen = strlen(name);
        if (!word_ok(name, nlen) || nlen > RING_NAME_MAX) {
            ring_set_err(err, errlen, "\"%s\": the name after the space must be 1..%d printable "
                    "bytes without spaces or commas", text, RING_NAME_MAX);
            return -1;
        }
        memcpy(out->name, name, nlen);
        out->name[nlen] = '\0';
    }
    if (text[0] == '[') {
        host = text + 1;
        hend = memchr(host, ']', (size_t)(end - host));
        if (hend == NULL || hend + 1 == end || hend[1] != ':') {
            ring_set_err(err, errlen, "\"%s\": expected [IPv6]:port[:weight]", text);
            return -1;
        }
        rest = hend + 2;
    } else {
        host = text;
        hend = memchr(text, ':', (size_t)(end - text));
        if (hend == NULL) {
            ring_set_err(err, errlen, "\"%s\": expected host:port[:weight]", text);
            return -1;
        }
        rest = hend + 1;
    }
    size_t hlen = (size_t)(hend - host);
    bool stray_bracket = text[0] != '[' && memchr(host, ']', hlen) != NULL;
    if (!word_ok(host, hlen) || hlen > RING_HOST_MAX || stray_bracket) {
        ring_set_err(err, errlen, "\"%s\": the host must be 1..%d printable bytes (IPv6 in "
                "brackets)", text, RING_HOST_MAX);
        return -1;
    }
    const char *colon = memchr(rest, ':', (size_t)(end - rest));
    const char *pend = colon ? colon : end;
    if (parse_uint(rest, (size_t)(pend - rest), 1, 65535, &port) != 0) {
        ring_set_err(err, errlen, "\"%s\": the port must be a number 1..65535", text);
        return -1;
    }
    if (colon != NULL
        && parse_uint(colon + 1, (size_t)(end - colon - 1), 1, RING_WEIGHT_MAX, &weight) != 0) {
        ring_set_err(err, errlen, "\"%s\": the weight must be a number 1..%d", text,
                RING_WEIGHT_MAX);
        return -1;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (uint16_t)port;
    out->weight = weight;
    return 0;
}

int ring_parse_nodes(const char *text, struct ring_node **nodes, size_t *n, char *err,
                     size_t errlen)
{
    size_t count = 1, k = 0;
    const char *p = text;
    struct ring_node *a;

    *nodes = NULL;
    *n = 0;
    for (const char *c = text; *c != '\0'; c++) {
        count += *c == ',';
    }
    a = calloc(count, sizeof(*a));
    if (a == NULL) {
        ring_set_err(err, errlen, "out of memory");
        return -1;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[RING_HOST_MAX + RING_NAME_MAX + 32];

        /* spaces around an item are for readability; one inside separates the name */
        while (len > 0 && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)p[len - 1])) {
            len--;
        }
        if (len == 0) {
            ring_set_err(err, errlen, "empty node in the list \"%s\"", text);
            goto fail;
        }
        if (len >= sizeof(item)) {
            ring_set_err(err, errlen, "node %zu of the list is too long", k + 1);
            goto fail;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (ring_parse_node(item, &a[k], err, errlen) != 0) {
            goto fail;
        }
        k++;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    *nodes = a;
    *n = k;
    return 0;

fail:
    free(a);
    return -1;
}
