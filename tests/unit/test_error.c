/* Error names and messages (src/error.c) and the version functions (src/version.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "internal.h"

typedef struct code_s {
    int value;
    const char *name;
} code_t;

static const code_t codes[] = {
#define XX(name, value, message) {CASGI_E##name, "CASGI_E" #name},
    CASGI_ERRNO_MAP(XX)
#undef XX
};

static void test_error_every_code_has_its_own_name(void **state)
{
    assert_true(ARRAY_SIZE(codes) > 0);
    for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
        const char *name = casgi_err_name(codes[i].value);
        assert_non_null(name);
        assert_string_equal(name, codes[i].name);
        assert_int_equal(strncmp(name, "CASGI_E", 7), 0);
        assert_true(strlen(name) > 7);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(name, casgi_err_name(codes[j].value));
    }
}

static void test_error_every_code_has_a_message(void **state)
{
    for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
        const char *msg = casgi_strerror(codes[i].value);
        assert_non_null(msg);
        assert_true(strlen(msg) > 0);
        assert_string_not_equal(msg, "unknown error");
        assert_string_not_equal(msg, "success");
    }
}

static void test_error_codes_are_distinct_and_in_our_band(void **state)
{
    for (size_t i = 0; i < ARRAY_SIZE(codes); i++) {
        assert_in_range(codes[i].value, -1999, -1000);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(codes[i].value, codes[j].value);
    }
}

static void test_error_zero_is_success(void **state)
{
    assert_string_equal(casgi_strerror(0), "success");
    assert_non_null(casgi_err_name(0));
    assert_true(strlen(casgi_err_name(0)) > 0);
}

static void test_error_libuv_errno_codes_pass_through(void **state)
{
    static const int uv_codes[] = {UV_ECONNRESET, UV_EINVAL, UV_EADDRINUSE, UV_ENOMEM,
                                   UV_EPIPE,      UV_EAGAIN, UV_ECANCELED,  UV_ETIMEDOUT};
    for (size_t i = 0; i < ARRAY_SIZE(uv_codes); i++) {
        assert_string_equal(casgi_strerror(uv_codes[i]), uv_strerror(uv_codes[i]));
        assert_string_equal(casgi_err_name(uv_codes[i]), uv_err_name(uv_codes[i]));
    }
    assert_string_equal(casgi_err_name(UV_ECONNRESET), "ECONNRESET");
}

/* libuv's own codes outside the errno range: UV_EOF is -4095, UV_EAI_* are -3000 and below. */
static void test_error_libuv_eof_passes_through(void **state)
{
    assert_string_equal(casgi_err_name(UV_EOF), "EOF");
    assert_string_equal(casgi_strerror(UV_EOF), uv_strerror(UV_EOF));
}

static void test_error_libuv_getaddrinfo_codes_pass_through(void **state)
{
    assert_string_equal(casgi_err_name(UV_EAI_NONAME), "EAI_NONAME");
    assert_string_equal(casgi_strerror(UV_EAI_NONAME), uv_strerror(UV_EAI_NONAME));
    assert_string_equal(casgi_err_name(UV_ECHARSET), "ECHARSET");
}

static void test_error_unknown_codes_still_get_a_string(void **state)
{
    static const int unknown[] = {1, 42, -1500, -1999, -2000};
    for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
        assert_non_null(casgi_strerror(unknown[i]));
        assert_non_null(casgi_err_name(unknown[i]));
        assert_true(strlen(casgi_strerror(unknown[i])) > 0);
    }
}

static void test_version_string_matches_the_header_macros(void **state)
{
    char expected[32];
    snprintf(expected, sizeof(expected), "%d.%d.%d", CASGI_VERSION_MAJOR, CASGI_VERSION_MINOR,
             CASGI_VERSION_PATCH);
    assert_string_equal(casgi_version_string(), expected);
    assert_int_equal(casgi_version(), CASGI_VERSION_HEX);
    assert_int_equal(casgi_version() >> 16, CASGI_VERSION_MAJOR);
    assert_int_equal((casgi_version() >> 8) & 0xff, CASGI_VERSION_MINOR);
    assert_int_equal(casgi_version() & 0xff, CASGI_VERSION_PATCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_every_code_has_its_own_name),
        cmocka_unit_test(test_error_every_code_has_a_message),
        cmocka_unit_test(test_error_codes_are_distinct_and_in_our_band),
        cmocka_unit_test(test_error_zero_is_success),
        cmocka_unit_test(test_error_libuv_errno_codes_pass_through),
        cmocka_unit_test(test_error_libuv_eof_passes_through),
        cmocka_unit_test(test_error_libuv_getaddrinfo_codes_pass_through),
        cmocka_unit_test(test_error_unknown_codes_still_get_a_string),
        cmocka_unit_test(test_version_string_matches_the_header_macros),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
