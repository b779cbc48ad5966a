/* A pure parser of memcached 1.6.18's text authentication ("set" carrying "user pass"). */
#include "config.h"

#include "daemon/auth_text.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* isspace() in the C locale, which is what memcached's strtoul and checks see */
static bool c_space(char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/*
 * memcached's safe_strtoul over a token, including its quirks: leading whitespace and a sign
 * are accepted ("-0" is 0; "-18446744073709551615" is 1), the number may be followed only by
 * whitespace, a value is taken modulo 2^32 ("4294967308" is 12), and an overflow of unsigned
 * long is an error.
 */
static bool mc_strtoul(const char *s, size_t n, uint32_t *out)
{
    size_t i = 0;
    bool neg = false;
    bool range = false;
    uint64_t v = 0;

    while (i < n && c_space(s[i])) {
        i++;
    }
    if (i < n && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    size_t digits = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            range = true;
        } else if (!range) {
            v = v * 10 + d;
        }
        i++;
    }
    if (i == digits || range) {
        return false;
    }
    if (i < n && !c_space(s[i])) {
        return false;
    }
    uint64_t l = neg ? (uint64_t)0 - v : v;
    if (neg && (int64_t)l < 0) {
        return false;
    }
    *out = (uint32_t)l;
    return true;
}

/*
 * memcached's tokenize_command: tokens are separated by runs of ' ' (only), so a token may
 * hold '\r' or '\t'. Fills up to max tokens and returns how many there are (up to max).
 */
static size_t tokens(const char *s, size_t n, const char **tok, size_t *ntok, size_t max)
{
    size_t count = 0;
    size_t i = 0;
    while (i < n && count < max) {
        while (i < n && s[i] == ' ') {
            i++;
        }
        if (i == n) {
            break;
        }
        size_t start = i;
        while (i < n && s[i] != ' ') {
            i++;
        }
        tok[count] = s + start;
        ntok[count] = i - start;
        count++;
    }
    return count;
}

static void reply(struct auth_text_result *res, size_t consumed, const char *line)
{
    res->status = AUTH_TEXT_REPLY;
    res->consumed = consumed;
    res->reply = line;
}

void auth_text_parse(const char *buf, size_t len, struct auth_text_result *res)
{
    const char *tok[5];
    size_t ntok[5];

    memset(res, 0, sizeof(*res));
    res->status = AUTH_TEXT_NEED_MORE;
    /* memcached waits for two bytes before looking: "\n" alone is no command yet */
    if (len < 2) {
        return;
    }
    const char *nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        if (len > AUTH_TEXT_LINE_MAX) {
            res->status = AUTH_TEXT_CLOSE;
        }
        return;
    }
    size_t line_end = (size_t)(nl - buf);
    size_t data = line_end + 1;
    /* memcached works on C strings: a NUL ends the line early */
    const char *nul = memchr(buf, '\0', line_end);
    size_t nline = nul != NULL ? (size_t)(nul - buf) : line_end;

    uint32_t size;
    if (tokens(buf, nline, tok, ntok, 5) < 5 || ntok[0] != 3 || memcmp(tok[0], "set", 3) != 0 ||
        !mc_strtoul(tok[4], ntok[4], &size)) {
        reply(res, data, AUTH_TEXT_E_UNAUTH);
        return;
    }
    /* memcached's arithmetic: bytes + 2 in 32 bits */
    uint32_t rl = size + 2u;
    if (rl > AUTH_TEXT_DATA_MAX) {
        /* memcached waits until its read buffer is full and then closes */
        if (len - data > AUTH_TEXT_DATA_MAX) {
            res->status = AUTH_TEXT_CLOSE;
        }
        return;
    }
    if (len - data < rl) {
        res->need = data + rl;
        return;
    }
    const char *block = buf + data;
    /* rl < 2 when bytes wrapped (4294967294, 4294967295): memcached then compares the bytes
     * before the block, which never end in "\r\n" */
    if (rl < 2 || block[rl - 2] != '\r' || block[rl - 1] != '\n') {
        reply(res, data + rl, AUTH_TEXT_E_TERM);
        return;
    }
    size_t nblock = rl - 2;
    nul = memchr(block, '\0', nblock);
    if (nul != NULL) {
        nblock = (size_t)(nul - block);
    }
    if (tokens(block, nblock, tok, ntok, 2) < 2) {
        reply(res, data + rl, AUTH_TEXT_E_TOKENS);
        return;
    }
    res->status = AUTH_TEXT_CHECK;
    res->consumed = data + rl;
    res->user = tok[0];
    res->nuser = ntok[0];
    res->pass = tok[1];
    res->npass = ntok[1];
}
