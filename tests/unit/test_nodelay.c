/* Unit tests of nodelay_all_tcp: Nagle goes off on TCP sockets the process did not tune. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/nodelay.h"

static int nodelay_of(int fd)
{
    int on = -1;
    socklen_t len = sizeof(on);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    return on;
}

/* A connected loopback pair, as repmgr's connect() and accept() leave them: Nagle on. */
static void tcp_pair(int *listener, int *client, int *server)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*listener >= 0);
    assert_int_equal(bind(*listener, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(*listener, 1), 0);
    assert_int_equal(getsockname(*listener, (struct sockaddr *)&a, &len), 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*client >= 0);
    assert_int_equal(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
    *server = accept(*listener, NULL, NULL);
    assert_true(*server >= 0);
}

static void test_turns_nagle_off_on_both_ends(void **state)
{
    (void)state;
    int l, c, s;
    tcp_pair(&l, &c, &s);
    assert_int_equal(nodelay_of(c), 0);
    assert_int_equal(nodelay_of(s), 0);
    /* the listener counts too (harmless): at least the two ends changed */
    assert_true(nodelay_all_tcp() >= 2);
    assert_int_not_equal(nodelay_of(c), 0);
    assert_int_not_equal(nodelay_of(s), 0);
    /* a second pass finds nothing left to change */
    assert_int_equal(nodelay_all_tcp(), 0);
    close(c);
    close(s);
    close(l);
}

static void test_leaves_other_sockets_alone(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(u >= 0);
    assert_int_equal(nodelay_all_tcp(), 0);
    close(sv[0]);
    close(sv[1]);
    close(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turns_nagle_off_on_both_ends),
        cmocka_unit_test(test_leaves_other_sockets_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
