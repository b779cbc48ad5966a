/* Sockets for the load generator: name resolution and connect with a deadline. */
#ifndef MCSTORE_TOOLS_BENCH_NET_H
#define MCSTORE_TOOLS_BENCH_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct bench_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Resolves host and port (the first TCP address). Returns 0, or -1 with err filled in. */
int bench_net_resolve(const char *host, uint16_t port, struct bench_addr *out, char *err,
                      size_t errlen);

/*
 * Connects to addr within timeout_ms. Returns a non-blocking socket with TCP_NODELAY set,
 * or -1 with err filled in ("Connection refused", "timed out", ...).
 */
int bench_net_connect(const struct bench_addr *addr, int timeout_ms, char *err, size_t errlen);

#endif
