/* Fault injection for tests (built with --enable-test-hooks only): the Nth Berkeley DB call
 * from now fails with a chosen error, as SQLite's test harness does. */
#ifndef MCSTORE_STORAGE_FAULT_H
#define MCSTORE_STORAGE_FAULT_H

#include <stdbool.h>
#include <stddef.h>

/* The errors a test can inject, by name. */
enum store_fault {
    STORE_FAULT_DEADLOCK,       /* DB_LOCK_DEADLOCK */
    STORE_FAULT_ENOSPC,         /* disk full */
    STORE_FAULT_EIO,            /* I/O error */
    STORE_FAULT_RUNRECOVERY,    /* DB_RUNRECOVERY: the environment needs recovery */
};

/* True when this build has the hooks. */
bool store_fault_available(void);

/* Arms a fault: the nth (1 = next) wrapped Berkeley DB call fails with f, and so do the
 * count - 1 calls after it. nth == 0 disarms. Thread safe. */
void store_fault_arm(unsigned nth, enum store_fault f, unsigned count);

/* Parses "deadlock", "enospc", "eio" or "runrecovery". */
bool store_fault_parse(const char *name, size_t len, enum store_fault *out);

/* Internal to storage/: 0, or the error the next wrapped call must return instead of running. */
int store_fault_next(void);

#ifdef MCSTORE_TEST_HOOKS
#define BDB_CALL(call) (store_fault_next() ?: (call))
#else
#define BDB_CALL(call) (call)
#endif

#endif
