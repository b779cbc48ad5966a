/* One server per data home: Berkeley DB recovery with a second process attached corrupts it. */
#include "config.h"

#include "daemon/lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"

int lockfile_acquire(const char *home)
{
    char path[4096];

    if (mkdir(home, 0750) != 0 && errno != EEXIST) {
        log_error("cannot create data home %s: %s", home, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof(path), "%s/mcstore.lock", home);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_error("cannot open lock file %s: %s", path, strerror(errno));
        return -1;
    }
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        struct flock who;
        memset(&who, 0, sizeof(who));
        who.l_type = F_WRLCK;
        who.l_whence = SEEK_SET;
        if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK) {
            log_error("data home %s is in use by another mcstore (pid %ld); refusing to start",
                      home, (long)who.l_pid);
        } else {
            log_error("data home %s is in use by another mcstore; refusing to start", home);
        }
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        log_warn("cannot write pid into %s: %s", path, strerror(errno));
    }
    return fd;
}
