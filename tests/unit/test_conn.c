/* Address formatting for the scope (src/conn.c, casgi__format_addr). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "conn.h"

static void format_v4(uint32_t addr, uint16_t port, char *host, int *out_port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(addr);
    sin->sin_port = htons(port);
    casgi__format_addr(&ss, host, INET6_ADDRSTRLEN, out_port);
}

/* IPv4 is formatted by hand: every octet value in every position must read as inet_ntop has it. */
static void test_conn_ipv4_matches_inet_ntop(void **state)
{
    (void)state;
    char host[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN];
    for (unsigned pos = 0; pos < 4; pos++) {
        for (unsigned v = 0; v < 256; v++) {
            uint32_t addr = 0x0a000001u ^ (v << (8 * pos)) ^ (0x01u << (8 * pos));
            int port = -1;
            format_v4(addr, 8000, host, &port);
            struct in_addr in = {htonl(addr)};
            assert_non_null(inet_ntop(AF_INET, &in, want, sizeof(want)));
            assert_string_equal(host, want);
            assert_int_equal(port, 8000);
        }
    }
    int port;
    format_v4(0xffffffffu, 65535, host, &port);
    assert_string_equal(host, "255.255.255.255");
    assert_int_equal(port, 65535);
    format_v4(0, 0, host, &port);
    assert_string_equal(host, "0.0.0.0");
}

static void test_conn_ipv6_and_other_families(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    sin6->sin6_port = htons(443);
    char host[INET6_ADDRSTRLEN];
    int port;
    casgi__format_addr(&ss, host, sizeof(host), &port);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 443);
    ss.ss_family = AF_UNIX;
    casgi__format_addr(&ss, host, sizeof(host), &port);
    assert_string_equal(host, "");
    assert_int_equal(port, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conn_ipv4_matches_inet_ntop),
        cmocka_unit_test(test_conn_ipv6_and_other_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
