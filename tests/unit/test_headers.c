/* Header validation and lookup (src/headers.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "headers.h"

static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static casgi_bytes_t bytes(const char *s, size_t len) { return (casgi_bytes_t){s, len}; }

static void test_headers_name_accepts_every_tchar(void **state)
{
    assert_int_equal(casgi__headers_valid_name(CASGI_BYTES(tchars)), 1);
    for (size_t i = 0; i < sizeof(tchars) - 1; i++)
        assert_int_equal(casgi__headers_valid_name(bytes(&tchars[i], 1)), 1);
}

static void test_headers_name_rejects_every_non_tchar_byte(void **state)
{
    for (int c = 0; c < 256; c++) {
        char b = (char)c;
        int expected = c != 0 && strchr(tchars, c) != NULL;
        assert_int_equal(casgi__headers_valid_name(bytes(&b, 1)), expected);
    }
}

static void test_headers_name_rejects_empty(void **state)
{
    assert_int_equal(casgi__headers_valid_name(bytes("", 0)), 0);
    assert_int_equal(casgi__headers_valid_name(bytes(NULL, 0)), 0);
}

static void test_headers_name_rejects_separators_inside(void **state)
{
    assert_int_equal(casgi__headers_valid_name(CASGI_BYTES("x-a b")), 0);
    assert_int_equal(casgi__headers_valid_name(CASGI_BYTES("x-a:b")), 0);
    assert_int_equal(casgi__headers_valid_name(CASGI_BYTES("x-a\r\nb")), 0);
    assert_int_equal(casgi__headers_valid_name(bytes("x-a\0b", 5)), 0);
}

static void test_headers_value_rejects_cr_lf_nul(void **state)
{
    assert_int_equal(casgi__headers_valid_value(CASGI_BYTES("a\rb")), 0);
    assert_int_equal(casgi__headers_valid_value(CASGI_BYTES("a\nb")), 0);
    assert_int_equal(casgi__headers_valid_value(bytes("a\0b", 3)), 0);
    assert_int_equal(casgi__headers_valid_value(CASGI_BYTES("ok\r\nSet-Cookie: x=1")), 0);
    assert_int_equal(casgi__headers_valid_value(CASGI_BYTES("\n")), 0);
}

static void test_headers_value_accepts_text_tabs_and_empty(void **state)
{
    assert_int_equal(casgi__headers_valid_value(CASGI_BYTES("text/plain; charset=utf-8")), 1);
    assert_int_equal(casgi__headers_valid_value(CASGI_BYTES("a\tb  c")), 1);
    assert_int_equal(casgi__headers_valid_value(CASGI_BYTES("\xc3\xa9t\xc3\xa9")), 1);
    assert_int_equal(casgi__headers_valid_value(bytes("", 0)), 1);
}

static void test_headers_validate_reports_the_bad_entry(void **state)
{
    casgi_header_t good[] = {
        {CASGI_BYTES("content-type"), CASGI_BYTES("text/plain")},
        {CASGI_BYTES("X-Custom"), CASGI_BYTES("")},
    };
    assert_int_equal(casgi__headers_validate(good, 2), 0);
    assert_int_equal(casgi__headers_validate(NULL, 0), 0);
    assert_int_equal(casgi__headers_validate(NULL, 1), CASGI_EHEADER);

    casgi_header_t bad_value[] = {
        {CASGI_BYTES("content-type"), CASGI_BYTES("text/plain")},
        {CASGI_BYTES("x-split"), CASGI_BYTES("a\r\nb")},
    };
    assert_int_equal(casgi__headers_validate(bad_value, 2), CASGI_EHEADER);
    assert_int_equal(casgi__headers_validate(bad_value, 1), 0); /* only the first is checked */

    casgi_header_t bad_name[] = {{CASGI_BYTES("bad name"), CASGI_BYTES("v")}};
    assert_int_equal(casgi__headers_validate(bad_name, 1), CASGI_EHEADER);
    casgi_header_t empty_name[] = {{{"", 0}, CASGI_BYTES("v")}};
    assert_int_equal(casgi__headers_validate(empty_name, 1), CASGI_EHEADER);
}

static void test_headers_name_is_ignores_case_of_the_name(void **state)
{
    assert_int_equal(CASGI_NAME_IS(CASGI_BYTES("Content-Length"), "content-length"), 1);
    assert_int_equal(CASGI_NAME_IS(CASGI_BYTES("CONTENT-LENGTH"), "content-length"), 1);
    assert_int_equal(CASGI_NAME_IS(CASGI_BYTES("content-length"), "content-length"), 1);
    assert_int_equal(CASGI_NAME_IS(CASGI_BYTES("content-lengt"), "content-length"), 0);
    assert_int_equal(CASGI_NAME_IS(CASGI_BYTES("content-lengths"), "content-length"), 0);
    assert_int_equal(CASGI_NAME_IS(CASGI_BYTES("content_length"), "content-length"), 0);
    assert_int_equal(CASGI_NAME_IS(CASGI_BYTES(""), "host"), 0);
}

static void test_headers_lower_changes_only_ascii_upper(void **state)
{
    char s[] = "X-Foo_BAR-09\xc3\x89";
    casgi__headers_lower(s, strlen(s));
    assert_string_equal(s, "x-foo_bar-09\xc3\x89");
}

static void test_headers_has_token_finds_a_listed_token_in_any_case(void **state)
{
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("keep-alive, Close"), "close", 5), 1);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("close"), "close", 5), 1);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("CLOSE"), "close", 5), 1);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES(" close ,upgrade"), "close", 5), 1);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("upgrade,\tclose\t"), "close", 5), 1);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES(",,close,,"), "close", 5), 1);
}

static void test_headers_has_token_does_not_match_a_longer_word(void **state)
{
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("closed"), "close", 5), 0);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("keep-alive, closed"), "close", 5), 0);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("clos"), "close", 5), 0);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES("keep-alive"), "close", 5), 0);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES(""), "close", 5), 0);
    assert_int_equal(casgi__headers_has_token(CASGI_BYTES(" , "), "close", 5), 0);
}

static void test_headers_parse_length_accepts_decimal(void **state)
{
    uint64_t n = 99;
    assert_int_equal(casgi__headers_parse_length(CASGI_BYTES("0"), &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(casgi__headers_parse_length(CASGI_BYTES("123"), &n), 0);
    assert_int_equal(n, 123);
    assert_int_equal(casgi__headers_parse_length(CASGI_BYTES("007"), &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(casgi__headers_parse_length(CASGI_BYTES("9999999999999999999"), &n), 0);
    assert_true(n == UINT64_C(9999999999999999999));
}

static void test_headers_parse_length_rejects_malformed_and_leaves_out_untouched(void **state)
{
    static const char *const bad[] = {"", "-1", "1 2", "+5", " 5", "5 ", "0x10", "12a", "1,2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t n = 42;
        assert_int_equal(casgi__headers_parse_length(CASGI_STR(bad[i]), &n), CASGI_EHEADER);
        assert_int_equal(n, 42);
    }
}

static void test_headers_parse_length_rejects_overflow(void **state)
{
    uint64_t n = 42;
    /* 20 digits: more than UINT64_MAX (18446744073709551615) */
    assert_int_equal(casgi__headers_parse_length(CASGI_BYTES("99999999999999999999"), &n),
                     CASGI_EHEADER);
    assert_int_equal(casgi__headers_parse_length(CASGI_BYTES("18446744073709551616"), &n),
                     CASGI_EHEADER);
    assert_int_equal(casgi__headers_parse_length(CASGI_BYTES("123456789012345678901234"), &n),
                     CASGI_EHEADER);
    assert_int_equal(n, 42);
}

/* The checks go a word at a time: every byte value, at every position of names and values whose
 * lengths cover whole words and tails, must get the answer of a plain byte-by-byte rule. */
static int ref_is_tchar(unsigned char c)
{
    return c != 0 && strchr(tchars, c) != NULL;
}

static void test_headers_word_checks_match_the_byte_rule_everywhere(void **state)
{
    (void)state;
    char name[24], lowered[24];
    for (size_t len = 1; len <= 17; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (int b = 0; b < 256; b++) {
                for (size_t i = 0; i < len; i++)
                    name[i] = "Content-Type-X19"[i % 16];
                name[pos] = (char)b;
                int token = ref_is_tchar((unsigned char)b);
                int split = b == 0 || b == '\r' || b == '\n';
                assert_int_equal(casgi__headers_valid_name(bytes(name, len)), token);
                assert_int_equal(casgi__headers_valid_value(bytes(name, len)), !split);
                memcpy(lowered, name, len);
                lowered[len] = '#'; /* a byte past the end must stay as it is */
                assert_int_equal(casgi__headers_lower_token(lowered, len), token);
                for (size_t i = 0; i < len; i++) {
                    unsigned char c = (unsigned char)name[i];
                    assert_int_equal((unsigned char)lowered[i],
                                     c >= 'A' && c <= 'Z' ? c + 32 : c);
                }
                assert_int_equal(lowered[len], '#');
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_name_accepts_every_tchar),
        cmocka_unit_test(test_headers_name_rejects_every_non_tchar_byte),
        cmocka_unit_test(test_headers_name_rejects_empty),
        cmocka_unit_test(test_headers_name_rejects_separators_inside),
        cmocka_unit_test(test_headers_value_rejects_cr_lf_nul),
        cmocka_unit_test(test_headers_value_accepts_text_tabs_and_empty),
        cmocka_unit_test(test_headers_validate_reports_the_bad_entry),
        cmocka_unit_test(test_headers_name_is_ignores_case_of_the_name),
        cmocka_unit_test(test_headers_lower_changes_only_ascii_upper),
        cmocka_unit_test(test_headers_has_token_finds_a_listed_token_in_any_case),
        cmocka_unit_test(test_headers_has_token_does_not_match_a_longer_word),
        cmocka_unit_test(test_headers_parse_length_accepts_decimal),
        cmocka_unit_test(test_headers_parse_length_rejects_malformed_and_leaves_out_untouched),
        cmocka_unit_test(test_headers_parse_length_rejects_overflow),
        cmocka_unit_test(test_headers_word_checks_match_the_byte_rule_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
