/*
 * websocket.c over a fake carrier (casgi__ws_transport_t) in memory: the HTTP/2 mode (RFC 8441)
 * and the transport contract, without a socket: the carrier records what websocket.c asks of it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "call.h"
#include "websocket.h"

enum { APP_ECHO, APP_DENY, APP_DENY_FAIL_SYNC, APP_NOT_CALLED };

typedef struct fake_s {
    uv_loop_t loop;
    casgi_server_t *server;
    int shutdown_cbs;
    casgi__websocket_t *ws;
    int mode;

    /* carrier */
    int http2;
    int responds, status;
    char head[2048];
    size_t head_len;
    casgi__buf_t output, input;
    int reading, read_calls_after_finish, calls_after_abort;
    int finished, aborted, closed;
    uint64_t deadline;
    int sync_close_on_abort;

    /* app */
    int app_calls;
    char http_version[8], scheme[8];
    casgi_call_t *call;
    int disconnect_code;
    int ended;
} fake_t;

static fake_t *fx;

/* ---- the fake carrier -------------------------------------------------------------------- */

static void check_alive(fake_t *f)
{
    if (f->aborted || f->closed)
        f->calls_after_abort++;
}

static int t_respond(void *t, int status, const casgi_header_t *h, size_t n)
{
    fake_t *f = t;
    check_alive(f);
    f->responds++;
    f->status = status;
    f->head_len = 0;
    for (size_t i = 0; i < n; i++)
        f->head_len += (size_t)snprintf(f->head + f->head_len, sizeof(f->head) - f->head_len,
                                        "%.*s: %.*s\n", (int)h[i].name.len, h[i].name.base,
                                        (int)h[i].value.len, h[i].value.base);
    return 0;
}
static int t_write(void *t, const void *data, size_t len)
{
    fake_t *f = t;
    check_alive(f);
    assert_true(f->responds == 1);
    if (f->finished)
        f->calls_after_abort++;
    return casgi__buf_append(&f->output, data, len);
}
static size_t t_buffered(void *t)
{
    return casgi__buf_size(&((fake_t *)t)->output);
}
static void t_flush_later(void *t)
{
    check_alive(t);
}
static casgi__buf_t *t_input(void *t)
{
    return &((fake_t *)t)->input;
}
static void t_read_start(void *t)
{
    fake_t *f = t;
    check_alive(f);
    f->read_calls_after_finish += f->finished;
    f->reading = 1;
}
static void t_read_stop(void *t)
{
    fake_t *f = t;
    check_alive(f);
    f->read_calls_after_finish += f->finished;
    f->reading = 0;
}
static void t_set_deadline(void *t, uint64_t ms)
{
    fake_t *f = t;
    check_alive(f);
    f->deadline = ms;
}
static void t_clear_deadline(void *t)
{
    fake_t *f = t;
    check_alive(f);
    f->deadline = 0;
}
static void t_abort(void *t)
{
    fake_t *f = t;
    check_alive(f);
    f->aborted = 1;
    if (f->sync_close_on_abort) {
        f->closed = 1;
        casgi__websocket_on_close(f->ws);
    }
}
static void t_finish(void *t)
{
    fake_t *f = t;
    check_alive(f);
    f->finished = 1;
}

static casgi__ws_transport_t transport = {
    .respond = t_respond,
    .write = t_write,
    .buffered = t_buffered,
    .flush_later = t_flush_later,
    .input = t_input,
    .read_start = t_read_start,
    .read_stop = t_read_stop,
    .set_deadline = t_set_deadline,
    .clear_deadline = t_clear_deadline,
    .abort = t_abort,
    .finish = t_finish,
};

/* ---- the app ----------------------------------------------------------------------------- */

static void on_receive(casgi_call_t *call, int status, const casgi_event_t *ev, void *data);

static void on_receive(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    fake_t *f = fx;
    if (status != 0) {
        return;
    }
    switch (ev->type) {
    case CASGI_EVENT_WEBSOCKET_CONNECT:
        if (f->mode == APP_ECHO) {
            static const casgi_header_t h[] = {{CASGI_BYTES("X-A"), CASGI_BYTES("b")},
                                               {CASGI_BYTES("Connection"), CASGI_BYTES("foo")}};
            casgi_event_t a = {.type = CASGI_EVENT_WEBSOCKET_ACCEPT};
            a.accept.subprotocol = CASGI_BYTES("chat");
            a.accept.headers = h;
            a.accept.num_headers = 2;
            assert_int_equal(casgi_send(call, &a, NULL, NULL), 0);
        } else if (f->mode == APP_DENY) {
            static const casgi_header_t h[] = {
                {CASGI_BYTES("content-type"), CASGI_BYTES("application/json")},
                {CASGI_BYTES("content-length"), CASGI_BYTES("16")},
                {CASGI_BYTES("connection"), CASGI_BYTES("close")}};
            casgi_event_t s = {.type = CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_START};
            s.start.status = 401;
            s.start.headers = h;
            s.start.num_headers = 3;
            assert_int_equal(casgi_send(call, &s, NULL, NULL), 0);
            casgi_event_t b = {.type = CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_BODY};
            b.body.body = CASGI_BYTES("{\"error\":\"nope\"}");
            assert_int_equal(casgi_send(call, &b, NULL, NULL), 0);
            f->ended = 1;
            casgi_call_end(call, 0);
            return;
        }
        break;
    case CASGI_EVENT_WEBSOCKET_RECEIVE: {
        casgi_event_t s = {.type = CASGI_EVENT_WEBSOCKET_SEND};
        s.message = ev->message;
        assert_int_equal(casgi_send(call, &s, NULL, NULL), 0);
        break;
    }
    case CASGI_EVENT_WEBSOCKET_DISCONNECT:
        f->disconnect_code = ev->close.code;
        f->ended = 1;
        casgi_call_end(call, 0);
        return;
    default: fail();
    }
    assert_int_equal(casgi_receive(call, on_receive, NULL), 0);
}

static void app_entry(casgi_call_t *call, const casgi_scope_t *scope, void *data)
{
    fake_t *f = fx;
    f->app_calls++;
    f->call = call;
    snprintf(f->http_version, sizeof(f->http_version), "%s", scope->http_version);
    snprintf(f->scheme, sizeof(f->scheme), "%s", scope->scheme);
    assert_int_equal(scope->type, CASGI_SCOPE_WEBSOCKET);
    if (f->mode == APP_DENY_FAIL_SYNC) {
        casgi_event_t s = {.type = CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_START};
        s.start.status = 401;
        assert_int_equal(casgi_send(call, &s, NULL, NULL), 0);
        f->ended = 1;
        casgi_call_end(call, CASGI_EEVENT);
        return;
    }
    assert_int_equal(casgi_receive(call, on_receive, NULL), 0);
}

/* ---- fixture ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    fake_t *f = calloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.date_header = 0;
    cfg.log_level = CASGI_LOG_ERROR;
    casgi_app_t app = {.entry = app_entry};
    assert_int_equal(casgi_server_new(&f->loop, &cfg, &app, &f->server), 0);
    fx = f;
    *state = f;
    return 0;
}

static void on_shutdown(casgi_server_t *server, int status, const char *message, void *data)
{
    ((fake_t *)data)->shutdown_cbs++;
}

static int teardown(void **state)
{
    fake_t *f = *state;
    assert_int_equal(casgi_server_shutdown(f->server, on_shutdown, f), 0);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(f->shutdown_cbs, 1);
    casgi_server_free(f->server);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    casgi__buf_free(&f->output);
    casgi__buf_free(&f->input);
    free(f);
    return 0;
}

static void open_ws(fake_t *f, int http2, const char *version, const char *key)
{
    f->http2 = http2;
    transport.http2 = http2;
    casgi_header_t h[4];
    size_t n = 0;
    h[n++] = (casgi_header_t){CASGI_BYTES("sec-websocket-protocol"), CASGI_BYTES("chat, x")};
    if (version)
        h[n++] = (casgi_header_t){CASGI_BYTES("sec-websocket-version"), CASGI_STR(version)};
    if (key)
        h[n++] = (casgi_header_t){CASGI_BYTES("sec-websocket-key"), CASGI_STR(key)};
    casgi_scope_t scope = {.type = CASGI_SCOPE_HTTP};
    scope.http_version = http2 ? "2" : "1.1";
    scope.method = http2 ? CASGI_BYTES("CONNECT") : CASGI_BYTES("GET");
    scope.scheme = "http";
    scope.path = scope.raw_path = CASGI_BYTES("/chat");
    scope.headers = h;
    scope.num_headers = n;
    assert_int_equal(casgi__websocket_open(f->server, &transport, f, &scope, &f->ws), 0);
}

static void run_loop(fake_t *f)
{
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void client_frame(fake_t *f, int opcode, const char *payload, size_t len)
{
    unsigned char hdr[6] = {(unsigned char)(0x80 | opcode), (unsigned char)(0x80 | len), 0, 0,
                            0, 0}; /* mask key 0 */
    assert_int_equal(casgi__buf_append(&f->input, hdr, 6), 0);
    assert_int_equal(casgi__buf_append(&f->input, payload, len), 0);
    casgi__websocket_on_read(f->ws);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_h2_accept_echo_close(void **state)
{
    fake_t *f = *state;
    f->mode = APP_ECHO;
    open_ws(f, 1, "13", NULL); /* no key over HTTP/2 */
    assert_int_equal(f->app_calls, 1);
    assert_true(f->reading);
    run_loop(f);
    assert_int_equal(f->responds, 1);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->head, "sec-websocket-protocol: chat\nserver: casgi\nX-A: b\n");
    assert_string_equal(f->http_version, "2");
    assert_string_equal(f->scheme, "ws");
    assert_int_equal(f->deadline, 20000); /* ping interval */

    client_frame(f, 1, "hello", 5);
    run_loop(f);
    assert_int_equal(casgi__buf_size(&f->output), 7);
    assert_memory_equal(casgi__buf_data(&f->output), "\x81\x05hello", 7);
    casgi__buf_consume(&f->output, 7);
    casgi__websocket_on_drain(f->ws);

    client_frame(f, 8, "\x03\xe8", 2);
    run_loop(f);
    assert_memory_equal(casgi__buf_data(&f->output), "\x88\x02\x03\xe8", 4);
    assert_int_equal(f->finished, 1);
    assert_int_equal(f->disconnect_code, 1000);
    assert_int_equal(f->ended, 1);
    casgi__websocket_on_drain(f->ws); /* an event after finish() is fine */
    assert_int_equal(f->read_calls_after_finish, 0);
    f->closed = 1;
    casgi__websocket_on_close(f->ws);
    assert_int_equal(f->calls_after_abort, 0);
}

static void test_h2_bad_version_is_426(void **state)
{
    fake_t *f = *state;
    f->mode = APP_NOT_CALLED;
    open_ws(f, 1, "8", NULL);
    assert_int_equal(f->app_calls, 0);
    assert_int_equal(f->status, 426);
    assert_string_equal(f->head, "server: casgi\ncontent-type: text/plain; charset=utf-8\n"
                                 "sec-websocket-version: 13\ncontent-length: 17\n");
    assert_int_equal(casgi__buf_size(&f->output), 17);
    assert_int_equal(f->finished, 1);
    casgi__websocket_on_timeout(f->ws); /* a deadline after finish(): abort */
    assert_int_equal(f->aborted, 1);
    f->closed = 1;
    casgi__websocket_on_close(f->ws);
}

static void test_h1_mode_missing_key_is_400(void **state)
{
    fake_t *f = *state;
    f->mode = APP_NOT_CALLED;
    open_ws(f, 0, "13", NULL);
    assert_int_equal(f->app_calls, 0);
    assert_int_equal(f->status, 400);
    assert_string_equal(f->head, "server: casgi\ncontent-type: text/plain; charset=utf-8\n"
                                 "connection: close\ncontent-length: 12\n");
    f->closed = 1;
    casgi__websocket_on_close(f->ws);
}

static void test_h1_mode_accept_headers(void **state)
{
    fake_t *f = *state;
    f->mode = APP_ECHO;
    open_ws(f, 0, "13", "dGhlIHNhbXBsZSBub25jZQ==");
    run_loop(f);
    assert_int_equal(f->status, 101);
    assert_string_equal(f->head, "upgrade: websocket\nconnection: Upgrade\n"
                                 "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n"
                                 "sec-websocket-protocol: chat\nserver: casgi\nX-A: b\n"
                                 "Connection: foo\n");
    f->closed = 1;
    casgi__websocket_on_close(f->ws); /* the peer vanished: 1006 */
    run_loop(f);
    assert_int_equal(f->disconnect_code, 1006);
}

static void test_h2_denial(void **state)
{
    fake_t *f = *state;
    f->mode = APP_DENY;
    open_ws(f, 1, "13", NULL);
    run_loop(f);
    assert_int_equal(f->status, 401);
    assert_string_equal(f->head, "server: casgi\ncontent-type: application/json\n");
    assert_int_equal(casgi__buf_size(&f->output), 16);
    assert_int_equal(f->finished, 1);
    assert_int_equal(f->aborted, 0);
    f->closed = 1;
    casgi__websocket_on_close(f->ws);
}

static void test_h2_abort_during_open(void **state)
{
    fake_t *f = *state;
    f->mode = APP_DENY_FAIL_SYNC;
    f->sync_close_on_abort = 1;
    open_ws(f, 1, "13", NULL);
    assert_int_equal(f->aborted, 1);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->calls_after_abort, 0);
    run_loop(f);
}

static void test_h2_async_close_after_abort(void **state)
{
    fake_t *f = *state;
    f->mode = APP_DENY_FAIL_SYNC;
    open_ws(f, 1, "13", NULL);
    assert_int_equal(f->aborted, 1);
    run_loop(f);
    assert_int_equal(f->calls_after_abort, 0);
    f->closed = 1;
    casgi__websocket_on_close(f->ws);
    run_loop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_h2_accept_echo_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h2_bad_version_is_426, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_mode_missing_key_is_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h1_mode_accept_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h2_denial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h2_abort_during_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h2_async_close_after_abort, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
