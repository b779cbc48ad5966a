/* Turns Nagle's algorithm off on TCP sockets opened by libraries (Berkeley DB's repmgr). */
#include "daemon/nodelay.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

int nodelay_all_tcp(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) {
        return 0;
    }
    int changed = 0;
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd < 0 || fd == self) {
            continue;
        }
        struct stat sb;
        if (fstat((int)fd, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
            continue;
        }
        int type = 0;
        socklen_t len = sizeof(type);
        if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
            continue;
        }
        struct sockaddr_storage ss;
        len = sizeof(ss);
        if (getsockname((int)fd, (struct sockaddr *)&ss, &len) != 0 ||
            (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
            continue;   /* unix sockets have no Nagle */
        }
        int on = 0;
        len = sizeof(on);
        if (getsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0 || on) {
            continue;
        }
        on = 1;
        if (setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0) {
            changed++;
        }
    }
    closedir(d);
    return changed;
}
