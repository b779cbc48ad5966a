/* TLS behind a connection's read/write functions; all OpenSSL code of the daemon lives here. */
#include "config.h"

#include "daemon/tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/worker.h"

/* The largest TLS record payload: writing this much at a time fills whole records. */
#define TLS_RECORD_MAX 16384

struct tls_server {
    /* the files, kept to read them again on reload */
    const char *cert;
    const char *key;
    const char *ca;
    enum options_tls_verify verify;
    int handshake_timeout;

    pthread_mutex_t lock;       /* guards ctx and cert_loaded (reload swaps them) */
    SSL_CTX *ctx;
    time_t cert_loaded;

    _Atomic uint64_t handshakes;
    _Atomic uint64_t handshake_errors;
    _Atomic uint64_t handshake_timeouts;
};

/* One connection's TLS session. */
struct tls_conn {
    struct tls_server *t;
    SSL *ssl;
    struct event *deadline;     /* closes the connection if the handshake is not done in time;
                                   NULL once it is */
    bool failed;                /* a fatal error: OpenSSL forbids sending close_notify now */
    bool timed_out;
};

static ssize_t tls_read(struct conn *c, void *buf, size_t n);
static int tls_write(struct conn *c, struct evbuffer *out);
static void tls_close(struct conn *c);

static const struct conn_io tls_io = {tls_read, tls_write, tls_close, "tls"};

/* The oldest error OpenSSL queued on this thread, as text; clears the queue. */
static const char *ssl_error_text(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, len, "%s", "no OpenSSL error");
    } else {
        ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* A private key with a passphrase would make OpenSSL prompt on the terminal: refuse instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

/* Builds a context from t's files. Returns NULL after logging which file is wrong and why. */
static SSL_CTX *tls_ctx_load(const struct tls_server *t)
{
    char err[256];
    const char *key = t->key != NULL ? t->key : t->cert;

    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        log_error("TLS: cannot create a context: %s", ssl_error_text(err, sizeof(err)));
        return NULL;
    }
    /* TLS 1.0 and 1.1 are deprecated (RFC 8996); memcached's default minimum is 1.2 too */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        log_error("TLS: cannot require TLS 1.2: %s", ssl_error_text(err, sizeof(err)));
        goto fail;
    }
    /* renegotiation would let a read need a write mid-session and costs server CPU on demand */
    long opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE;
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* memcached clients just close: an EOF without close_notify is an ordinary close */
    opts |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
    SSL_CTX_set_options(ctx, opts);
    /* partial writes and a moving buffer: a write retried after WANT_WRITE comes from an
     * evbuffer that may have been pulled up anew; release buffers: idle sessions stay small */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        log_error("TLS: cannot load the certificate chain %s (--tls-cert): %s", t->cert,
                  ssl_error_text(err, sizeof(err)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        log_error("TLS: cannot load the private key %s (--tls-key: PEM, no passphrase, the "
                  "key of --tls-cert): %s", key, ssl_error_text(err, sizeof(err)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        log_error("TLS: the key %s does not match the certificate %s: %s", key, t->cert,
                  ssl_error_text(err, sizeof(err)));
        goto fail;
    }
    if (t->ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
            log_error("TLS: cannot load the CA file %s (--tls-ca): %s", t->ca,
                      ssl_error_text(err, sizeof(err)));
            goto fail;
        }
        /* tells clients which CA their certificate must come from */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->ca);
        if (names == NULL) {
            log_error("TLS: no CA certificate in %s (--tls-ca): %s", t->ca,
                      ssl_error_text(err, sizeof(err)));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
    }
    int mode = SSL_VERIFY_NONE;
    if (t->verify == OPT_TLS_VERIFY_OPTIONAL) {
        mode = SSL_VERIFY_PEER;
    } else if (t->verify == OPT_TLS_VERIFY_REQUIRED) {
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    /* without a session id context, resuming a session that was verified fails the handshake */
    static const unsigned char sid_ctx[] = "mcstore";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

struct tls_server *tls_server_new(const struct settings *s)
{
    struct tls_server *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        log_error("TLS: out of memory");
        return NULL;
    }
    t->cert = s->tls_cert;
    t->key = s->tls_key;
    t->ca = s->tls_ca;
    t->verify = s->tls_verify;
    t->handshake_timeout = s->tls_handshake_timeout;
    pthread_mutex_init(&t->lock, NULL);
    t->ctx = tls_ctx_load(t);
    if (t->ctx == NULL) {
        tls_server_free(t);
        return NULL;
    }
    t->cert_loaded = time(NULL);
    log_info("TLS: certificate %s loaded, client certificates %s", t->cert,
             options_tls_verify_name(t->verify));
    return t;
}

void tls_server_free(struct tls_server *t)
{
    if (t == NULL) {
        return;
    }
    SSL_CTX_free(t->ctx);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int tls_server_reload(struct tls_server *t)
{
    SSL_CTX *ctx = tls_ctx_load(t);
    if (ctx == NULL) {
        log_error("TLS: certificates not reloaded; the previous ones stay in use");
        return -1;
    }
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old = t->ctx;
    t->ctx = ctx;
    t->cert_loaded = time(NULL);
    pthread_mutex_unlock(&t->lock);
    /* sessions hold their own reference: the old context lives until its last one closes */
    SSL_CTX_free(old);
    log_warn("TLS: certificate %s reloaded", t->cert);
    return 0;
}

void tls_server_stats(struct tls_server *t, struct tls_stats *out)
{
    out->handshakes = atomic_load_explicit(&t->handshakes, memory_order_relaxed);
    out->handshake_errors = atomic_load_explicit(&t->handshake_errors, memory_order_relaxed);
    out->handshake_timeouts = atomic_load_explicit(&t->handshake_timeouts, memory_order_relaxed);
    pthread_mutex_lock(&t->lock);
    out->cert_loaded = t->cert_loaded;
    pthread_mutex_unlock(&t->lock);
}

static void on_handshake_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct tls_conn *tc = c->io_state;
    (void)fd;
    (void)what;
    tc->timed_out = true;
    log_info("closing TLS connection from %s: no handshake within %d s", c->peer,
             tc->t->handshake_timeout);
    conn_close(c);
}

int tls_conn_attach(struct tls_server *t, struct conn *c)
{
    struct tls_conn *tc = calloc(1, sizeof(*tc));
    if (tc == NULL) {
        goto fail;
    }
    tc->t = t;
    pthread_mutex_lock(&t->lock);
    tc->ssl = SSL_new(t->ctx);
    pthread_mutex_unlock(&t->lock);
    tc->deadline = evtimer_new(c->w->base, on_handshake_timeout, c);
    if (tc->ssl == NULL || tc->deadline == NULL || SSL_set_fd(tc->ssl, c->fd) != 1) {
        goto fail;
    }
    SSL_set_accept_state(tc->ssl);
    struct timeval tv = {t->handshake_timeout, 0};
    if (evtimer_add(tc->deadline, &tv) != 0) {
        goto fail;
    }
    pthread_mutex_lock(&c->w->lock); /* "stats conns" reads c->io under it */
    c->io = &tls_io;
    c->io_state = tc;
    pthread_mutex_unlock(&c->w->lock);
    return 0;

fail:
    log_error("TLS: out of memory setting up a connection from %s", c->peer);
    if (tc != NULL) {
        if (tc->deadline != NULL) {
            event_free(tc->deadline);
        }
        SSL_free(tc->ssl);
        free(tc);
    }
    ERR_clear_error();
    return -1;
}

/* The handshake finished: the connection is now bounded by the idle timeout alone. */
static void handshake_done(struct conn *c, struct tls_conn *tc)
{
    event_free(tc->deadline);
    tc->deadline = NULL;
    atomic_fetch_add_explicit(&tc->t->handshakes, 1, memory_order_relaxed);
    log_debug("TLS handshake with %s done: %s %s", c->peer, SSL_get_version(tc->ssl),
              SSL_get_cipher_name(tc->ssl));
}

/*
 * Reading drives the handshake too: SSL_read on a session in accept state runs it first.
 * OpenSSL's wants map to EAGAIN; the connection's read event already waits for readability,
 * and a read that must first write (the server's handshake flight meeting a full socket) asks
 * the connection to retry it once the socket is writable.
 */
static ssize_t tls_read(struct conn *c, void *buf, size_t n)
{
    struct tls_conn *tc = c->io_state;
    char err[256];

    ERR_clear_error();
    int r = SSL_read(tc->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    if (tc->deadline != NULL && SSL_is_init_finished(tc->ssl)) {
        handshake_done(c, tc);
    }
    if (r > 0) {
        /* a record is decrypted whole, but we may have taken only part of it: the rest is in
         * OpenSSL, where the socket's readiness will not announce it */
        if (SSL_pending(tc->ssl) > 0) {
            event_active(c->rev, EV_READ, 0);
        }
        return r;
    }
    switch (SSL_get_error(tc->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        conn_read_wants_write(c);
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify (or a bare EOF, see SSL_OP_IGNORE_UNEXPECTED_EOF) */
    case SSL_ERROR_SYSCALL:
        tc->failed = true;
        ERR_clear_error();
        if (r == 0 || errno == 0) {
            return 0;
        }
        return -1; /* errno says why (ECONNRESET ...) */
    default:
        tc->failed = true;
        log_info("closing TLS connection from %s: %s: %s", c->peer,
                 SSL_is_init_finished(tc->ssl) ? "TLS error" : "handshake failed",
                 ssl_error_text(err, sizeof(err)));
        errno = EPROTO;
        return -1;
    }
}

/*
 * Encrypts up to one record from the front of out. A retry after WANT_WRITE passes the same
 * bytes again (nothing was drained, and out only grows at the end), possibly more of them and
 * from a new address, which the two SSL modes set in tls_ctx_load allow.
 */
static int tls_write(struct conn *c, struct evbuffer *out)
{
    struct tls_conn *tc = c->io_state;
    char err[256];
    size_t len = evbuffer_get_length(out);
    if (len > TLS_RECORD_MAX) {
        len = TLS_RECORD_MAX;
    }
    /* whole records: small reply pieces are joined rather than sent one record each */
    unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)len);
    if (p == NULL) {
        errno = ENOMEM;
        return -1;
    }
    ERR_clear_error();
    int r = SSL_write(tc->ssl, p, (int)len);
    if (r > 0) {
        evbuffer_drain(out, (size_t)r);
        return r;
    }
    switch (SSL_get_error(tc->ssl, r)) {
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_READ:
        /* only a renegotiation (disabled) or an unfinished handshake (replies come after
         * requests, which come after it) makes a write wait for a read: waiting for
         * writability would spin, so this is treated as the error it is */
        tc->failed = true;
        log_warn("closing TLS connection from %s: a write needed a read", c->peer);
        errno = EPROTO;
        return -1;
    case SSL_ERROR_SYSCALL:
        tc->failed = true;
        ERR_clear_error();
        if (errno == 0) {
            errno = EPIPE;
        }
        return -1;
    default:
        tc->failed = true;
        log_info("closing TLS connection from %s: TLS error: %s", c->peer,
                 ssl_error_text(err, sizeof(err)));
        errno = EPROTO;
        return -1;
    }
}

/* Sends close_notify when that is allowed and fits in the socket (no waiting), frees it all. */
static void tls_close(struct conn *c)
{
    struct tls_conn *tc = c->io_state;
    struct tls_server *t = tc->t;

    if (tc->deadline != NULL) {
        event_free(tc->deadline);
        /* a port probe that connects and closes without a byte is not a failed handshake */
        if (tc->timed_out || BIO_number_read(SSL_get_rbio(tc->ssl)) > 0) {
            atomic_fetch_add_explicit(&t->handshake_errors, 1, memory_order_relaxed);
        }
        if (tc->timed_out) {
            atomic_fetch_add_explicit(&t->handshake_timeouts, 1, memory_order_relaxed);
        }
    } else if (!tc->failed) {
        ERR_clear_error();
        SSL_shutdown(tc->ssl);
    }
    SSL_free(tc->ssl);
    ERR_clear_error();
    free(tc);
    c->io_state = NULL;
}
