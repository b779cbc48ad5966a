/* mcstore-admin: backup, restore, verify, dump and load of a data home; passwd for --auth-file. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "daemon/auth.h"
#include "storage/admin.h"

/* Where passwd writes without --file. */
#define DEFAULT_AUTH_FILE "/etc/mcstore/auth"

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
        "  passwd  [--file FILE] [--iterations N] USER\n"
        "        Add USER to the server's --auth-file FILE (default: %s), or\n"
        "        replace USER's password, keeping the other lines. The password is read\n"
        "        from standard input (one line; asked twice without echo on a terminal)\n"
        "        and stored as a salted PBKDF2-SHA256 hash with N iterations (default:\n"
        "        %u). FILE is replaced atomically with mode 0600. SIGHUP makes a\n"
        "        running server reload it.\n"
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
        progname, DEFAULT_AUTH_FILE, AUTH_DEFAULT_ITERATIONS);
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
    const char *auth_file;      /* passwd --file */
    unsigned iterations;        /* passwd --iterations (0: not given) */
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

/* ---- passwd ----------------------------------------------------------------------------- */

/* Reads one line of stdin into buf (without its "\n" or "\r\n"). On a terminal, prints the
 * prompt and turns echo off meanwhile. Returns 0, or -1 with errno (EINTR on ^C). */
static int read_secret_line(const char *prompt, bool tty, char *buf, size_t cap, size_t *len)
{
    struct termios old;
    bool restore = false;
    if (tty) {
        /* echo off before the prompt shows: what is typed after it is neither echoed nor
         * discarded by the flush */
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            struct termios quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
        fputs(prompt, stderr);
        fflush(stderr);
    }
    /* byte by byte: stdio would read ahead past the line into its buffer */
    size_t n = 0;
    int rc = 0;
    for (;;) {
        char ch;
        ssize_t got = read(STDIN_FILENO, &ch, 1);
        if (got < 0) {
            rc = -1;
            break;
        }
        if (got == 0 || ch == '\n') {
            if (got == 0 && n == 0) {
                errno = ENODATA;
                rc = -1;
            }
            break;
        }
        if (n + 1 >= cap) {
            errno = EMSGSIZE;
            rc = -1;
            break;
        }
        buf[n++] = ch;
    }
    int saved = errno;
    if (restore) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
    }
    if (tty) {
        fputc('\n', stderr);
    }
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    buf[n] = '\0';
    *len = n;
    errno = saved;
    return rc;
}

/* The password for passwd: asked twice on a terminal. Returns an exit code. */
static int get_password(const char *user, char *pass, size_t cap)
{
    bool tty = isatty(STDIN_FILENO);
    char prompt[AUTH_USER_MAX + 64];
    size_t n = 0;
    snprintf(prompt, sizeof(prompt), "Password for %s: ", user);
    if (read_secret_line(prompt, tty, pass, cap, &n) != 0) {
        if (errno == EINTR || interrupted_flag) {
            return EXIT_INTERRUPTED;
        }
        fprintf(stderr, "%s: passwd: %s\n", progname,
                errno == ENODATA   ? "no password on standard input"
                : errno == EMSGSIZE ? "the password is longer than 1024 bytes"
                                    : strerror(errno));
        return EXIT_FAILED;
    }
    if (n == 0 || memchr(pass, '\0', n) != NULL || n > AUTH_PASS_MAX) {
        fprintf(stderr, "%s: passwd: the password is empty, holds a NUL byte or is longer "
                "than %d bytes\n", progname, AUTH_PASS_MAX);
        return EXIT_FAILED;
    }
    if (tty) {
        char again[AUTH_PASS_MAX + 2];
        size_t m = 0;
        int rc = read_secret_line("Again: ", tty, again, sizeof(again), &m);
        bool same = rc == 0 && m == n && CRYPTO_memcmp(again, pass, n) == 0;
        OPENSSL_cleanse(again, sizeof(again));
        if (rc != 0 && (errno == EINTR || interrupted_flag)) {
            return EXIT_INTERRUPTED;
        }
        if (!same) {
            fprintf(stderr, "%s: passwd: the passwords differ; nothing changed\n", progname);
            return EXIT_FAILED;
        }
    }
    if (memchr(pass, ' ', n) != NULL) {
        fprintf(stderr, "%s: warning: the password holds a space: memcached's text-protocol "
                "authentication cannot send it (binary SASL can)\n", progname);
    }
    return EXIT_OK;
}

/* Appends data to a growing buffer. */
static bool buf_add(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = (*len + n) * 2 + 256;
        char *p = realloc(*buf, ncap);
        if (p == NULL) {
            return false;
        }
        *buf = p;
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    return true;
}

/* FILE's content with user's line replaced by (or else followed by) line. Returns an exit
 * code; *replaced says which. */
static int passwd_content(const char *path, const char *user, const char *line, char **out,
                          size_t *nout, bool *replaced)
{
    size_t ulen = strlen(user);
    size_t len = 0;
    size_t cap = 0;
    char *buf = NULL;
    char *l = NULL;
    size_t lcap = 0;
    ssize_t n;
    bool ok = true;

    *replaced = false;
    FILE *f = fopen(path, "r");
    if (f == NULL && errno != ENOENT) {
        fprintf(stderr, "%s: passwd: cannot read %s: %s\n", progname, path, strerror(errno));
        return EXIT_FAILED;
    }
    while (f != NULL && ok && (n = getline(&l, &lcap, f)) >= 0) {
        bool mine = (size_t)n > ulen && memcmp(l, user, ulen) == 0 && l[ulen] == ':';
        if (mine && *replaced) {
            continue; /* a duplicate (the server refuses those): keep one line per user */
        }
        if (mine) {
            *replaced = true;
            ok = buf_add(&buf, &len, &cap, line, strlen(line)) &&
                 buf_add(&buf, &len, &cap, "\n", 1);
            continue;
        }
        ok = buf_add(&buf, &len, &cap, l, (size_t)n);
    }
    if (f != NULL && ferror(f)) {
        fprintf(stderr, "%s: passwd: cannot read %s: %s\n", progname, path, strerror(errno));
        ok = false;
    } else if (ok && !*replaced) {
        if (len > 0 && buf[len - 1] != '\n') {
            ok = buf_add(&buf, &len, &cap, "\n", 1);
        }
        ok = ok && buf_add(&buf, &len, &cap, line, strlen(line)) &&
             buf_add(&buf, &len, &cap, "\n", 1);
    }
    if (f != NULL) {
        fclose(f);
    }
    if (l != NULL) {
        OPENSSL_cleanse(l, lcap);
    }
    free(l);
    if (!ok) {
        free(buf);
        return EXIT_FAILED;
    }
    *out = buf;
    *nout = len;
    return EXIT_OK;
}

/* Writes content to path through path.tmp-PID: fsync, rename, fsync of the directory, so a
 * crash leaves the old file or the new one, never a mix. Returns an exit code. */
static int replace_file(const char *path, int dirfd, const char *content, size_t n)
{
    char tmp[4200];
    struct stat old;
    bool have_old = stat(path, &old) == 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        fprintf(stderr, "%s: passwd: file name too long\n", progname);
        return EXIT_USAGE;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "%s: passwd: cannot create %s: %s\n", progname, tmp, strerror(errno));
        return EXIT_FAILED;
    }
    const char *what = NULL;
    /* keep the owner a server started with -u may need to reread it as (root only) */
    if (have_old && geteuid() == 0 && fchown(fd, old.st_uid, old.st_gid) != 0) {
        what = "chown";
    }
    if (what == NULL && fchmod(fd, 0600) != 0) {
        what = "chmod";
    }
    for (size_t off = 0; what == NULL && off < n;) {
        ssize_t w = write(fd, content + off, n - off);
        if (w < 0 && errno != EINTR) {
            what = "write";
        } else if (w > 0) {
            off += (size_t)w;
        }
    }
    if (what == NULL && fsync(fd) != 0) {
        what = "fsync";
    }
    if (close(fd) != 0 && what == NULL) {
        what = "close";
    }
    if (what == NULL) {
        char err[512];
        struct auth_db *check = auth_load(tmp, err, sizeof(err));
        if (check == NULL) {
            /* another line was already bad: our change cannot make it worse, so go on */
            fprintf(stderr, "%s: warning: the server will refuse this file: %s\n", progname,
                    err);
        }
        auth_free(check);
    }
    if (what == NULL && rename(tmp, path) != 0) {
        what = "rename";
    }
    if (what != NULL) {
        fprintf(stderr, "%s: passwd: cannot %s %s: %s\n", progname, what, tmp, strerror(errno));
        unlink(tmp);
        return EXIT_FAILED;
    }
    if (fsync(dirfd) != 0) {
        fprintf(stderr, "%s: passwd: cannot fsync the directory of %s: %s\n", progname, path,
                strerror(errno));
        return EXIT_FAILED;
    }
    return EXIT_OK;
}

static int cmd_passwd(struct cmdline *cl)
{
    const char *path = cl->auth_file != NULL ? cl->auth_file : DEFAULT_AUTH_FILE;
    unsigned iterations = cl->iterations != 0 ? cl->iterations : AUTH_DEFAULT_ITERATIONS;
    char pass[AUTH_PASS_MAX + 2];
    char line[AUTH_LINE_MAX];
    char dir[4096];
    char *content = NULL;
    size_t ncontent = 0;
    bool replaced = false;
    int dirfd = -1;

    if (cl->nargs != 1) {
        fprintf(stderr, "%s: passwd needs one USER (try -h)\n", progname);
        return EXIT_USAGE;
    }
    const char *user = cl->args[0];
    if (!auth_user_valid(user, strlen(user))) {
        fprintf(stderr, "%s: passwd: invalid user name (1 to %d bytes, no ':', spaces, control "
                "characters or leading '#')\n", progname, AUTH_USER_MAX);
        return EXIT_USAGE;
    }
    if (path[0] == '\0' || strlen(path) >= sizeof(dir)) {
        fprintf(stderr, "%s: passwd: bad --file\n", progname);
        return EXIT_USAGE;
    }
    /* lock the directory: concurrent passwd runs must not lose each other's change */
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        fprintf(stderr, "%s: passwd: cannot open directory %s: %s\n", progname, dir,
                strerror(errno));
        return EXIT_FAILED;
    }
    int rc = get_password(user, pass, sizeof(pass));
    if (rc == EXIT_OK && auth_make_line(user, pass, iterations, line, sizeof(line)) != 0) {
        fprintf(stderr, "%s: passwd: cannot hash the password (OpenSSL)\n", progname);
        rc = EXIT_FAILED;
    }
    OPENSSL_cleanse(pass, sizeof(pass));
    if (rc == EXIT_OK && flock(dirfd, LOCK_EX) != 0) {
        fprintf(stderr, "%s: passwd: cannot lock %s: %s\n", progname, dir, strerror(errno));
        rc = EXIT_FAILED;
    }
    if (rc == EXIT_OK) {
        rc = passwd_content(path, user, line, &content, &ncontent, &replaced);
    }
    if (rc == EXIT_OK) {
        rc = replace_file(path, dirfd, content, ncontent);
    }
    if (content != NULL) {
        OPENSSL_cleanse(content, ncontent);
    }
    free(content);
    close(dirfd);
    if (rc == EXIT_OK && !cl->quiet) {
        fprintf(stderr, "%s: %s user %s in %s (SIGHUP makes a running server reload it)\n",
                progname, replaced ? "updated" : "added", user, path);
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
    {"passwd", cmd_passwd, false},
};

enum { OPT_REPLACE = 256, OPT_FORCE, OPT_FILE, OPT_ITERATIONS };

static const struct option LONG_OPTS[] = {
    {"home", required_argument, NULL, 'H'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"checkpoint", no_argument, NULL, 'c'},
    {"replace", no_argument, NULL, OPT_REPLACE},
    {"force", no_argument, NULL, OPT_FORCE},
    {"file", required_argument, NULL, OPT_FILE},
    {"iterations", required_argument, NULL, OPT_ITERATIONS},
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
        case OPT_FILE:
            cl.auth_file = optarg;
            break;
        case OPT_ITERATIONS: {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' ||
                v < AUTH_MIN_ITERATIONS || v > AUTH_MAX_ITERATIONS) {
                fprintf(stderr, "%s: --iterations must be %u to %u\n", progname,
                        AUTH_MIN_ITERATIONS, AUTH_MAX_ITERATIONS);
                return EXIT_USAGE;
            }
            cl.iterations = (unsigned)v;
            break;
        }
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
        if ((cl.auth_file != NULL || cl.iterations != 0) && COMMANDS[i].fn != cmd_passwd) {
            fprintf(stderr, "%s: --file and --iterations only apply to passwd\n", progname);
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
