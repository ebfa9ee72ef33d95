/* Request-target splitting and percent-decoding (src/scope.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "scope.h"

/* Compares a byte string with a NUL-terminated expectation, printing both on failure. */
#define assert_bytes_equal(b, s)                                                                   \
    do {                                                                                           \
        casgi_bytes_t b_ = (b);                                                                    \
        const char *s_ = (s);                                                                      \
        char got_[256];                                                                            \
        snprintf(got_, sizeof(got_), "%.*s", (int)b_.len, b_.base ? b_.base : "");                 \
        assert_string_equal(got_, s_);                                                             \
        assert_int_equal(b_.len, strlen(s_));                                                      \
    } while (0)

typedef struct split_s {
    casgi_bytes_t path, query;
} split_t;

static split_t split(const char *target)
{
    split_t r;
    /* poison: every output must be written */
    r.path = (casgi_bytes_t){"poison", 6};
    r.query = (casgi_bytes_t){"poison", 6};
    casgi__scope_split_target(CASGI_STR(target), &r.path, &r.query);
    return r;
}

static void test_scope_split_origin_form_without_query(void **state)
{
    split_t r = split("/a/b%20c");
    assert_bytes_equal(r.path, "/a/b%20c");
    assert_bytes_equal(r.query, "");
    r = split("/");
    assert_bytes_equal(r.path, "/");
    assert_bytes_equal(r.query, "");
}

static void test_scope_split_origin_form_with_query(void **state)
{
    split_t r = split("/search?q=1&r=a%20b");
    assert_bytes_equal(r.path, "/search");
    assert_bytes_equal(r.query, "q=1&r=a%20b");
}

static void test_scope_split_query_keeps_later_question_marks(void **state)
{
    split_t r = split("/p?a=?b");
    assert_bytes_equal(r.path, "/p");
    assert_bytes_equal(r.query, "a=?b");
}

static void test_scope_split_bare_question_mark_gives_empty_query(void **state)
{
    split_t r = split("/p?");
    assert_bytes_equal(r.path, "/p");
    assert_bytes_equal(r.query, "");
    r = split("/?");
    assert_bytes_equal(r.path, "/");
    assert_bytes_equal(r.query, "");
}

static void test_scope_split_absolute_form_yields_its_path_and_query(void **state)
{
    split_t r = split("http://h/p?q");
    assert_bytes_equal(r.path, "/p");
    assert_bytes_equal(r.query, "q");
    r = split("http://example.com:8080/a/b");
    assert_bytes_equal(r.path, "/a/b");
    assert_bytes_equal(r.query, "");
}

static void test_scope_split_absolute_form_without_path_is_root(void **state)
{
    split_t r = split("http://h");
    assert_bytes_equal(r.path, "/");
    assert_bytes_equal(r.query, "");
}

static void test_scope_split_absolute_form_with_query_but_no_path_is_root(void **state)
{
    split_t r = split("http://h?q");
    assert_bytes_equal(r.path, "/");
    assert_bytes_equal(r.query, "q");
    /* a '/' inside the query is not the path */
    r = split("http://h?next=/x");
    assert_bytes_equal(r.path, "/");
    assert_bytes_equal(r.query, "next=/x");
}

static void test_scope_split_asterisk_form_is_kept_as_path(void **state)
{
    split_t r = split("*");
    assert_bytes_equal(r.path, "*");
    assert_bytes_equal(r.query, "");
}

static void test_scope_split_authority_form_has_empty_path(void **state)
{
    split_t r = split("example.com:443");
    assert_bytes_equal(r.path, "");
    assert_bytes_equal(r.query, "");
}

static void test_scope_split_empty_target_gives_empty_path(void **state)
{
    split_t r = split("");
    assert_bytes_equal(r.path, "");
    assert_bytes_equal(r.query, "");
}

/*
 * Decodes a heap copy of exactly strlen(src) bytes (no NUL after it, so AddressSanitizer catches
 * any read past the end) into a buffer of exactly that size (the documented room).
 */
static char *decode(const char *src)
{
    static char out[256];
    size_t len = strlen(src);
    char *in = malloc(len ? len : 1);
    char *dst = malloc(len ? len : 1);
    assert_non_null(in);
    assert_non_null(dst);
    memcpy(in, src, len);
    size_t n = casgi__scope_percent_decode((casgi_bytes_t){in, len}, dst);
    assert_true(n <= len);
    memcpy(out, dst, n);
    out[n] = '\0';
    free(in);
    free(dst);
    return out;
}

static void test_scope_percent_decode_decodes_escapes(void **state)
{
    assert_string_equal(decode("%2F"), "/");
    assert_string_equal(decode("/a%20b/c"), "/a b/c");
    assert_string_equal(decode("%41%42%43"), "ABC");
    assert_string_equal(decode("x%2f"), "x/");
}

static void test_scope_percent_decode_accepts_mixed_case_hex(void **state)
{
    assert_string_equal(decode("%c3%A9"), "\xc3\xa9");
    assert_string_equal(decode("%aB%Cd"), "\xab\xcd");
}

static void test_scope_percent_decode_keeps_malformed_escapes(void **state)
{
    assert_string_equal(decode("%zz"), "%zz");
    assert_string_equal(decode("%2z"), "%2z");
    assert_string_equal(decode("%z2"), "%z2");
    assert_string_equal(decode("a%%41"), "a%A");
}

static void test_scope_percent_decode_keeps_truncated_escapes_at_the_end(void **state)
{
    assert_string_equal(decode("%"), "%");
    assert_string_equal(decode("abc%"), "abc%");
    assert_string_equal(decode("%4"), "%4");
    assert_string_equal(decode("/x%4"), "/x%4");
}

static void test_scope_percent_decode_keeps_plus(void **state)
{
    assert_string_equal(decode("a+b"), "a+b");
    assert_string_equal(decode("%2B+"), "++");
}

static void test_scope_percent_decode_can_produce_nul_bytes(void **state)
{
    char dst[3];
    size_t n = casgi__scope_percent_decode(CASGI_BYTES("a%00"), dst);
    assert_int_equal(n, 2);
    assert_memory_equal(dst, "a\0", 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scope_split_origin_form_without_query),
        cmocka_unit_test(test_scope_split_origin_form_with_query),
        cmocka_unit_test(test_scope_split_query_keeps_later_question_marks),
        cmocka_unit_test(test_scope_split_bare_question_mark_gives_empty_query),
        cmocka_unit_test(test_scope_split_absolute_form_yields_its_path_and_query),
        cmocka_unit_test(test_scope_split_absolute_form_without_path_is_root),
        cmocka_unit_test(test_scope_split_absolute_form_with_query_but_no_path_is_root),
        cmocka_unit_test(test_scope_split_asterisk_form_is_kept_as_path),
        cmocka_unit_test(test_scope_split_authority_form_has_empty_path),
        cmocka_unit_test(test_scope_split_empty_target_gives_empty_path),
        cmocka_unit_test(test_scope_percent_decode_decodes_escapes),
        cmocka_unit_test(test_scope_percent_decode_accepts_mixed_case_hex),
        cmocka_unit_test(test_scope_percent_decode_keeps_malformed_escapes),
        cmocka_unit_test(test_scope_percent_decode_keeps_truncated_escapes_at_the_end),
        cmocka_unit_test(test_scope_percent_decode_keeps_plus),
        cmocka_unit_test(test_scope_percent_decode_can_produce_nul_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
