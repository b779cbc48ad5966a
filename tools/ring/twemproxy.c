/* Reads the ring settings of one pool from a twemproxy (nutcracker) YAML file (libyaml). */
#include "tools/ring/ring.h"
#include "tools/ring/ring_err.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* A scalar node's text, or NULL for any other node. */
static const char *scalar(yaml_node_t *node, size_t *len)
{
    if (node == NULL || node->type != YAML_SCALAR_NODE) {
        return NULL;
    }
    *len = node->data.scalar.length;
    return (const char *)node->data.scalar.value;
}

/* nutcracker's nc_atoi: digits only, else -1 */
static long digits(const char *s, size_t n)
{
    long v = 0;

    if (n == 0 || n > 9) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static const char *last_of(const char *s, size_t n, char c)
{
    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == c) {
            return s + i - 1;
        }
    }
    return NULL;
}

/*
 * One "servers:" entry, "host:port:weight [name]", cut from the end as nutcracker's
 * conf_add_server() does: the last space starts the name, then the last two colons end
 * the port and the host (so "::1:11211:1" is host ::1).
 */
static int parse_server(const char *s, size_t n, struct ring_node *out, char *err,
                        size_t errlen)
{
    const char *sp, *wc, *pc;
    size_t end = n;
    long port, weight;

    memset(out, 0, sizeof(*out));
    if (n > 0 && s[0] == '/') {
        ring_set_err(err, errlen, "server \"%.*s\": unix socket servers are not supported",
                (int)n, s);
        return -1;
    }
    sp = last_of(s, n, ' ');
    if (sp != NULL) {
        size_t nlen = n - (size_t)(sp + 1 - s);
        if (nlen == 0 || nlen > RING_NAME_MAX) {
            ring_set_err(err, errlen, "server \"%.*s\": bad name", (int)n, s);
            return -1;
        }
        memcpy(out->name, sp + 1, nlen);
        out->name[nlen] = '\0';
        end = (size_t)(sp - s);
    }
    wc = last_of(s, end, ':');
    pc = wc ? last_of(s, (size_t)(wc - s), ':') : NULL;
    if (pc == NULL) {
        ring_set_err(err, errlen, "server \"%.*s\": expected \"host:port:weight [name]\"", (int)n,
                s);
        return -1;
    }
    port = digits(pc + 1, (size_t)(wc - pc - 1));
    weight = digits(wc + 1, end - (size_t)(wc + 1 - s));
    if (port < 1 || port > 65535) {
        ring_set_err(err, errlen, "server \"%.*s\": bad port", (int)n, s);
        return -1;
    }
    if (weight < 1 || weight > RING_WEIGHT_MAX) {
        ring_set_err(err, errlen, "server \"%.*s\": the weight must be 1..%d", (int)n, s,
                RING_WEIGHT_MAX);
        return -1;
    }
    size_t hlen = (size_t)(pc - s);
    if (hlen == 0 || hlen > RING_HOST_MAX) {
        ring_set_err(err, errlen, "server \"%.*s\": bad host", (int)n, s);
        return -1;
    }
    memcpy(out->host, s, hlen);
    out->host[hlen] = '\0';
    out->port = (uint16_t)port;
    out->weight = (uint32_t)weight;
    return 0;
}

static int load_servers(yaml_document_t *doc, yaml_node_t *seq, struct ring_node **nodes,
                        size_t *n, char *err, size_t errlen)
{
    size_t count;
    struct ring_node *a;

    if (seq->type != YAML_SEQUENCE_NODE) {
        ring_set_err(err, errlen, "\"servers\" must be a list");
        return -1;
    }
    count = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    if (count == 0) {
        ring_set_err(err, errlen, "\"servers\" is empty");
        return -1;
    }
    a = calloc(count, sizeof(*a));
    if (a == NULL) {
        ring_set_err(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
        size_t len = 0;
        const char *s = scalar(item, &len);
        if (s == NULL) {
            ring_set_err(err, errlen, "server %zu is not a \"host:port:weight [name]\" string",
                    i + 1);
            free(a);
            return -1;
        }
        if (parse_server(s, len, &a[i], err, errlen) != 0) {
            free(a);
            return -1;
        }
    }
    *nodes = a;
    *n = count;
    return 0;
}

static bool key_is(const char *k, size_t klen, const char *want)
{
    return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

/* Takes hash, hash_tag, distribution and servers from one pool's mapping. */
static int load_pool(yaml_document_t *doc, yaml_node_t *pool, const char *pname,
                     struct ring_config *cfg, struct ring_node **nodes, size_t *n, char *err,
                     size_t errlen)
{
    bool have_servers = false;

    if (pool->type != YAML_MAPPING_NODE) {
        ring_set_err(err, errlen, "pool \"%s\" is not a mapping", pname);
        return -1;
    }
    for (yaml_node_pair_t *p = pool->data.mapping.pairs.start; p < pool->data.mapping.pairs.top;
         p++) {
        size_t klen = 0, vlen = 0;
        const char *k = scalar(yaml_document_get_node(doc, p->key), &klen);
        yaml_node_t *vnode = yaml_document_get_node(doc, p->value);
        const char *v = scalar(vnode, &vlen);

        if (k == NULL) {
            continue;
        }
        if (key_is(k, klen, "servers")) {
            if (have_servers) {
                ring_set_err(err, errlen, "pool \"%s\": \"servers\" twice", pname);
                goto fail;
            }
            if (load_servers(doc, vnode, nodes, n, err, errlen) != 0) {
                goto fail;
            }
            have_servers = true;
        } else if (key_is(k, klen, "hash")) {
            char name[32];
            if (v == NULL || vlen >= sizeof(name)) {
                ring_set_err(err, errlen, "pool \"%s\": bad hash", pname);
                goto fail;
            }
            memcpy(name, v, vlen);
            name[vlen] = '\0';
            /* twemproxy's own names only: "default" and "crc" are ours and libmemcached's */
            if (ring_hash_parse(name, &cfg->hash) != 0 || strcmp(name, "default") == 0
                || strcmp(name, "crc") == 0) {
                ring_set_err(err, errlen, "pool \"%s\": twemproxy has no hash \"%s\"", pname, name);
                goto fail;
            }
        } else if (key_is(k, klen, "hash_tag")) {
            if (v == NULL || vlen != 2) {
                ring_set_err(err, errlen, "pool \"%s\": hash_tag must be two characters", pname);
                goto fail;
            }
            memcpy(cfg->hash_tag, v, 2);
            cfg->hash_tag[2] = '\0';
        } else if (key_is(k, klen, "distribution")) {
            if (v == NULL || !key_is(v, vlen, "ketama")) {
                ring_set_err(err, errlen, "pool \"%s\": distribution \"%.*s\": mcstore-ring "
                        "models only ketama (consistent hashing)", pname,
                        v ? (int)vlen : 1, v ? v : "?");
                goto fail;
            }
        }
    }
    if (!have_servers) {
        ring_set_err(err, errlen, "pool \"%s\" has no \"servers\"", pname);
        return -1;
    }
    return 0;

fail:
    if (have_servers) {
        free(*nodes);
        *nodes = NULL;
        *n = 0;
    }
    return -1;
}

int ring_load_twemproxy(const char *path, const char *pool, struct ring_config *cfg,
                        struct ring_node **nodes, size_t *n, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    FILE *f;
    int rc = -1;

    *nodes = NULL;
    *n = 0;
    memset(cfg, 0, sizeof(*cfg));
    cfg->kind = RING_TWEMPROXY_KETAMA;
    cfg->hash = RING_HASH_FNV1A_64;     /* nutcracker's CONF_DEFAULT_HASH */
    f = fopen(path, "rb");
    if (f == NULL) {
        ring_set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        ring_set_err(err, errlen, "out of memory");
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        ring_set_err(err, errlen, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "YAML error");
        yaml_parser_delete(&parser);
        fclose(f);
        return -1;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        ring_set_err(err, errlen, "%s: expected a mapping of pool names to pools", path);
        goto done;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        size_t klen = 0;
        const char *k = scalar(yaml_document_get_node(&doc, p->key), &klen);
        char pname[256];

        if (k == NULL || klen >= sizeof(pname)) {
            continue;
        }
        memcpy(pname, k, klen);
        pname[klen] = '\0';
        if (pool != NULL && strcmp(pool, pname) != 0) {
            continue;
        }
        if (load_pool(&doc, yaml_document_get_node(&doc, p->value), pname, cfg, nodes, n,
                      err, errlen) == 0) {
            rc = 0;
        }
        goto done;
    }
    if (pool != NULL) {
        ring_set_err(err, errlen, "%s: no pool \"%s\"", path, pool);
    } else {
        ring_set_err(err, errlen, "%s: no pools", path);
    }

done:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
