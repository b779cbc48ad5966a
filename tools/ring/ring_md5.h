/* MD5 for the ring's own files (hash.c computes it, ring.c takes the continuum's points). */
#ifndef MCSTORE_TOOLS_RING_RING_MD5_H
#define MCSTORE_TOOLS_RING_RING_MD5_H

#include <stddef.h>

/* MD5 of n bytes into out (OpenSSL EVP). Returns 0, or -1 when MD5 is unavailable.
 * Thread-safe. */
int ring_md5(const void *data, size_t n, unsigned char out[16]);

#endif
