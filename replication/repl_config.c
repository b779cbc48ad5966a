/* Replication settings: defaults, the --repl-* options and their names. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replication/repl.h"

void repl_config_defaults(struct repl_config *c)
{
    memset(c, 0, sizeof(*c));
    c->priority = 100;
    c->ack = REPL_ACK_QUORUM;
    c->ack_timeout_ms = 1000;
    c->mode = REPL_MODE_ELECTION;
    /* Berkeley DB 5.3's own default: a lone member of a pair does not elect itself */
    c->two_site = REPL_TWO_SITE_STRICT;
}

bool repl_parse_addr(const char *text, struct repl_addr *out)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || (size_t)(colon - text) > REPL_HOST_MAX) {
        return false;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || port < 1 || port > 65535) {
        return false;
    }
    memcpy(out->host, text, (size_t)(colon - text));
    out->host[colon - text] = '\0';
    out->port = (uint16_t)port;
    return true;
}

static bool parse_int(const char *text, long min, long max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = (int)v;
    return true;
}

const char *repl_mode_name(enum repl_mode m)
{
    switch (m) {
    case REPL_MODE_ELECTION:
        return "election";
    case REPL_MODE_MASTER:
        return "master";
    case REPL_MODE_SLAVE:
        return "slave";
    }
    return "unknown";
}

const char *repl_ack_name(enum repl_ack a)
{
    switch (a) {
    case REPL_ACK_NONE:
        return "none";
    case REPL_ACK_ONE:
        return "one";
    case REPL_ACK_QUORUM:
        return "quorum";
    case REPL_ACK_ALL:
        return "all";
    }
    return "unknown";
}

const char *repl_two_site_name(enum repl_two_site t)
{
    return t == REPL_TWO_SITE_STRICT ? "strict" : "available";
}

const char *repl_config_option(struct repl_config *c, const char *name, const char *value)
{
    if (strcmp(name, "repl-listen") == 0) {
        if (!repl_parse_addr(value, &c->listen)) {
            return "expected host:port";
        }
        c->enabled = true;
    } else if (strcmp(name, "repl-peer") == 0) {
        if (c->npeers == REPL_PEERS_MAX) {
            return "too many peers";
        }
        if (!repl_parse_addr(value, &c->peers[c->npeers])) {
            return "expected host:port";
        }
        c->npeers++;
    } else if (strcmp(name, "repl-priority") == 0) {
        if (!parse_int(value, 0, 1000000, &c->priority)) {
            return "expected 0 to 1000000";
        }
    } else if (strcmp(name, "repl-ack") == 0) {
        static const enum repl_ack all[] = {REPL_ACK_NONE, REPL_ACK_ONE, REPL_ACK_QUORUM,
                                            REPL_ACK_ALL};
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
            if (strcmp(value, repl_ack_name(all[i])) == 0) {
                c->ack = all[i];
                return NULL;
            }
        }
        return "expected none, one, quorum or all";
    } else if (strcmp(name, "repl-ack-timeout") == 0) {
        if (!parse_int(value, 1, 3600000, &c->ack_timeout_ms)) {
            return "expected milliseconds, 1 to 3600000";
        }
    } else if (strcmp(name, "repl-mode") == 0) {
        if (strcmp(value, "election") == 0) {
            c->mode = REPL_MODE_ELECTION;
        } else if (strcmp(value, "master") == 0) {
            c->mode = REPL_MODE_MASTER;
        } else if (strcmp(value, "slave") == 0) {
            c->mode = REPL_MODE_SLAVE;
        } else {
            return "expected election, master or slave";
        }
    } else if (strcmp(name, "repl-nsites") == 0) {
        if (!parse_int(value, 1, REPL_PEERS_MAX + 1, &c->nsites)) {
            return "expected the number of members, 1 to 17";
        }
    } else if (strcmp(name, "repl-two-site") == 0) {
        if (strcmp(value, "strict") == 0) {
            c->two_site = REPL_TWO_SITE_STRICT;
        } else if (strcmp(value, "available") == 0) {
            c->two_site = REPL_TWO_SITE_AVAILABLE;
        } else {
            return "expected strict or available";
        }
    } else if (strcmp(name, "repl-join") == 0) {
        c->join = true;
    } else {
        return "unknown replication option";
    }
    return NULL;
}

static bool same_addr(const struct repl_addr *a, const struct repl_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

const char *repl_config_check(const struct repl_config *c)
{
    static char why[200];
    if (!c->enabled) {
        if (c->npeers > 0 || c->join || c->mode != REPL_MODE_ELECTION) {
            return "the replication options need --repl-listen (-R)";
        }
        return NULL;
    }
    for (int i = 0; i < c->npeers; i++) {
        if (same_addr(&c->peers[i], &c->listen)) {
            return "a --repl-peer is this member's own --repl-listen address";
        }
        for (int j = 0; j < i; j++) {
            if (same_addr(&c->peers[i], &c->peers[j])) {
                return "a --repl-peer is given twice";
            }
        }
    }
    if (c->join && c->npeers == 0) {
        return "--repl-join needs at least one --repl-peer of the running group";
    }
    if (c->nsites != 0 && !c->join && c->nsites != c->npeers + 1) {
        snprintf(why, sizeof(why),
                 "--repl-nsites %d does not match this member plus its %d --repl-peer "
                 "addresses (a founding member lists every other member)",
                 c->nsites, c->npeers);
        return why;
    }
    if (c->mode == REPL_MODE_MASTER && c->join) {
        return "--repl-join joins a running group as a slave; it cannot be --repl-mode master";
    }
    return NULL;
}
