/* TCP_NODELAY on TCP sockets this process holds but did not open itself. */
#ifndef MCSTORE_DAEMON_NODELAY_H
#define MCSTORE_DAEMON_NODELAY_H

/*
 * Sets TCP_NODELAY on every connected TCP socket of this process that lacks it, found through
 * /proc/self/fd. Meant for the Replication Manager's connections, which Berkeley DB 5.3 opens
 * with Nagle's algorithm on; our own client sockets already have it, and turning it on for any
 * other TCP socket is harmless. Any thread; a descriptor closed or reused while we look is
 * skipped or, if reused by a TCP socket, gets the same harmless option. Returns how many
 * sockets it changed.
 */
int nodelay_all_tcp(void);

#endif
