/* The cached IMF-fixdate (src/date.c). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strptime, timegm */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "date.h"

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(s, list[i], 3) == 0)
            return 1;
    return 0;
}

/* "Www, DD Mmm YYYY HH:MM:SS GMT", checked position by position. */
static void assert_imf_fixdate(const char *s)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    /* 'd': a digit, 'a': a letter (the names are checked below), anything else: itself */
    static const char shape[] = "aaa, dd aaa dddd dd:dd:dd GMT";
    assert_int_equal(strlen(s), CASGI_DATE_LEN);
    assert_int_equal(sizeof(shape) - 1, CASGI_DATE_LEN);
    for (size_t i = 0; i < CASGI_DATE_LEN; i++) {
        char want = shape[i];
        if (want == 'd') {
            if (!is_digit(s[i]))
                fail_msg("\"%s\": position %zu is not a digit", s, i);
        } else if (want == 'a') {
            if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
                fail_msg("\"%s\": position %zu is not a letter", s, i);
        } else if (s[i] != want) {
            fail_msg("\"%s\": position %zu is '%c', expected '%c'", s, i, s[i], want);
        }
    }
    assert_true(in_list(s, days, 7));
    assert_true(in_list(s + 8, months, 12));
    int day = atoi(s + 5), hour = atoi(s + 17), min = atoi(s + 20), sec = atoi(s + 23);
    assert_in_range(day, 1, 31);
    assert_in_range(hour, 0, 23);
    assert_in_range(min, 0, 59);
    assert_in_range(sec, 0, 60);
}

static void test_date_now_is_29_chars_of_imf_fixdate(void **state)
{
    casgi__date_t date = {0};
    const char *text = casgi__date_now(&date);
    assert_non_null(text);
    assert_imf_fixdate(text);
}

static void test_date_now_is_cached_within_a_second(void **state)
{
    casgi__date_t date = {0};
    char first[CASGI_DATE_LEN + 1], second[CASGI_DATE_LEN + 1];
    /* retry if a second boundary falls between the two calls */
    for (int attempt = 0; attempt < 5; attempt++) {
        time_t before = time(NULL);
        memcpy(first, casgi__date_now(&date), sizeof(first));
        const char *p = casgi__date_now(&date);
        memcpy(second, p, sizeof(second));
        if (time(NULL) == before) {
            assert_string_equal(first, second);
            assert_ptr_equal(p, date.text); /* the cache itself, no copy */
            return;
        }
    }
    fail_msg("could not make two calls within one second");
}

static void test_date_now_parses_back_to_the_current_time(void **state)
{
    casgi__date_t date = {0};
    const char *text = casgi__date_now(&date);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    assert_non_null(end);
    assert_int_equal(*end, '\0');
    time_t parsed = timegm(&tm);
    time_t now = time(NULL);
    assert_true(parsed <= now + 2 && parsed >= now - 2);
}

static void test_date_now_refreshes_when_the_second_changes(void **state)
{
    casgi__date_t date = {0};
    casgi__date_now(&date);
    /* pretend the cache is from long ago with stale text */
    date.second -= 1000;
    memcpy(date.text, "Thu, 01 Jan 1970 00:00:00 GMT", CASGI_DATE_LEN);
    const char *text = casgi__date_now(&date);
    assert_string_not_equal(text, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_imf_fixdate(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_date_now_is_29_chars_of_imf_fixdate),
        cmocka_unit_test(test_date_now_is_cached_within_a_second),
        cmocka_unit_test(test_date_now_parses_back_to_the_current_time),
        cmocka_unit_test(test_date_now_refreshes_when_the_second_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
