/* Name resolution and a non-blocking connect bounded by a deadline. */
#include "tools/bench/net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int bench_net_resolve(const char *host, uint16_t port, struct bench_addr *out, char *err,
                      size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char sport[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(sport, sizeof(sport), "%u", (unsigned)port);
    rc = getaddrinfo(host, sport, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "%s", rc != 0 ? gai_strerror(rc) : "no address");
        return -1;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int bench_net_connect(const struct bench_addr *addr, int timeout_ms, char *err, size_t errlen)
{
    int fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
        if (errno != EINPROGRESS) {
            snprintf(err, errlen, "%s", strerror(errno));
            goto fail;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int rc;
        do {
            rc = poll(&p, 1, timeout_ms);
        } while (rc < 0 && errno == EINTR);
        if (rc == 0) {
            snprintf(err, errlen, "connect timed out after %d ms", timeout_ms);
            goto fail;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            snprintf(err, errlen, "%s", strerror(soerr ? soerr : errno));
            goto fail;
        }
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        snprintf(err, errlen, "TCP_NODELAY: %s", strerror(errno));
        goto fail;
    }
    return fd;

fail:
    close(fd);
    return -1;
}
