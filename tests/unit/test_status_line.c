/* The HTTP/1.1 status line (casgi__http1_status_line in src/http1.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http1.h"

static void assert_status_line(int status, const char *expected)
{
    char out[64 + 8];
    memset(out, '#', sizeof(out));
    size_t n = casgi__http1_status_line(status, out);
    assert_true(n <= 64);
    assert_int_equal(n, strlen(expected));
    assert_memory_equal(out, expected, n);
    assert_int_equal(out[n], '#'); /* nothing written past the returned length */
}

static void test_status_line_200_is_ok(void **state)
{
    assert_status_line(200, "HTTP/1.1 200 OK\r\n");
}

static void test_status_line_404_is_not_found(void **state)
{
    assert_status_line(404, "HTTP/1.1 404 Not Found\r\n");
}

static void test_status_line_431_has_the_long_reason(void **state)
{
    assert_status_line(431, "HTTP/1.1 431 Request Header Fields Too Large\r\n");
}

static void test_status_line_common_codes_have_their_reasons(void **state)
{
    assert_status_line(100, "HTTP/1.1 100 Continue\r\n");
    assert_status_line(204, "HTTP/1.1 204 No Content\r\n");
    assert_status_line(400, "HTTP/1.1 400 Bad Request\r\n");
    assert_status_line(413, "HTTP/1.1 413 Content Too Large\r\n");
    assert_status_line(414, "HTTP/1.1 414 URI Too Long\r\n");
    assert_status_line(500, "HTTP/1.1 500 Internal Server Error\r\n");
    assert_status_line(503, "HTTP/1.1 503 Service Unavailable\r\n");
}

static void test_status_line_unknown_code_has_an_empty_reason(void **state)
{
    /* RFC 9112: the reason-phrase may be empty, the space before it may not be left out */
    assert_status_line(299, "HTTP/1.1 299 \r\n");
    assert_status_line(999, "HTTP/1.1 999 \r\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_line_200_is_ok),
        cmocka_unit_test(test_status_line_404_is_not_found),
        cmocka_unit_test(test_status_line_431_has_the_long_reason),
        cmocka_unit_test(test_status_line_common_codes_have_their_reasons),
        cmocka_unit_test(test_status_line_unknown_code_has_an_empty_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
