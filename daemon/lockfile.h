/* The data home's lock: one server per Berkeley DB environment. */
#ifndef MCSTORE_DAEMON_LOCKFILE_H
#define MCSTORE_DAEMON_LOCKFILE_H

/*
 * Creates home if needed and takes an exclusive lock on home/mcstore.lock, writing our pid
 * into it. Returns the lock's file descriptor (keep it open for the process's life), or -1
 * after logging why: another server holds it, or the file cannot be created.
 */
int lockfile_acquire(const char *home);

#endif
