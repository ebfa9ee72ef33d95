/*
 * The server end to end, in process: a real loopback listener and a libuv TCP client on the same
 * loop (src/server.c, listener.c, conn.c, http1.c, lifespan.c). Every test ends with the server
 * shut down and freed and uv_loop_close() == 0: nothing of ours is left on the embedder's loop.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <cmocka.h>

#include "internal.h"

#define WATCHDOG_MS 10000
#define MAX_RESPONSES 4

typedef struct ctx_s ctx_t;

/* A minimal HTTP/1.1 client: sends its requests one after the other on one connection. */
typedef struct client_s {
    ctx_t *ctx;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    int open;
    int connect_status;
    const char *const *requests;
    int num_requests, sent;
    char buf[16384];
    size_t len;
} client_t;

typedef struct response_s {
    int status;
    char body[256];
    size_t body_len;
    char head[1024];
} response_t;

struct ctx_s {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int timed_out;
    casgi_server_t *server;
    int port;

    /* server callbacks */
    int start_cbs, start_status;
    char start_message[128];
    int shutdown_called, shutdown_cbs, shutdown_status;

    /* the app */
    int lifespan_fail;
    int lifespan_startups, lifespan_shutdowns;
    int http_calls;
    char last_path[64], last_query[64], last_client[64];
    int last_server_port;

    /* the client */
    client_t client;
    response_t responses[MAX_RESPONSES];
    int num_responses;
    casgi_server_stats_t stats_while_connected;
    void (*on_client_closed)(ctx_t *ctx);

    /* teardown only: keeps the loop turning when a failed test left the server stuck */
    uv_idle_t pump;
    int pump_rounds;

    /* the embedder's own timer */
    uv_timer_t tick;
    int tick_open;
    int ticks, ticks_at_start, ticks_at_response;
};

/* ---- the app ----------------------------------------------------------------------------- */

static void on_lifespan_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    ctx_t *c = data;
    if (status != 0)
        return; /* canceled */
    if (ev->type == CASGI_EVENT_LIFESPAN_STARTUP) {
        c->lifespan_startups++;
        if (c->lifespan_fail) {
            casgi_event_t failed = {.type = CASGI_EVENT_LIFESPAN_STARTUP_FAILED};
            failed.failed.message = CASGI_BYTES("database unreachable");
            assert_int_equal(casgi_send(call, &failed, NULL, NULL), 0);
            assert_int_equal(casgi_call_end(call, 0), 0);
            return;
        }
        casgi_event_t done = {.type = CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE};
        assert_int_equal(casgi_send(call, &done, NULL, NULL), 0);
        assert_int_equal(casgi_receive(call, on_lifespan_event, c), 0);
    } else if (ev->type == CASGI_EVENT_LIFESPAN_SHUTDOWN) {
        c->lifespan_shutdowns++;
        casgi_event_t done = {.type = CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE};
        assert_int_equal(casgi_send(call, &done, NULL, NULL), 0);
        assert_int_equal(casgi_call_end(call, 0), 0);
    }
}

static void copy_bytes(char *dst, size_t size, casgi_bytes_t b)
{
    snprintf(dst, size, "%.*s", (int)b.len, b.base ? b.base : "");
}

/* Answers every http request with a 200 "ok". */
static void app_entry(casgi_call_t *call, const casgi_scope_t *scope, void *data)
{
    ctx_t *c = data;
    if (scope->type == CASGI_SCOPE_LIFESPAN) {
        assert_int_equal(casgi_receive(call, on_lifespan_event, c), 0);
        return;
    }
    assert_int_equal(scope->type, CASGI_SCOPE_HTTP);
    c->http_calls++;
    copy_bytes(c->last_path, sizeof(c->last_path), scope->path);
    copy_bytes(c->last_query, sizeof(c->last_query), scope->query_string);
    snprintf(c->last_client, sizeof(c->last_client), "%s",
             scope->client.host ? scope->client.host : "(null)");
    c->last_server_port = scope->server.port;

    static const casgi_header_t headers[] = {
        {CASGI_BYTES("content-type"), CASGI_BYTES("text/plain")},
        {CASGI_BYTES("content-length"), CASGI_BYTES("2")},
    };
    casgi_event_t start = {.type = CASGI_EVENT_HTTP_RESPONSE_START};
    start.start.status = 200;
    start.start.headers = headers;
    start.start.num_headers = ARRAY_SIZE(headers);
    assert_int_equal(casgi_send(call, &start, NULL, NULL), 0);
    casgi_event_t body = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY};
    body.body.body = CASGI_BYTES("ok");
    assert_int_equal(casgi_send(call, &body, NULL, NULL), 0);
    assert_int_equal(casgi_call_end(call, 0), 0);
}

static void quiet_log(void *data, casgi_log_level_t level, int access, const char *line) {}

/* ---- server callbacks -------------------------------------------------------------------- */

static void on_shutdown(casgi_server_t *server, int status, const char *message, void *data)
{
    ctx_t *c = data;
    assert_ptr_equal(server, c->server);
    c->shutdown_cbs++;
    c->shutdown_status = status;
}

static void shutdown_server(ctx_t *c)
{
    assert_int_equal(c->shutdown_called, 0);
    c->shutdown_called = 1;
    assert_int_equal(casgi_server_shutdown(c->server, on_shutdown, c), 0);
    assert_int_equal(c->shutdown_cbs, 0); /* later, never from inside the call */
}

/* ---- the client -------------------------------------------------------------------------- */

static void on_client_closed(uv_handle_t *handle)
{
    client_t *cl = handle->data;
    cl->open = 0;
    if (cl->ctx->on_client_closed)
        cl->ctx->on_client_closed(cl->ctx);
}

static void client_close(client_t *cl)
{
    if (cl->open && !uv_is_closing((uv_handle_t *)&cl->tcp))
        uv_close((uv_handle_t *)&cl->tcp, on_client_closed);
}

static void on_client_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    client_t *cl = handle->data;
    buf->base = cl->buf + cl->len;
    buf->len = sizeof(cl->buf) - cl->len;
}

static void on_client_write(uv_write_t *req, int status) { assert_int_equal(status, 0); }

static void client_send_next(client_t *cl)
{
    const char *req = cl->requests[cl->sent++];
    uv_buf_t b = uv_buf_init((char *)req, (unsigned)strlen(req));
    assert_int_equal(uv_write(&cl->write_req, (uv_stream_t *)&cl->tcp, &b, 1, on_client_write), 0);
}

/* Takes one complete response (Content-Length framed) off the front of the buffer; 1 if it did. */
static int take_response(client_t *cl)
{
    ctx_t *c = cl->ctx;
    char *end = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head_len = (size_t)(end - cl->buf) + 4;
    size_t body_len = 0;
    for (char *p = cl->buf; p < end; p++) {
        if (strncasecmp(p, "\r\ncontent-length:", 17) == 0) {
            body_len = strtoul(p + 17, NULL, 10);
            break;
        }
    }
    if (cl->len < head_len + body_len)
        return 0;
    assert_true(c->num_responses < MAX_RESPONSES);
    response_t *r = &c->responses[c->num_responses++];
    assert_int_equal(strncmp(cl->buf, "HTTP/1.1 ", 9), 0);
    r->status = atoi(cl->buf + 9);
    snprintf(r->head, sizeof(r->head), "%.*s", (int)head_len, cl->buf);
    assert_true(body_len < sizeof(r->body));
    memcpy(r->body, cl->buf + head_len, body_len);
    r->body_len = body_len;
    memmove(cl->buf, cl->buf + head_len + body_len, cl->len - head_len - body_len);
    cl->len -= head_len + body_len;
    return 1;
}

static void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    client_t *cl = stream->data;
    ctx_t *c = cl->ctx;
    if (nread < 0) {
        client_close(cl);
        return;
    }
    cl->len += (size_t)nread;
    while (take_response(cl)) {
        c->ticks_at_response = c->ticks;
        if (cl->sent < cl->num_requests) {
            client_send_next(cl);
        } else {
            casgi_server_stats(c->server, &c->stats_while_connected);
            client_close(cl);
        }
    }
}

static void on_client_connect(uv_connect_t *req, int status)
{
    client_t *cl = req->data;
    cl->connect_status = status;
    if (status != 0) {
        client_close(cl);
        return;
    }
    assert_int_equal(uv_read_start((uv_stream_t *)&cl->tcp, on_client_alloc, on_client_read), 0);
    client_send_next(cl);
}

static void client_start(ctx_t *c, const char *host, const char *const *requests, int n)
{
    client_t *cl = &c->client;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    if (uv_ip4_addr(host, c->port, &addr.in4) != 0)
        assert_int_equal(uv_ip6_addr(host, c->port, &addr.in6), 0);
    cl->ctx = c;
    cl->requests = requests;
    cl->num_requests = n;
    cl->sent = 0;
    cl->len = 0;
    assert_int_equal(uv_tcp_init(&c->loop, &cl->tcp), 0);
    cl->tcp.data = cl;
    cl->open = 1;
    cl->connect_req.data = cl;
    assert_int_equal(uv_tcp_connect(&cl->connect_req, &cl->tcp, &addr.sa, on_client_connect), 0);
}

static const char *const get_hello[] = {
    "GET /hello%20world?x=1 HTTP/1.1\r\nHost: test\r\n\r\n",
};

static const char *const get_twice[] = {
    "GET /one HTTP/1.1\r\nHost: test\r\n\r\n",
    "GET /two?n=2 HTTP/1.1\r\nHost: test\r\n\r\n",
};

/* ---- fixture ----------------------------------------------------------------------------- */

static void on_watchdog(uv_timer_t *timer)
{
    ctx_t *c = timer->data;
    c->timed_out = 1;
    uv_stop(&c->loop);
}

static int setup(void **state)
{
    ctx_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(uv_timer_init(&c->loop, &c->watchdog), 0);
    c->watchdog.data = c;
    assert_int_equal(uv_timer_start(&c->watchdog, on_watchdog, WATCHDOG_MS, 0), 0);
    uv_unref((uv_handle_t *)&c->watchdog);
    *state = c;
    return 0;
}

static void new_server(ctx_t *c, casgi_lifespan_mode_t lifespan)
{
    casgi_config_t cfg;
    casgi_config_init(&cfg);
    cfg.lifespan = lifespan;
    cfg.log_fn = quiet_log;
    casgi_app_t app = {.entry = app_entry, .data = c};
    assert_int_equal(casgi_server_new(&c->loop, &cfg, &app, &c->server), 0);
}

static void run_loop(ctx_t *c)
{
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_false(c->timed_out);
}

static void on_pump(uv_idle_t *idle)
{
    ctx_t *c = idle->data;
    if (c->shutdown_cbs > 0 || ++c->pump_rounds > 100000)
        uv_close((uv_handle_t *)idle, NULL);
}

static int teardown(void **state)
{
    ctx_t *c = *state;
    /* after a failure: take down whatever the test left running */
    client_close(&c->client);
    if (c->tick_open)
        uv_close((uv_handle_t *)&c->tick, NULL);
    c->tick_open = 0;
    if (c->server != NULL) {
        if (!c->shutdown_called)
            shutdown_server(c);
        if (c->timed_out)
            casgi_server_shutdown_force(c->server);
        c->timed_out = 0;
        uv_run(&c->loop, UV_RUN_DEFAULT);
        if (c->shutdown_cbs == 0) {
            /* Only after a failed test: turn the loop by force so that the server can finish
             * and be freed, and the failure is reported once, without leaks on top. */
            uv_idle_init(&c->loop, &c->pump);
            c->pump.data = c;
            uv_idle_start(&c->pump, on_pump);
            uv_run(&c->loop, UV_RUN_DEFAULT);
        }
        assert_int_equal(c->shutdown_cbs, 1);
        casgi_server_free(c->server);
    }
    uv_close((uv_handle_t *)&c->watchdog, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    free(c);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void on_start_then_get(casgi_server_t *server, int status, const char *message, void *data)
{
    ctx_t *c = data;
    c->start_cbs++;
    c->start_status = status;
    assert_int_equal(status, 0);
    assert_null(message);
    client_start(c, "127.0.0.1", get_hello, 1);
}

static void shutdown_when_client_closed(ctx_t *c) { shutdown_server(c); }

static void test_server_serves_a_request_over_loopback(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    c->port = casgi_server_get_port(c->server, 0);
    assert_true(c->port > 0 && c->port < 65536);
    assert_int_equal(casgi_server_get_port(c->server, 1), UV_EINVAL);

    c->on_client_closed = shutdown_when_client_closed;
    assert_int_equal(casgi_server_start(c->server, on_start_then_get, c), 0);
    assert_int_equal(c->start_cbs, 0); /* later, never from inside the call */
    run_loop(c);

    assert_int_equal(c->start_cbs, 1);
    assert_int_equal(c->client.connect_status, 0);
    assert_int_equal(c->num_responses, 1);
    assert_int_equal(c->responses[0].status, 200);
    assert_int_equal(c->responses[0].body_len, 2);
    assert_memory_equal(c->responses[0].body, "ok", 2);
    assert_non_null(strstr(c->responses[0].head, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(c->responses[0].head, "\r\ncontent-type: text/plain\r\n"));
    assert_non_null(strstr(c->responses[0].head, "\r\ncontent-length: 2\r\n"));
    assert_non_null(strstr(c->responses[0].head, "\r\nserver: casgi\r\n"));
    assert_non_null(strstr(c->responses[0].head, "\r\ndate: "));

    /* what the app saw */
    assert_int_equal(c->http_calls, 1);
    assert_string_equal(c->last_path, "/hello world");
    assert_string_equal(c->last_query, "x=1");
    assert_string_equal(c->last_client, "127.0.0.1");
    assert_int_equal(c->last_server_port, c->port);
    assert_int_equal(c->lifespan_startups, 0); /* lifespan off */

    /* the loop ran dry on its own: the shutdown callback ran, nothing of ours is left */
    assert_int_equal(c->shutdown_cbs, 1);
    assert_int_equal(c->shutdown_status, 0);
}

/*
 * Lifespan around a request, and a shutdown that starts while the client's keep-alive connection
 * is still open on the server's side: the drain ends in that connection's close callback, and
 * lifespan shutdown must still reach the app and the shutdown callback must still run, with
 * nothing but the embedder's plain uv_run().
 */
static void test_server_shutdown_with_an_open_connection_runs_lifespan_shutdown(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_AUTO);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    c->port = casgi_server_get_port(c->server, 0);
    c->on_client_closed = shutdown_when_client_closed;
    assert_int_equal(casgi_server_start(c->server, on_start_then_get, c), 0);
    run_loop(c);

    assert_int_equal(c->lifespan_startups, 1);
    assert_int_equal(c->num_responses, 1);
    assert_int_equal(c->responses[0].status, 200);
    assert_int_equal(c->lifespan_shutdowns, 1);
    assert_int_equal(c->shutdown_cbs, 1);
    assert_int_equal(c->shutdown_status, 0);
}

static void on_start_then_get_v6(casgi_server_t *server, int status, const char *message,
                                 void *data)
{
    ctx_t *c = data;
    c->start_cbs++;
    assert_int_equal(status, 0);
    client_start(c, "::1", get_hello, 1);
}

static void test_server_serves_a_request_over_ipv6_loopback(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    int err = casgi_server_listen_tcp(c->server, "::1", 0);
    if (err != 0) {
        print_message("IPv6 loopback unavailable (%s); skipping\n", casgi_err_name(err));
        skip();
    }
    c->port = casgi_server_get_port(c->server, 0);
    assert_true(c->port > 0);
    c->on_client_closed = shutdown_when_client_closed;
    assert_int_equal(casgi_server_start(c->server, on_start_then_get_v6, c), 0);
    run_loop(c);
    assert_int_equal(c->num_responses, 1);
    assert_int_equal(c->responses[0].status, 200);
    assert_memory_equal(c->responses[0].body, "ok", 2);
    assert_string_equal(c->last_client, "::1");
    assert_int_equal(c->lifespan_startups, 0); /* lifespan off */
    assert_int_equal(c->shutdown_cbs, 1);
}

static void test_server_listen_tcp_rejects_bad_host_and_port(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    assert_int_equal(casgi_server_listen_tcp(c->server, "not-an-address", 0), UV_EINVAL);
    assert_int_equal(casgi_server_listen_tcp(c->server, "localhost", 0), UV_EINVAL);
    assert_int_equal(casgi_server_listen_tcp(c->server, "256.0.0.1", 0), UV_EINVAL);
    assert_int_equal(casgi_server_listen_tcp(c->server, "", 0), UV_EINVAL);
    assert_int_equal(casgi_server_listen_tcp(c->server, NULL, 0), UV_EINVAL);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", -1), UV_EINVAL);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 65536), UV_EINVAL);
    assert_int_equal(casgi_server_get_port(c->server, 0), UV_EINVAL);
    shutdown_server(c);
    run_loop(c);
    assert_int_equal(c->shutdown_cbs, 1);
}

static void test_server_listen_on_a_port_in_use_fails(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    int port = casgi_server_get_port(c->server, 0);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", port), UV_EADDRINUSE);
    /* the failed listener is not reported as one */
    assert_int_equal(casgi_server_get_port(c->server, 0), port);
    assert_int_equal(casgi_server_get_port(c->server, 1), UV_EINVAL);
    shutdown_server(c);
    run_loop(c);
    assert_int_equal(c->shutdown_cbs, 1);
}

static void on_start_record(casgi_server_t *server, int status, const char *message, void *data)
{
    ctx_t *c = data;
    c->start_cbs++;
    c->start_status = status;
    if (message)
        snprintf(c->start_message, sizeof(c->start_message), "%s", message);
    shutdown_server(c);
}

static void test_server_start_twice_is_rejected(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    assert_int_equal(casgi_server_start(c->server, on_start_record, c), 0);
    assert_int_equal(casgi_server_start(c->server, on_start_record, c), CASGI_ESTATE);
    run_loop(c);
    assert_int_equal(c->start_cbs, 1); /* only the first start called back */
    assert_int_equal(c->start_status, 0);
    assert_int_equal(c->shutdown_cbs, 1);
    assert_int_equal(casgi_server_start(c->server, on_start_record, c), CASGI_ESTATE);
}

static void test_server_shutdown_twice_is_rejected(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    shutdown_server(c);
    assert_int_equal(casgi_server_shutdown(c->server, on_shutdown, c), CASGI_ESTATE);
    /* nothing new after shutdown began */
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), CASGI_ESTATE);
    assert_int_equal(casgi_server_start(c->server, on_start_record, c), CASGI_ESTATE);
    run_loop(c);
    assert_int_equal(c->shutdown_cbs, 1);
    assert_int_equal(c->shutdown_status, 0);
    assert_int_equal(casgi_server_shutdown(c->server, on_shutdown, c), CASGI_ESTATE);
    assert_int_equal(c->shutdown_cbs, 1);
    assert_int_equal(c->start_cbs, 0);
}

static void test_server_shutdown_without_listen_or_start_completes(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_AUTO);
    shutdown_server(c);
    run_loop(c);
    assert_int_equal(c->shutdown_cbs, 1);
    assert_int_equal(c->lifespan_startups, 0);
}

static void test_server_startup_failure_reports_the_apps_message(void **state)
{
    ctx_t *c = *state;
    c->lifespan_fail = 1;
    new_server(c, CASGI_LIFESPAN_ON);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    assert_int_equal(casgi_server_start(c->server, on_start_record, c), 0);
    assert_int_equal(c->start_cbs, 0);
    run_loop(c);
    assert_int_equal(c->lifespan_startups, 1);
    assert_int_equal(c->start_cbs, 1);
    assert_int_equal(c->start_status, CASGI_ESTARTUP);
    assert_string_equal(c->start_message, "database unreachable");
    assert_int_equal(c->http_calls, 0);
    assert_int_equal(c->lifespan_shutdowns, 0); /* the app already ended */
    assert_int_equal(c->shutdown_cbs, 1);
}

static void on_start_count(casgi_server_t *server, int status, const char *message, void *data)
{
    ctx_t *c = data;
    c->start_cbs++;
    c->start_status = status;
}

/*
 * The callback promise: casgi_server_start() returned 0, so its callback runs once, later, from
 * the embedder's uv_run(), also when the server has no listener (yet) and nothing else is on the
 * loop.
 */
static void test_server_start_without_listeners_still_calls_back(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    assert_int_equal(casgi_server_start(c->server, on_start_count, c), 0);
    assert_int_equal(c->start_cbs, 0);
    run_loop(c);
    assert_int_equal(c->start_cbs, 1);
    assert_int_equal(c->start_status, 0);
}

/* A shutdown that comes before the start was reported still completes the start, exactly once. */
static void test_server_shutdown_before_start_reported_cancels_the_start(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    assert_int_equal(casgi_server_start(c->server, on_start_count, c), 0);
    assert_int_equal(c->start_cbs, 0);
    shutdown_server(c);
    assert_int_equal(c->start_cbs, 1);
    assert_int_equal(c->start_status, CASGI_ECANCELED);
    run_loop(c);
    assert_int_equal(c->start_cbs, 1); /* the queued start did not report a second time */
    assert_int_equal(c->shutdown_cbs, 1);
    assert_int_equal(c->shutdown_status, 0);
}

static void on_start_then_get_twice(casgi_server_t *server, int status, const char *message,
                                    void *data)
{
    ctx_t *c = data;
    c->start_cbs++;
    assert_int_equal(status, 0);
    client_start(c, "127.0.0.1", get_twice, 2);
}

static void test_server_stats_count_requests_and_connections(void **state)
{
    ctx_t *c = *state;
    new_server(c, CASGI_LIFESPAN_OFF);
    casgi_server_stats_t st;
    memset(&st, 0xff, sizeof(st));
    casgi_server_stats(c->server, &st);
    assert_int_equal(st.requests_total, 0);
    assert_int_equal(st.connections_total, 0);
    assert_int_equal(st.connections_open, 0);
    assert_int_equal(st.calls_active, 0);

    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    c->port = casgi_server_get_port(c->server, 0);
    c->on_client_closed = shutdown_when_client_closed;
    assert_int_equal(casgi_server_start(c->server, on_start_then_get_twice, c), 0);
    run_loop(c);

    assert_int_equal(c->num_responses, 2);
    assert_int_equal(c->responses[0].status, 200);
    assert_int_equal(c->responses[1].status, 200);
    assert_int_equal(c->http_calls, 2);
    assert_string_equal(c->last_path, "/two");
    assert_string_equal(c->last_query, "n=2");
    /* both requests on one keep-alive connection */
    st = c->stats_while_connected;
    assert_int_equal(st.requests_total, 2);
    assert_int_equal(st.connections_total, 1);
    assert_int_equal(st.connections_open, 1);
    assert_int_equal(st.calls_active, 0);

    casgi_server_stats(c->server, &st);
    assert_int_equal(st.requests_total, 2);
    assert_int_equal(st.connections_total, 1);
    assert_int_equal(st.connections_open, 0);
    assert_int_equal(st.calls_active, 0);
}

static void on_tick(uv_timer_t *timer)
{
    ctx_t *c = timer->data;
    c->ticks++;
    if (c->ticks == 3)
        client_start(c, "127.0.0.1", get_hello, 1);
    /* keep ticking a while after the response, then stop everything */
    if (c->num_responses == 1 && !c->client.open && c->ticks >= c->ticks_at_response + 3 &&
        !c->shutdown_called) {
        shutdown_server(c);
        uv_close((uv_handle_t *)&c->tick, NULL);
        c->tick_open = 0;
    }
}

static void on_start_ticking(casgi_server_t *server, int status, const char *message, void *data)
{
    ctx_t *c = data;
    c->start_cbs++;
    assert_int_equal(status, 0);
    c->ticks_at_start = c->ticks;
}

static void test_server_leaves_the_embedders_timer_running(void **state)
{
    ctx_t *c = *state;
    assert_int_equal(uv_timer_init(&c->loop, &c->tick), 0);
    c->tick.data = c;
    c->tick_open = 1;
    assert_int_equal(uv_timer_start(&c->tick, on_tick, 1, 1), 0);

    new_server(c, CASGI_LIFESPAN_AUTO);
    assert_int_equal(casgi_server_listen_tcp(c->server, "127.0.0.1", 0), 0);
    c->port = casgi_server_get_port(c->server, 0);
    assert_int_equal(casgi_server_start(c->server, on_start_ticking, c), 0);
    run_loop(c);

    assert_int_equal(c->start_cbs, 1);
    assert_int_equal(c->num_responses, 1);
    assert_int_equal(c->responses[0].status, 200);
    assert_memory_equal(c->responses[0].body, "ok", 2);
    /* the timer ticked before the request, and kept ticking after it */
    assert_true(c->ticks_at_response >= 3);
    assert_true(c->ticks >= c->ticks_at_response + 3);
    assert_true(c->ticks > c->ticks_at_start);
    assert_int_equal(c->shutdown_cbs, 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_server_serves_a_request_over_loopback),
        T(test_server_shutdown_with_an_open_connection_runs_lifespan_shutdown),
        T(test_server_serves_a_request_over_ipv6_loopback),
        T(test_server_listen_tcp_rejects_bad_host_and_port),
        T(test_server_listen_on_a_port_in_use_fails),
        T(test_server_start_twice_is_rejected),
        T(test_server_shutdown_twice_is_rejected),
        T(test_server_shutdown_without_listen_or_start_completes),
        T(test_server_startup_failure_reports_the_apps_message),
        T(test_server_start_without_listeners_still_calls_back),
        T(test_server_shutdown_before_start_reported_cancels_the_start),
        T(test_server_stats_count_requests_and_connections),
        T(test_server_leaves_the_embedders_timer_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
