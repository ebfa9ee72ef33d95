/* Configuration defaults and validation (src/config.c) and log-level names (src/log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"

static void test_config_init_sets_documented_defaults(void **state)
{
    casgi_config_t cfg;
    memset(&cfg, 0xa5, sizeof(cfg)); /* garbage: init must set every field */
    casgi_config_init(&cfg);
    assert_non_null(cfg.root_path);
    assert_string_equal(cfg.root_path, "");
    assert_null(cfg.state);
    assert_int_equal(cfg.lifespan, CASGI_LIFESPAN_AUTO);
    assert_int_equal(cfg.log_level, CASGI_LOG_INFO);
    assert_int_equal(cfg.access_log, 1);
    assert_null(cfg.log_fn);
    assert_null(cfg.log_data);
    assert_int_equal(cfg.timeout_keep_alive, 5000);
    assert_int_equal(cfg.timeout_request_header, 10000);
    assert_int_equal(cfg.timeout_graceful_shutdown, 0);
    assert_int_equal(cfg.limit_concurrency, 0);
    assert_int_equal(cfg.limit_max_requests, 0);
    assert_null(cfg.limit_cb);
    assert_null(cfg.limit_data);
    assert_int_equal(cfg.backlog, 2048);
    assert_int_equal(cfg.max_body_size, 0);
    assert_int_equal(cfg.max_request_head, 65536);
    assert_int_equal(cfg.max_url, 8192);
    assert_int_equal(cfg.high_water_mark, 65536);
    assert_int_equal(cfg.server_header, 1);
    assert_int_equal(cfg.date_header, 1);
    assert_null(cfg.headers);
    assert_int_equal(cfg.num_headers, 0);
}

static void test_config_validate_accepts_the_defaults(void **state)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    const char *why = "untouched";
    assert_int_equal(casgi_config_validate(&cfg, &why), 0);
    assert_null(why);
    assert_int_equal(casgi_config_validate(&cfg, NULL), 0);
}

static void test_config_validate_accepts_good_non_defaults(void **state)
{
    static const casgi_header_t headers[] = {{CASGI_BYTES("X-Frame-Options"), CASGI_BYTES("DENY")}};
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.root_path = NULL; /* NULL means "" */
    assert_int_equal(casgi_config_validate(&cfg, NULL), 0);
    cfg.root_path = "/api";
    cfg.headers = headers;
    cfg.num_headers = 1;
    cfg.lifespan = CASGI_LIFESPAN_OFF;
    cfg.log_level = CASGI_LOG_CRITICAL;
    cfg.backlog = 1;
    cfg.max_url = cfg.max_request_head;
    assert_int_equal(casgi_config_validate(&cfg, NULL), 0);
}

/* Validates and expects CASGI_ECONFIG with a reason that mentions `word`. */
static void assert_rejected(const casgi_config_t *cfg, const char *word)
{
    const char *why = NULL;
    assert_int_equal(casgi_config_validate(cfg, &why), CASGI_ECONFIG);
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    if (strstr(why, word) == NULL)
        fail_msg("reason \"%s\" does not mention \"%s\"", why, word);
    assert_int_equal(casgi_config_validate(cfg, NULL), CASGI_ECONFIG);
}

static void test_config_validate_rejects_root_path_without_leading_slash(void **state)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.root_path = "api";
    assert_rejected(&cfg, "root_path");
}

static void test_config_validate_rejects_max_url_beyond_max_request_head(void **state)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.max_url = cfg.max_request_head + 1;
    assert_rejected(&cfg, "max_url");
    cfg.max_url = 0;
    assert_rejected(&cfg, "max_url");
}

static void test_config_validate_rejects_zero_backlog(void **state)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.backlog = 0;
    assert_rejected(&cfg, "backlog");
    cfg.backlog = -5;
    assert_rejected(&cfg, "backlog");
}

static void test_config_validate_rejects_default_header_that_splits_the_response(void **state)
{
    static const casgi_header_t headers[] = {
        {CASGI_BYTES("x-ok"), CASGI_BYTES("fine")},
        {CASGI_BYTES("x-evil"), CASGI_BYTES("a\r\nSet-Cookie: owned=1")},
    };
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.headers = headers;
    cfg.num_headers = 2;
    assert_rejected(&cfg, "header");
}

static void test_config_validate_rejects_default_header_with_bad_name(void **state)
{
    static const casgi_header_t headers[] = {{CASGI_BYTES("x bad"), CASGI_BYTES("v")}};
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.headers = headers;
    cfg.num_headers = 1;
    assert_rejected(&cfg, "header");
    cfg.headers = NULL; /* a count without an array */
    assert_rejected(&cfg, "header");
}

static void test_config_validate_rejects_bad_log_level(void **state)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.log_level = (casgi_log_level_t)(CASGI_LOG_CRITICAL + 1);
    assert_rejected(&cfg, "log_level");
    cfg.log_level = (casgi_log_level_t)-1;
    assert_rejected(&cfg, "log_level");
}

static void test_config_validate_rejects_bad_lifespan_mode(void **state)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.lifespan = (casgi_lifespan_mode_t)(CASGI_LIFESPAN_OFF + 1);
    assert_rejected(&cfg, "lifespan");
}

static void test_config_validate_rejects_tiny_limits_and_zero_timeouts(void **state)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.max_request_head = 10;
    assert_rejected(&cfg, "max_request_head");
    casgi_config_init(&cfg);
    cfg.high_water_mark = 1;
    assert_rejected(&cfg, "high_water_mark");
    casgi_config_init(&cfg);
    cfg.timeout_keep_alive = 0;
    assert_rejected(&cfg, "timeout_keep_alive");
    casgi_config_init(&cfg);
    cfg.timeout_request_header = 0;
    assert_rejected(&cfg, "timeout_request_header");
}

static void test_config_validate_rejects_null(void **state)
{
    const char *why = NULL;
    assert_int_equal(casgi_config_validate(NULL, &why), CASGI_ECONFIG);
    assert_non_null(why);
}

static void test_log_level_parse_accepts_any_case(void **state)
{
    static const struct {
        const char *name;
        casgi_log_level_t level;
    } cases[] = {
        {"trace", CASGI_LOG_TRACE}, {"DEBUG", CASGI_LOG_DEBUG},
        {"Info", CASGI_LOG_INFO},   {"wArNiNg", CASGI_LOG_WARNING},
        {"error", CASGI_LOG_ERROR}, {"CRITICAL", CASGI_LOG_CRITICAL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        casgi_log_level_t level = (casgi_log_level_t)99;
        assert_int_equal(casgi_log_level_parse(cases[i].name, &level), 0);
        assert_int_equal(level, cases[i].level);
    }
}

static void test_log_level_parse_rejects_unknown_names(void **state)
{
    static const char *const bad[] = {"verbose", "", "warn", "info ", "infos", "crit"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        casgi_log_level_t level = (casgi_log_level_t)99;
        assert_int_equal(casgi_log_level_parse(bad[i], &level), CASGI_ECONFIG);
        assert_int_equal(level, 99);
    }
    casgi_log_level_t level = (casgi_log_level_t)99;
    assert_int_equal(casgi_log_level_parse(NULL, &level), CASGI_ECONFIG);
}

static void test_log_level_name_round_trips(void **state)
{
    for (int l = CASGI_LOG_TRACE; l <= CASGI_LOG_CRITICAL; l++) {
        casgi_log_level_t parsed;
        const char *name = casgi_log_level_name((casgi_log_level_t)l);
        assert_int_equal(casgi_log_level_parse(name, &parsed), 0);
        assert_int_equal(parsed, l);
    }
    assert_string_equal(casgi_log_level_name(CASGI_LOG_WARNING), "WARNING");
    assert_string_equal(casgi_log_level_name((casgi_log_level_t)42), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_init_sets_documented_defaults),
        cmocka_unit_test(test_config_validate_accepts_the_defaults),
        cmocka_unit_test(test_config_validate_accepts_good_non_defaults),
        cmocka_unit_test(test_config_validate_rejects_root_path_without_leading_slash),
        cmocka_unit_test(test_config_validate_rejects_max_url_beyond_max_request_head),
        cmocka_unit_test(test_config_validate_rejects_zero_backlog),
        cmocka_unit_test(test_config_validate_rejects_default_header_that_splits_the_response),
        cmocka_unit_test(test_config_validate_rejects_default_header_with_bad_name),
        cmocka_unit_test(test_config_validate_rejects_bad_log_level),
        cmocka_unit_test(test_config_validate_rejects_bad_lifespan_mode),
        cmocka_unit_test(test_config_validate_rejects_tiny_limits_and_zero_timeouts),
        cmocka_unit_test(test_config_validate_rejects_null),
        cmocka_unit_test(test_log_level_parse_accepts_any_case),
        cmocka_unit_test(test_log_level_parse_rejects_unknown_names),
        cmocka_unit_test(test_log_level_name_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
