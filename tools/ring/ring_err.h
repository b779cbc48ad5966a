/* Error text for the ring's own files (parse.c has it; ring.c and twemproxy.c use it). */
#ifndef MCSTORE_TOOLS_RING_RING_ERR_H
#define MCSTORE_TOOLS_RING_RING_ERR_H

#include <stddef.h>

/* printf-style message into err[errlen]; nothing when err is NULL or errlen 0. */
void ring_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
