/* mcstore-admin: backup, restore, verify, dump and load of an mcstore data home. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/admin.h"

/* Exit codes (also in mcstore-admin.1). */
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,    /* the operation failed; the message says why */
    EXIT_USAGE = 2,     /* bad command line */
    EXIT_BUSY = 3,      /* refused: a server (or another mcstore-admin) uses the data home */
    EXIT_INTERRUPTED = 4,
};

static const char *progname = "mcstore-admin";
static volatile sig_atomic_t interrupted_flag;
static volatile int interrupted_int;

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: %s COMMAND -H HOME [options] [ARG]\n"
        "\n"
        "Commands:\n"
        "  backup  -H HOME [-c] [--replace] DIR\n"
        "        Hot backup of HOME into DIR (new or empty), consistent, while the server\n"
        "        keeps serving. -c: checkpoint HOME first. --replace: replace an earlier\n"
        "        mcstore backup in DIR.\n"
        "  restore -H HOME [--force] DIR\n"
        "        Replace HOME's databases and logs with the backup in DIR and run\n"
        "        catastrophic recovery. The server must be stopped.\n"
        "  dump    -H HOME [FILE|-]\n"
        "        Write every live item to FILE (default: standard output) in the portable\n"
        "        'mcstore-dump 1' text format. Works while the server runs.\n"
        "  load    -H HOME [FILE|-]\n"
        "        Store the items of a dump (default: standard input) into HOME, with new\n"
        "        CAS values. The server must be stopped.\n"
        "  verify  DIR\n"
        "        Check the databases of a backup (or of a stopped data home) with\n"
        "        Berkeley DB's verifier, using mcstore's key orderings.\n"
        "\n"
        "Options:\n"
        "  -H, --home HOME   the data home (the server's -H)\n"
        "  -q, --quiet       no progress bar and no messages, only errors\n"
        "  -v, --verbose     say what is being done\n"
        "  -h, --help        this help\n"
        "  -V, --version     the version\n"
        "\n"
        "A progress bar is drawn on standard error when it is a terminal.\n"
        "Exit status: 0 done, 1 failed, 2 usage error, 3 the data home is in use\n"
        "(a server or another mcstore-admin holds it), 4 interrupted.\n"
        "See mcstore-admin(1) and doc/operations.md.\n",
        progname);
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted_flag = 1;
    interrupted_int = 1;
}

/* ---- messages and the progress bar ------------------------------------------------------ */

struct ui {
    const char *verb;           /* "dump", "load"... shown before the bar */
    bool bar;                   /* stderr is a terminal and not --quiet */
    bool verbose;
    bool quiet;
    bool bar_drawn;             /* a bar is on the current line */
    struct timespec last;
};

static double since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void human_bytes(uint64_t n, char *out, size_t cap)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(out, cap, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
}

static void clear_bar(struct ui *ui)
{
    if (ui->bar_drawn) {
        fputs("\r\033[K", stderr);
        ui->bar_drawn = false;
    }
}

static void on_info(void *arg, const char *msg)
{
    struct ui *ui = arg;
    bool warning = strncmp(msg, "warning", 7) == 0 || strncmp(msg, "berkeley db", 11) == 0;
    if (ui->quiet || (!ui->verbose && !warning)) {
        return;
    }
    clear_bar(ui);
    fprintf(stderr, "%s: %s\n", progname, msg);
}

static void on_progress(void *arg, const struct admin_progress *p)
{
    struct ui *ui = arg;
    if (!ui->bar) {
        return;
    }
    bool complete = (p->bytes_total > 0 && p->bytes >= p->bytes_total) ||
                    (p->bytes_total == 0 && p->items_total > 0 && p->items >= p->items_total);
    if (ui->bar_drawn && !complete && since(&ui->last) < 0.1) {
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ui->last);
    double frac = -1;
    if (p->bytes_total > 0) {
        frac = (double)p->bytes / (double)p->bytes_total;
    } else if (p->items_total > 0) {
        frac = (double)p->items / (double)p->items_total;
    }
    char done[32];
    human_bytes(p->bytes, done, sizeof(done));
    char bar[32];
    const int width = 24;
    if (frac >= 0) {
        if (frac > 1) {
            frac = 1;
        }
        int fill = (int)(frac * width);
        for (int i = 0; i < width; i++) {
            bar[i] = i < fill ? '#' : '-';
        }
        bar[width] = '\0';
        fprintf(stderr, "\r%-7s [%s] %3d%%  %" PRIu64 " items  %s\033[K", ui->verb, bar,
                (int)(frac * 100), p->items, done);
    } else {
        fprintf(stderr, "\r%-7s %" PRIu64 " items  %s\033[K", ui->verb, p->items, done);
    }
    ui->bar_drawn = true;
}

static void ui_init(struct ui *ui, const char *verb, bool quiet, bool verbose)
{
    memset(ui, 0, sizeof(*ui));
    ui->verb = verb;
    ui->quiet = quiet;
    ui->verbose = verbose && !quiet;
    ui->bar = !quiet && isatty(STDERR_FILENO);
}

static void ctx_init(struct admin_ctx *ctx, struct ui *ui, const char *home)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->home = home;
    ctx->progress = on_progress;
    ctx->progress_arg = ui;
    ctx->info = on_info;
    ctx->info_arg = ui;
    ctx->interrupted = &interrupted_int;
}

static int finish(struct ui *ui, struct admin_ctx *ctx, enum admin_status st)
{
    clear_bar(ui);
    if (st == ADMIN_OK) {
        return EXIT_OK;
    }
    fprintf(stderr, "%s: %s: %s\n", progname, ui->verb, ctx->err[0] ? ctx->err : "failed");
    if (interrupted_flag) {
        return EXIT_INTERRUPTED;
    }
    return st == ADMIN_BUSY ? EXIT_BUSY : EXIT_FAILED;
}

static void summary(struct ui *ui, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void summary(struct ui *ui, const char *fmt, ...)
{
    va_list ap;
    if (ui->quiet) {
        return;
    }
    clear_bar(ui);
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void set_err(struct admin_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct admin_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
}

/* ---- commands --------------------------------------------------------------------------- */

struct cmdline {
    const char *home;
    bool quiet;
    bool verbose;
    bool checkpoint;
    bool replace;
    bool force;
    int nargs;
    char **args;
};

static int cmd_backup(struct cmdline *cl)
{
    struct ui ui;
    struct admin_ctx ctx;
    if (cl->nargs != 1) {
        fprintf(stderr, "%s: backup needs one DIR (try -h)\n", progname);
        return EXIT_USAGE;
    }
    ui_init(&ui, "backup", cl->quiet, cl->verbose);
    ctx_init(&ctx, &ui, cl->home);
    enum admin_status st = admin_backup(&ctx, cl->args[0], cl->replace, cl->checkpoint);
    int rc = finish(&ui, &ctx, st);
    if (rc == EXIT_OK) {
        summary(&ui, "backup of %s is in %s", cl->home, cl->args[0]);
    }
    return rc;
}

static int cmd_restore(struct cmdline *cl)
{
    struct ui ui;
    struct admin_ctx ctx;
    if (cl->nargs != 1) {
        fprintf(stderr, "%s: restore needs one DIR (try -h)\n", progname);
        return EXIT_USAGE;
    }
    ui_init(&ui, "restore", cl->quiet, cl->verbose);
    ctx_init(&ctx, &ui, cl->home);
    enum admin_status st = admin_restore(&ctx, cl->args[0], cl->force);
    int rc = finish(&ui, &ctx, st);
    if (rc == EXIT_OK) {
        summary(&ui, "restored %s from %s", cl->home, cl->args[0]);
    }
    return rc;
}

static int cmd_verify(struct cmdline *cl)
{
    struct ui ui;
    struct admin_ctx ctx;
    const char *dir = cl->nargs == 1 ? cl->args[0] : cl->home;
    if (cl->nargs > 1 || dir == NULL) {
        fprintf(stderr, "%s: verify needs one DIR (try -h)\n", progname);
        return EXIT_USAGE;
    }
    ui_init(&ui, "verify", cl->quiet, cl->verbose);
    ctx_init(&ctx, &ui, dir);
    enum admin_status st = admin_verify(&ctx, dir);
    int rc = finish(&ui, &ctx, st);
    if (rc == EXIT_OK) {
        summary(&ui, "%s: every database verified", dir);
    }
    return rc;
}

static int cmd_dump(struct cmdline *cl)
{
    struct ui ui;
    struct admin_ctx ctx;
    struct admin_counts counts;
    char tmp[4200];
    FILE *out = stdout;
    const char *path = cl->nargs == 1 && strcmp(cl->args[0], "-") != 0 ? cl->args[0] : NULL;

    if (cl->nargs > 1) {
        fprintf(stderr, "%s: dump takes at most one FILE (try -h)\n", progname);
        return EXIT_USAGE;
    }
    if (path == NULL && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "%s: dump: refusing to write a dump to a terminal; give a FILE or "
                "redirect standard output\n", progname);
        return EXIT_USAGE;
    }
    if (path != NULL) {
        /* written next to FILE and renamed at the end: FILE is complete or untouched */
        if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
            fprintf(stderr, "%s: dump: file name too long\n", progname);
            return EXIT_USAGE;
        }
        out = fopen(tmp, "wx");
        if (out == NULL) {
            fprintf(stderr, "%s: dump: cannot create %s: %s\n", progname, tmp, strerror(errno));
            return EXIT_FAILED;
        }
    }
    ui_init(&ui, "dump", cl->quiet, cl->verbose);
    ctx_init(&ctx, &ui, cl->home);
    enum admin_status st = admin_dump(&ctx, out, &counts);
    if (path != NULL) {
        if (st == ADMIN_OK && (fflush(out) != 0 || fsync(fileno(out)) != 0)) {
            set_err(&ctx, "cannot write %s: %s", tmp, strerror(errno));
            st = ADMIN_ERR;
        }
        if (fclose(out) != 0 && st == ADMIN_OK) {
            set_err(&ctx, "cannot write %s: %s", tmp, strerror(errno));
            st = ADMIN_ERR;
        }
        if (st == ADMIN_OK && rename(tmp, path) != 0) {
            set_err(&ctx, "cannot rename %s to %s: %s", tmp, path,
                     strerror(errno));
            st = ADMIN_ERR;
        }
        if (st != ADMIN_OK) {
            unlink(tmp);
        }
    } else if (st == ADMIN_OK && fflush(stdout) != 0) {
        set_err(&ctx, "cannot write to standard output: %s",
                 strerror(errno));
        st = ADMIN_ERR;
    }
    int rc = finish(&ui, &ctx, st);
    if (rc == EXIT_OK) {
        char b[32];
        human_bytes(counts.bytes, b, sizeof(b));
        summary(&ui, "dumped %" PRIu64 " items (%s of values), skipped %" PRIu64
                " expired or flushed", counts.items, b, counts.expired);
    }
    return rc;
}

static int cmd_load(struct cmdline *cl)
{
    struct ui ui;
    struct admin_ctx ctx;
    struct admin_counts counts;
    FILE *in = stdin;
    const char *path = cl->nargs == 1 && strcmp(cl->args[0], "-") != 0 ? cl->args[0] : NULL;
    uint64_t size = 0;
    struct stat sb;

    if (cl->nargs > 1) {
        fprintf(stderr, "%s: load takes at most one FILE (try -h)\n", progname);
        return EXIT_USAGE;
    }
    if (path != NULL && (in = fopen(path, "r")) == NULL) {
        fprintf(stderr, "%s: load: cannot open %s: %s\n", progname, path, strerror(errno));
        return EXIT_FAILED;
    }
    if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) {
        size = (uint64_t)sb.st_size;
    }
    ui_init(&ui, "load", cl->quiet, cl->verbose);
    ctx_init(&ctx, &ui, cl->home);
    enum admin_status st = admin_load(&ctx, in, size, &counts);
    if (path != NULL) {
        fclose(in);
    }
    int rc = finish(&ui, &ctx, st);
    if (rc == EXIT_OK) {
        char b[32];
        human_bytes(counts.bytes, b, sizeof(b));
        summary(&ui, "loaded %" PRIu64 " items (%s of values), skipped %" PRIu64
                " already expired", counts.items, b, counts.expired);
    }
    return rc;
}

/* ---- main ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(struct cmdline *);
    bool needs_home;
} COMMANDS[] = {
    {"backup", cmd_backup, true},
    {"restore", cmd_restore, true},
    {"dump", cmd_dump, true},
    {"load", cmd_load, true},
    {"verify", cmd_verify, false},
};

enum { OPT_REPLACE = 256, OPT_FORCE };

static const struct option LONG_OPTS[] = {
    {"home", required_argument, NULL, 'H'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"checkpoint", no_argument, NULL, 'c'},
    {"replace", no_argument, NULL, OPT_REPLACE},
    {"force", no_argument, NULL, OPT_FORCE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Parses options anywhere on the command line (GNU getopt permutes); the first operand is
 * the command, the rest its arguments. */
int main(int argc, char **argv)
{
    struct cmdline cl;
    int c;

    memset(&cl, 0, sizeof(cl));
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":H:qvchV", LONG_OPTS, NULL)) != -1) {
        switch (c) {
        case 'H':
            cl.home = optarg;
            break;
        case 'q':
            cl.quiet = true;
            break;
        case 'v':
            cl.verbose = true;
            break;
        case 'c':
            cl.checkpoint = true;
            break;
        case OPT_REPLACE:
            cl.replace = true;
            break;
        case OPT_FORCE:
            cl.force = true;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            printf("mcstore-admin %s (dump format %d)\n", PACKAGE_VERSION, ADMIN_DUMP_VERSION);
            return EXIT_OK;
        case ':':
            fprintf(stderr, "%s: option %s needs a value (try -h)\n", progname,
                    argv[optind - 1]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "%s: unknown option %s (try -h)\n", progname, argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++) {
        if (strcmp(name, COMMANDS[i].name) != 0) {
            continue;
        }
        if (COMMANDS[i].needs_home && (cl.home == NULL || cl.home[0] == '\0')) {
            fprintf(stderr, "%s: %s needs the data home: -H HOME (try -h)\n", progname, name);
            return EXIT_USAGE;
        }
        if (cl.checkpoint && COMMANDS[i].fn != cmd_backup) {
            fprintf(stderr, "%s: -c only applies to backup\n", progname);
            return EXIT_USAGE;
        }
        if (cl.replace && COMMANDS[i].fn != cmd_backup) {
            fprintf(stderr, "%s: --replace only applies to backup\n", progname);
            return EXIT_USAGE;
        }
        if (cl.force && COMMANDS[i].fn != cmd_restore) {
            fprintf(stderr, "%s: --force only applies to restore\n", progname);
            return EXIT_USAGE;
        }
        cl.nargs = argc - optind - 1;
        cl.args = argv + optind + 1;
        /* a write error must be an error, not a silent death; ^C must not leave Berkeley DB
         * locks behind in a server's environment we joined */
        signal(SIGPIPE, SIG_IGN);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        return COMMANDS[i].fn(&cl);
    }
    fprintf(stderr, "%s: unknown command '%s' (try -h)\n", progname, name);
    return EXIT_USAGE;
}
