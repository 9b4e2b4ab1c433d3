/* A TCP port on the loopback interface that nobody listens on at the moment (for a tcp:// endpoint in a test).
 * Include once per test program (the helper is static). */
#ifndef PLEXUS_TEST_FREE_PORT_H
#define PLEXUS_TEST_FREE_PORT_H

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static inline unsigned test_free_tcp_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof(a);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &l), 0);
    close(s);
    return ntohs(a.sin_port);
}

#endif
