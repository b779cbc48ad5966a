/* The password file of --auth-file: salted PBKDF2-SHA256 hashes, checked by every protocol. */
#ifndef MCSTORE_DAEMON_AUTH_H
#define MCSTORE_DAEMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/*
 * File format, one user per line:
 *
 *     user:pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>
 *
 * base64 is the standard alphabet with '=' padding; the salt is 8 to 64 bytes (16 from
 * auth_make_line), the hash is 32 bytes (PBKDF2-HMAC-SHA256's output for dkLen 32).
 * Lines whose first non-blank character is '#' and blank lines are ignored; trailing blanks
 * and a '\r' are ignored. A user name is 1 to AUTH_USER_MAX bytes without ':', spaces or
 * control characters; a user may appear once.
 */

#define AUTH_SCHEME "pbkdf2-sha256"
#define AUTH_USER_MAX 255
#define AUTH_PASS_MAX 1024                      /* longer passwords are never accepted */
/* Each check of a password that is not in the cache costs this many HMAC-SHA256 rounds on the
 * calling worker thread (about 22 ms on a 2020s x86 core). See doc/protocol.md for the
 * trade-off against OWASP's 600000. */
#define AUTH_DEFAULT_ITERATIONS 100000u
#define AUTH_MIN_ITERATIONS 1000u               /* NIST SP 800-132's floor */
#define AUTH_MAX_ITERATIONS 10000000u           /* bounds how long one check may stall */
#define AUTH_LINE_MAX 512                       /* a generated line is well below this */

struct auth_db;

/*
 * Loads FILE. Returns NULL on error with a message in err ("FILE:LINE: reason", or the
 * errno text when the file cannot be read). An empty file (no users) is valid: nobody can
 * authenticate. Thread rules: any thread; the result is used by many.
 */
struct auth_db *auth_load(const char *path, char *err, size_t nerr);

/*
 * Replaces db's users with those of FILE (SIGHUP). On error db keeps its users, the reason is
 * in err and -1 is returned; 0 on success. Checks running meanwhile finish against the old
 * users; the cache of verified passwords starts empty. Thread safe with auth_check.
 */
int auth_reload(struct auth_db *db, const char *path, char *err, size_t nerr);

/* Frees db. No auth_check may run on it any more (workers are stopped). NULL is allowed. */
void auth_free(struct auth_db *db);

/* Number of users loaded now. Thread safe. */
size_t auth_user_count(struct auth_db *db);

/*
 * true when user/pass match an entry. The hash is compared in constant time (CRYPTO_memcmp);
 * an unknown user costs the same PBKDF2 as a known one so timing does not tell them apart.
 * A password verified before is found in a small cache keyed by a keyed SHA-256 of salt and
 * password (never the password), so reconnecting clients do not pay PBKDF2 again.
 * user and pass need not be NUL-terminated. Thread safe: called from every worker at once.
 */
bool auth_check(struct auth_db *db, const char *user, size_t nuser, const char *pass,
                size_t npass);

/*
 * Formats "user:pbkdf2-sha256$iterations$salt$hash" (no newline) into out for user and pass
 * (NUL-terminated) with a fresh 16-byte salt from RAND_bytes. Returns 0, or -1 when the user
 * name is invalid, the password empty or over AUTH_PASS_MAX, iterations out of
 * [AUTH_MIN_ITERATIONS, AUTH_MAX_ITERATIONS], out too small (AUTH_LINE_MAX is enough) or
 * OpenSSL fails.
 */
int auth_make_line(const char *user, const char *pass, unsigned iterations, char *out,
                   size_t nout);

/* true when user[0..n) is a valid user name (see the file format above). */
bool auth_user_valid(const char *user, size_t n);

/*
 * Writes user[0..n) into out (NUL-terminated, truncated to fit) with every byte that is not
 * printable ASCII, and '\\' and '\'', as \xNN: a client-chosen name is safe to log.
 */
void auth_printable(char *out, size_t nout, const char *user, size_t n);

#endif
