/* Parsing the command line into struct settings, and the -h text. */
#include "config.h"

#include "daemon/options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum long_only {
    OPT_IDLE_TIMEOUT = 1000,
    OPT_WRITE_TIMEOUT,
    OPT_MAX_OUTPUT,
    OPT_CHECKPOINT_SEC,
    OPT_SWEEP_INTERVAL,
    OPT_LOG_FILE,
    OPT_DURABILITY,
    OPT_CHECKPOINT_KB,
    OPT_LOG_ARCHIVE,
    OPT_RECOVER_CATASTROPHIC,
    OPT_PAGE_SIZE,
    OPT_LOG_FILE_SIZE,
    OPT_REPL,           /* every --repl-* option: replication/repl_config.c parses them */
    OPT_TLS_PORT,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_CA,
    OPT_TLS_VERIFY,
    OPT_TLS_HANDSHAKE_TIMEOUT,
    OPT_AUTH_FILE,
};

static const struct option long_options[] = {
    {"port", required_argument, NULL, 'p'},
    {"listen", required_argument, NULL, 'l'},
    {"conn-limit", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 't'},
    {"daemon", no_argument, NULL, 'd'},
    {"user", required_argument, NULL, 'u'},
    {"pidfile", required_argument, NULL, 'P'},
    {"verbose", no_argument, NULL, 'v'},
    {"max-item-size", required_argument, NULL, 'I'},
    {"home", required_argument, NULL, 'H'},
    {"cache-mb", required_argument, NULL, 'm'},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
    {"write-timeout", required_argument, NULL, OPT_WRITE_TIMEOUT},
    {"max-output", required_argument, NULL, OPT_MAX_OUTPUT},
    {"checkpoint-sec", required_argument, NULL, OPT_CHECKPOINT_SEC},
    {"sweep-interval-ms", required_argument, NULL, OPT_SWEEP_INTERVAL},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"durability", required_argument, NULL, OPT_DURABILITY},
    {"checkpoint-kb", required_argument, NULL, OPT_CHECKPOINT_KB},
    {"log-archive", required_argument, NULL, OPT_LOG_ARCHIVE},
    {"recover-catastrophic", no_argument, NULL, OPT_RECOVER_CATASTROPHIC},
    {"page-size", required_argument, NULL, OPT_PAGE_SIZE},
    {"log-file-size", required_argument, NULL, OPT_LOG_FILE_SIZE},
    {"repl-listen", required_argument, NULL, OPT_REPL},
    {"repl-peer", required_argument, NULL, OPT_REPL},
    {"repl-priority", required_argument, NULL, OPT_REPL},
    {"repl-ack", required_argument, NULL, OPT_REPL},
    {"repl-ack-timeout", required_argument, NULL, OPT_REPL},
    {"repl-mode", required_argument, NULL, OPT_REPL},
    {"repl-nsites", required_argument, NULL, OPT_REPL},
    {"repl-two-site", required_argument, NULL, OPT_REPL},
    {"repl-join", no_argument, NULL, OPT_REPL},
    {"enable-tls", no_argument, NULL, 'Z'},
    {"enable-ssl", no_argument, NULL, 'Z'},     /* memcached's name for -Z */
    {"tls-port", required_argument, NULL, OPT_TLS_PORT},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"tls-verify", required_argument, NULL, OPT_TLS_VERIFY},
    {"tls-handshake-timeout", required_argument, NULL, OPT_TLS_HANDSHAKE_TIMEOUT},
    {"auth-file", required_argument, NULL, OPT_AUTH_FILE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

void options_defaults(struct settings *s)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    memset(s, 0, sizeof(*s));
    s->port = 21201;
    s->listen_addr = "127.0.0.1";
    s->max_conns = 1024;
    s->threads = cores > 0 ? (int)cores : 4;
    s->item_max = 1024 * 1024;
    s->home = "/var/lib/mcstore";
    s->cache_mb = 64;
    s->idle_timeout = 0;
    s->write_timeout = 30;
    s->max_output = 64 * 1024 * 1024;
    s->checkpoint_sec = 60;
    s->sweep_interval_ms = 1000;
    s->durability = STORE_DURABILITY_OS;
    s->checkpoint_kb = 64 * 1024;
    s->page_size = 16 * 1024;
    s->log_file_size = 16 * 1024 * 1024;
    repl_config_defaults(&s->repl);
    s->tls_handshake_timeout = 10;
}

const char *options_tls_verify_name(enum options_tls_verify v)
{
    switch (v) {
    case OPT_TLS_VERIFY_OPTIONAL:
        return "optional";
    case OPT_TLS_VERIFY_REQUIRED:
        return "required";
    default:
        return "none";
    }
}

/* The TLS options make sense only together; say which one is missing or stray. */
static int check_tls(const struct settings *s)
{
    const char *err = NULL;
    bool tls = s->tls_main || s->tls_port != 0;

    if (s->tls_main && s->tls_port != 0) {
        err = "-Z makes the -p port speak TLS, --tls-port adds a TLS port beside a plain one: "
              "use one of them";
    } else if (tls && s->tls_cert == NULL) {
        err = "TLS needs a certificate: --tls-cert (and --tls-key if the key is apart)";
    } else if (!tls && (s->tls_cert != NULL || s->tls_key != NULL || s->tls_ca != NULL ||
                        s->tls_verify != OPT_TLS_VERIFY_NONE)) {
        err = "TLS options given without a TLS port: add --tls-port or -Z";
    } else if (s->tls_verify != OPT_TLS_VERIFY_NONE && s->tls_ca == NULL) {
        err = "--tls-verify optional|required checks client certificates against --tls-ca";
    } else if (s->tls_port != 0 && s->tls_port == s->port) {
        err = "--tls-port must differ from -p (or use -Z to make -p speak TLS)";
    }
    if (err != NULL) {
        fprintf(stderr, "mcstore: %s\n", err);
        return -1;
    }
    return 0;
}

bool options_parse_size(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || text[0] == '-') {
        return false;
    }
    unsigned long long mult = 1;
    if (*end == 'k' || *end == 'K') {
        mult = 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        mult = 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > SIZE_MAX / mult) {
        return false;
    }
    *out = (size_t)(v * mult);
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

void options_usage(const struct settings *d)
{
    printf("mcstore %s: a persistent key-value server speaking the memcached protocol\n"
           "usage: mcstore [options]\n\n"
           "-p, --port=NUM             TCP port to listen on (default: %d)\n"
           "-l, --listen=ADDR          address to bind (default: %s)\n"
           "-c, --conn-limit=NUM       max simultaneous connections (default: %d)\n"
           "-t, --threads=NUM          worker threads (default: %d, the number of cores)\n"
           "-d, --daemon               run as a daemon\n"
           "-u, --user=USER            drop privileges to this user\n"
           "-P, --pidfile=FILE         write the process id to FILE\n"
           "-v, --verbose              more logging; -vv for debug\n"
           "-I, --max-item-size=SIZE   largest item, with k/m suffix (default: %zum)\n"
           "-H, --home=DIR             data home: the Berkeley DB environment (default: %s)\n"
           "-m, --cache-mb=MB          Berkeley DB cache size in MB (default: %zu)\n"
           "    --durability=MODE      when a write is acknowledged: fsync (on disk, group\n"
           "                           commit), os (survives a crash of the process), none\n"
           "                           (in memory until a checkpoint) (default: %s)\n"
           "-N                         same as --durability=none (MemcacheDB's flag)\n"
           "    --idle-timeout=SEC     close connections idle this long, 0 = never (default: %d)\n"
           "    --write-timeout=SEC    close a connection whose replies make no progress this\n"
           "                           long: a client that never reads (default: %d)\n"
           "    --max-output=SIZE      pending reply bytes a connection may hold (default: %zum)\n"
           "    --checkpoint-sec=SEC   Berkeley DB checkpoint period (default: %d)\n"
           "    --checkpoint-kb=KB     also checkpoint after this much log, 0 = off (default: %zu)\n"
           "    --log-archive=DIR      move log files recovery no longer needs to DIR (default:\n"
           "                           delete them)\n"
           "    --log-file-size=SIZE   Berkeley DB log file size, 256k to 1g; logs are removed\n"
           "                           as whole files (default: %zum)\n"
           "    --recover-catastrophic run Berkeley DB's catastrophic recovery at start\n"
           "    --page-size=SIZE       items.db page size for a new data home; 32k keeps 4 KiB\n"
           "                           values on their page (default: %zuk)\n"
           "    --sweep-interval-ms=MS expiry sweeper period (default: %d)\n"
           "    --log-file=FILE        log to FILE instead of stderr; SIGHUP reopens it\n"
           "    --auth-file=FILE       require authentication (binary SASL PLAIN, memcached's\n"
           "                           text auth) against FILE's PBKDF2 hashes, made with\n"
           "                           mcstore-admin passwd; SIGHUP reloads it\n"
           "replication (doc/replication.md; off unless -R is given):\n"
           "-R, --repl-listen=ADDR     this member's replication address, host:port (plain\n"
           "                           TCP: keep it on a private network)\n"
           "-O, --repl-peer=ADDR       another member's replication address; one per member\n"
           "    --repl-mode=MODE       election (Berkeley DB elects the master), master or slave\n"
           "                           (fixed roles) (default: %s)\n"
           "-M                         same as --repl-mode=master (MemcacheDB's flag)\n"
           "-S                         same as --repl-mode=slave (MemcacheDB's flag)\n"
           "    --repl-priority=N      election priority, 0 = never master (default: %d)\n"
           "    --repl-ack=POLICY      a write is acknowledged after none, one, quorum or all\n"
           "                           other members have it (default: %s)\n"
           "    --repl-ack-timeout=MS  wait this long for acks, then answer SERVER_ERROR\n"
           "                           (default: %d)\n"
           "    --repl-nsites=N        the group's size; must equal 1 + the --repl-peer count\n"
           "    --repl-two-site=HOW    two-member groups: strict (the survivor does not elect\n"
           "                           itself) or available (it does) (default: %s)\n"
           "    --repl-join            join a running group (its members are the peers)\n"
           "-h, --help                 this text\n"
           "-V, --version              print the version\n",
           PACKAGE_VERSION, d->port, d->listen_addr, d->max_conns, d->threads,
           d->item_max / (1024 * 1024), d->home, d->cache_mb,
           store_durability_name(d->durability), d->idle_timeout, d->write_timeout,
           d->max_output / (1024 * 1024), d->checkpoint_sec, d->checkpoint_kb,
           d->log_file_size / (1024 * 1024), d->page_size / 1024, d->sweep_interval_ms,
           repl_mode_name(d->repl.mode), d->repl.priority, repl_ack_name(d->repl.ack),
           d->repl.ack_timeout_ms, repl_two_site_name(d->repl.two_site));
    printf("\nTLS (1.2 and newer):\n"
           "-Z, --enable-tls           the -p port speaks TLS only (memcached's -Z)\n"
           "    --tls-port=NUM         also listen on NUM for TLS; -p stays plain\n"
           "    --tls-cert=FILE        certificate chain, PEM (server certificate first)\n"
           "    --tls-key=FILE         private key, PEM, no passphrase (default: in --tls-cert)\n"
           "    --tls-ca=FILE          CA certificates (PEM) client certificates must chain to\n"
           "    --tls-verify=MODE      client certificates: none (not asked for), optional\n"
           "                           (checked if sent), required (default: %s)\n"
           "    --tls-handshake-timeout=SEC  close a connection whose handshake is not done in\n"
           "                           SEC seconds (default: %d)\n"
           "SIGHUP reloads the certificate, key and CA files.\n",
           options_tls_verify_name(d->tls_verify), d->tls_handshake_timeout);
}

static int bad(const char *opt, const char *value)
{
    fprintf(stderr, "mcstore: invalid value for %s: '%s' (see mcstore -h)\n", opt, value);
    return -1;
}

int options_parse(struct settings *s, int argc, char **argv)
{
    struct settings defaults = *s;
    int c;
    int cache_mb;
    int opt_index = 0;
    const char *why;

    optind = 1;
    while ((c = getopt_long(argc, argv, "p:l:c:t:du:P:vI:H:m:NZhVR:O:MS", long_options,
                            &opt_index)) != -1) {
        switch (c) {
        case 'p':
            if (!parse_int(optarg, 0, 65535, &s->port)) {
                return bad("-p", optarg);
            }
            break;
        case 'l':
            s->listen_addr = optarg;
            break;
        case 'c':
            if (!parse_int(optarg, 1, 1000000, &s->max_conns)) {
                return bad("-c", optarg);
            }
            break;
        case 't':
            if (!parse_int(optarg, 1, 256, &s->threads)) {
                return bad("-t", optarg);
            }
            break;
        case 'd':
            s->daemonize = true;
            break;
        case 'u':
            s->user = optarg;
            break;
        case 'P':
            s->pid_file = optarg;
            break;
        case 'v':
            s->verbose++;
            break;
        case 'I':
            /* memcached's bounds: at least 1k, at most 1g */
            if (!options_parse_size(optarg, &s->item_max) || s->item_max < 1024 ||
                s->item_max > 1024 * 1024 * 1024) {
                return bad("-I", optarg);
            }
            break;
        case 'H':
            s->home = optarg;
            break;
        case 'm':
            if (!parse_int(optarg, 1, 1024 * 1024, &cache_mb)) {
                return bad("-m", optarg);
            }
            s->cache_mb = (size_t)cache_mb;
            break;
        case OPT_IDLE_TIMEOUT:
            if (!parse_int(optarg, 0, INT_MAX, &s->idle_timeout)) {
                return bad("--idle-timeout", optarg);
            }
            break;
        case OPT_WRITE_TIMEOUT:
            if (!parse_int(optarg, 1, INT_MAX, &s->write_timeout)) {
                return bad("--write-timeout", optarg);
            }
            break;
        case OPT_MAX_OUTPUT:
            if (!options_parse_size(optarg, &s->max_output) || s->max_output < 64 * 1024) {
                return bad("--max-output (at least 64k)", optarg);
            }
            break;
        case OPT_CHECKPOINT_SEC:
            if (!parse_int(optarg, 0, INT_MAX, &s->checkpoint_sec)) {
                return bad("--checkpoint-sec", optarg);
            }
            break;
        case OPT_SWEEP_INTERVAL:
            if (!parse_int(optarg, 10, 3600000, &s->sweep_interval_ms)) {
                return bad("--sweep-interval-ms", optarg);
            }
            break;
        case OPT_LOG_FILE:
            s->log_file = optarg;
            break;
        case OPT_DURABILITY:
            if (!store_durability_parse(optarg, &s->durability)) {
                return bad("--durability (fsync, os or none)", optarg);
            }
            break;
        case 'N':
            s->durability = STORE_DURABILITY_NONE;
            break;
        case OPT_CHECKPOINT_KB: {
            int kb;
            if (!parse_int(optarg, 0, INT_MAX, &kb)) {
                return bad("--checkpoint-kb", optarg);
            }
            s->checkpoint_kb = (size_t)kb;
            break;
        }
        case OPT_LOG_ARCHIVE:
            s->log_archive = optarg;
            break;
        case OPT_RECOVER_CATASTROPHIC:
            s->recover_catastrophic = true;
            break;
        case OPT_AUTH_FILE:
            s->auth_file = optarg;
            break;
        case OPT_LOG_FILE_SIZE:
            /* Berkeley DB wants a log file at least 4 log buffers long; the buffer shrinks
             * with the file (storage/bdb_env.c), to 64 KiB at 256k */
            if (!options_parse_size(optarg, &s->log_file_size) ||
                s->log_file_size < 256 * 1024 || s->log_file_size > 1024 * 1024 * 1024) {
                return bad("--log-file-size (256k to 1g)", optarg);
            }
            break;
        case OPT_PAGE_SIZE:
            /* Berkeley DB takes powers of two from 512 bytes to 64 KiB */
            if (!options_parse_size(optarg, &s->page_size) || s->page_size < 512 ||
                s->page_size > 65536 || (s->page_size & (s->page_size - 1)) != 0) {
                return bad("--page-size (a power of two, 512 to 64k)", optarg);
            }
            break;
        case OPT_REPL:
        case 'R':
        case 'O':
        case 'M':
        case 'S': {
            const char *name = c == 'R'   ? "repl-listen"
                               : c == 'O' ? "repl-peer"
                               : c == 'M' || c == 'S' ? "repl-mode"
                                                      : long_options[opt_index].name;
            const char *value = c == 'M' ? "master" : c == 'S' ? "slave" : optarg;
            if ((why = repl_config_option(&s->repl, name, value)) != NULL) {
                fprintf(stderr, "mcstore: invalid value for --%s: '%s': %s (see mcstore -h)\n",
                        name, value != NULL ? value : "", why);
                return -1;
            }
            break;
        }
        case 'Z':
            s->tls_main = true;
            break;
        case OPT_TLS_PORT:
            if (!parse_int(optarg, 1, 65535, &s->tls_port)) {
                return bad("--tls-port", optarg);
            }
            break;
        case OPT_TLS_CERT:
            s->tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            s->tls_key = optarg;
            break;
        case OPT_TLS_CA:
            s->tls_ca = optarg;
            break;
        case OPT_TLS_VERIFY:
            if (strcmp(optarg, "none") == 0) {
                s->tls_verify = OPT_TLS_VERIFY_NONE;
            } else if (strcmp(optarg, "optional") == 0) {
                s->tls_verify = OPT_TLS_VERIFY_OPTIONAL;
            } else if (strcmp(optarg, "required") == 0) {
                s->tls_verify = OPT_TLS_VERIFY_REQUIRED;
            } else {
                return bad("--tls-verify (none, optional or required)", optarg);
            }
            break;
        case OPT_TLS_HANDSHAKE_TIMEOUT:
            if (!parse_int(optarg, 1, 3600, &s->tls_handshake_timeout)) {
                return bad("--tls-handshake-timeout (1 to 3600)", optarg);
            }
            break;
        case 'h':
            options_usage(&defaults);
            return 1;
        case 'V':
            printf("mcstore %s\n", PACKAGE_VERSION);
            return 1;
        default:
            fprintf(stderr, "mcstore: see mcstore -h for the options\n");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mcstore: unexpected argument '%s' (see mcstore -h)\n", argv[optind]);
        return -1;
    }
    if ((why = repl_config_check(&s->repl)) != NULL) {
        fprintf(stderr, "mcstore: %s (see mcstore -h)\n", why);
        return -1;
    }
    return check_tls(s);
}
