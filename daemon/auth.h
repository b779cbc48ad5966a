/* Password checks for authentication; the implementation comes with --auth-file (daemon/auth.c). */
#ifndef MCSTORE_DAEMON_AUTH_H
#define MCSTORE_DAEMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* The loaded password file (opaque). */
struct auth_db;

/*
 * true when user/pass match an entry of db. user and pass need not be NUL-terminated.
 * Thread safe: called from every worker at once.
 */
bool auth_check(struct auth_db *db, const char *user, size_t nuser, const char *pass,
                size_t npass);

#endif
