/* What the line-based reply parsers (text, meta) share: finding a reply line, reading numbers. */
#ifndef MCSTORE_TOOLS_BENCH_CLIENT_LINE_H
#define MCSTORE_TOOLS_BENCH_CLIENT_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tools/bench/client_text.h"

/* Why client_line_find found no line. */
enum client_line {
    CLIENT_LINE_OK,         /* *linelen is the line's length without "\r\n" */
    CLIENT_LINE_PARTIAL,    /* no "\n" yet: wait for more bytes */
    CLIENT_LINE_TOO_LONG,   /* CLIENT_LINE_MAX bytes and no "\n": garbage */
    CLIENT_LINE_BARE_LF,    /* a "\n" without "\r" before it: garbage */
};

/* Looks for the reply line at buf[0..len), scanning at most CLIENT_LINE_MAX bytes so that a
 * stream of garbage is refused instead of buffered without end. */
static inline enum client_line client_line_find(const char *buf, size_t len, size_t *linelen)
{
    size_t scan = len < CLIENT_LINE_MAX ? len : CLIENT_LINE_MAX;
    const char *nl = memchr(buf, '\n', scan);

    if (nl == NULL) {
        return len >= CLIENT_LINE_MAX ? CLIENT_LINE_TOO_LONG : CLIENT_LINE_PARTIAL;
    }
    if (nl == buf || nl[-1] != '\r') {
        return CLIENT_LINE_BARE_LF;
    }
    *linelen = (size_t)(nl - buf) - 1;
    return CLIENT_LINE_OK;
}

/* Whether the n bytes at line are exactly word. */
static inline bool client_line_is(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n == w && memcmp(line, word, w) == 0;
}

/* Whether the n bytes at line start with prefix. */
static inline bool client_line_starts(const char *line, size_t n, const char *prefix)
{
    size_t w = strlen(prefix);
    return n >= w && memcmp(line, prefix, w) == 0;
}

/* Whether the n bytes at line are one of the error replies any command may get in the text and
 * the meta protocol ("ERROR", "CLIENT_ERROR ...", "SERVER_ERROR ..."); if so *o is its
 * outcome. */
static inline bool client_line_error(const char *line, size_t n, enum client_outcome *o)
{
    if (client_line_is(line, n, "ERROR")) {
        *o = CLIENT_ERROR_REPLY;
        return true;
    }
    if (client_line_starts(line, n, "CLIENT_ERROR")) {
        *o = CLIENT_CLIENT_ERROR;
        return true;
    }
    if (client_line_starts(line, n, "SERVER_ERROR")) {
        *o = CLIENT_SERVER_ERROR;
        return true;
    }
    return false;
}

/* Reads an unsigned decimal at *p (up to end) no larger than max, moving *p past it; false
 * when there is no digit or the number is over max (the caller then refuses the reply). */
static inline bool client_dec_field(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s >= end || *s < '0' || *s > '9') {
        return false;
    }
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

#endif
