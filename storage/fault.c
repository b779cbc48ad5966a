/* The fault-injection counter behind BDB_CALL (active only in --enable-test-hooks builds). */
#include "config.h"

#include "storage/fault.h"

#include <db.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned fault_countdown;    /* calls left before the fault; 0 = disarmed */
static unsigned fault_remaining;    /* failing calls left once it fires */
static int fault_error;
static atomic_int fault_armed;      /* lets the common, disarmed case skip the lock */

bool store_fault_available(void)
{
#ifdef MCSTORE_TEST_HOOKS
    return true;
#else
    return false;
#endif
}

static int fault_code(enum store_fault f)
{
    switch (f) {
    case STORE_FAULT_DEADLOCK:
        return DB_LOCK_DEADLOCK;
    case STORE_FAULT_ENOSPC:
        return ENOSPC;
    case STORE_FAULT_EIO:
        return EIO;
    case STORE_FAULT_RUNRECOVERY:
        return DB_RUNRECOVERY;
    }
    return EIO;
}

void store_fault_arm(unsigned nth, enum store_fault f, unsigned count)
{
    pthread_mutex_lock(&fault_lock);
    fault_countdown = nth;
    fault_remaining = count == 0 ? 1 : count;
    fault_error = fault_code(f);
    atomic_store(&fault_armed, nth > 0 ? 1 : 0);
    pthread_mutex_unlock(&fault_lock);
}

bool store_fault_parse(const char *name, size_t len, enum store_fault *out)
{
    static const struct {
        const char *name;
        enum store_fault f;
    } names[] = {{"deadlock", STORE_FAULT_DEADLOCK},
                 {"enospc", STORE_FAULT_ENOSPC},
                 {"eio", STORE_FAULT_EIO},
                 {"runrecovery", STORE_FAULT_RUNRECOVERY}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0) {
            *out = names[i].f;
            return true;
        }
    }
    return false;
}

int store_fault_next(void)
{
    int err = 0;
    if (atomic_load_explicit(&fault_armed, memory_order_relaxed) == 0) {
        return 0;
    }
    pthread_mutex_lock(&fault_lock);
    if (fault_countdown > 0) {
        if (fault_countdown > 1) {
            fault_countdown--;
        } else {
            err = fault_error;
            if (--fault_remaining == 0) {
                fault_countdown = 0;
                atomic_store(&fault_armed, 0);
            }
        }
    }
    pthread_mutex_unlock(&fault_lock);
    return err;
}
