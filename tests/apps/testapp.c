/*
 * testapp: the app the integration tests load into the runner (tests/integration/).
 *
 * Routes are chosen by path (after root_path, when the path starts with it). Each route either
 * behaves well in one specific way (/scope lists the scope, /read-body checksums the body, /echo
 * streams the body back, /slow-ms/N answers late) or misbehaves in one specific way (fails before
 * or after the response started, sends a second start, sends after the response completed, ...)
 * and reports the return codes casgi gave it: in the response body when a response can still go
 * out, else in a log kept in this module (GET /log). Lifespan behaviour comes from the environment
 * variable CASGI_TEST_LIFESPAN: ok (default), ok-slow, fail, fail-slow, unsupported,
 * shutdown-fail.
 *
 * WebSocket scopes are routed the same way under /ws/ (echo, scope, subprotocol, accept-headers,
 * reject, deny, close/CODE, send-after-disconnect, fail-before-accept, fail-after-accept,
 * return-after-accept, slow-reader, flood/N, burst/N); their outcomes go to the log, and the HTTP
 * routes /ws-release and /ws-stats control and report the slow-reader and flood routes.
 *
 * Lines starting with "testapp:" go to stderr at the moments the tests need to observe (lifespan
 * events, a slow request started or finished).
 *
 * This is test code: the module keeps a little global state (the log, counters), which a real app
 * would hang off casgi_app_t.data.
 */
/* uv.h needs POSIX types (pthread_rwlock_t) that strict C11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <casgi.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TESTAPP_EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------------------------------- */
/* Global test state                                                                            */
/* ------------------------------------------------------------------------------------------- */

static char g_log[16384];
static size_t g_log_len;
static unsigned g_lifespan_calls;
static unsigned g_http_calls;
static char g_state[] = "state-from-startup";

/* Appends one line to the log that GET /log returns. */
static void record(const char *fmt, ...)
{
    va_list ap;
    int n;

    if (g_log_len >= sizeof(g_log) - 2)
        return;
    va_start(ap, fmt);
    n = vsnprintf(g_log + g_log_len, sizeof(g_log) - 1 - g_log_len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    g_log_len += (size_t)n;
    if (g_log_len > sizeof(g_log) - 2)
        g_log_len = sizeof(g_log) - 2;
    g_log[g_log_len++] = '\n';
    g_log[g_log_len] = '\0';
}

static void say(const char *fmt, ...)
{
    va_list ap;

    fputs("testapp: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* ------------------------------------------------------------------------------------------- */
/* A growable string                                                                            */
/* ------------------------------------------------------------------------------------------- */

typedef struct sbuf_s {
    char *base;
    size_t len;
    size_t cap;
    int failed;
} sbuf_t;

static void sb_put(sbuf_t *sb, const char *p, size_t n)
{
    if (sb->failed)
        return;
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        char *nb;
        while (cap < sb->len + n + 1)
            cap *= 2;
        nb = realloc(sb->base, cap);
        if (nb == NULL) {
            sb->failed = 1;
            return;
        }
        sb->base = nb;
        sb->cap = cap;
    }
    memcpy(sb->base + sb->len, p, n);
    sb->len += n;
    sb->base[sb->len] = '\0';
}

static void sb_printf(sbuf_t *sb, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    sb_put(sb, tmp, (size_t)n);
}

/* Bytes as printable ASCII: anything outside 0x21..0x7e except space, and the backslash itself,
 * becomes \xNN (the tests undo it). */
static void sb_escaped(sbuf_t *sb, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x7f || c == '\\')
            sb_printf(sb, "\\x%02x", c);
        else
            sb_put(sb, (const char *)&p[i], 1);
    }
}

static void sb_free(sbuf_t *sb)
{
    free(sb->base);
    sb->base = NULL;
    sb->len = sb->cap = 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Per-request state                                                                            */
/* ------------------------------------------------------------------------------------------- */

typedef struct req_s req_t;
typedef void (*req_step_fn)(req_t *r);

struct req_s {
    casgi_call_t *call;
    const casgi_scope_t *scope;
    const char *route;  /* the route name, for messages */
    casgi_bytes_t rest; /* the path after the route prefix */
    uint64_t param;     /* the number after the route, when it takes one */

    uv_timer_t timer;
    int timer_inited;
    int ended;

    /* request body */
    uint64_t body_len;
    uint32_t body_sum; /* FNV-1a 32 */
    unsigned body_events;
    int body_done;
    req_step_fn after_body; /* runs once the whole body was received */

    /* response streaming */
    uint64_t sent;
};

static void on_req_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Ends the call and releases the request. Safe against the ECANCELED callbacks that
 * casgi_call_end() runs before it returns: they see r->ended and do nothing. */
static void finish(req_t *r, int error)
{
    int rc;

    r->ended = 1;
    rc = casgi_call_end(r->call, error);
    if (rc != 0)
        say("casgi_call_end(%s) returned %d", r->route, rc);
    if (r->timer_inited) {
        uv_close((uv_handle_t *)&r->timer, on_req_timer_closed);
    } else {
        free(r);
    }
}

static void start_timer(req_t *r, uint64_t ms, uv_timer_cb cb)
{
    if (!r->timer_inited) {
        uv_timer_init(casgi_call_get_loop(r->call), &r->timer);
        r->timer.data = r;
        r->timer_inited = 1;
    }
    uv_timer_start(&r->timer, cb, ms, 0);
}

static int send_start(req_t *r, int status, const casgi_header_t *headers, size_t n, int trailers)
{
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_START};

    ev.start.status = status;
    ev.start.headers = headers;
    ev.start.num_headers = n;
    ev.start.trailers = trailers;
    return casgi_send(r->call, &ev, NULL, NULL);
}

static int send_body(req_t *r, const char *p, size_t n, int more, casgi_send_cb cb)
{
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_BODY};

    ev.body.body.base = p;
    ev.body.body.len = n;
    ev.body.more_body = more;
    return casgi_send(r->call, &ev, cb, cb ? r : NULL);
}

/* A complete response with Content-Length. Returns the first error. */
static int respond(req_t *r, int status, const char *body, size_t len)
{
    char clen[32];
    casgi_header_t h[2];
    int rc;

    snprintf(clen, sizeof(clen), "%zu", len);
    h[0].name = CASGI_BYTES("content-type");
    h[0].value = CASGI_BYTES("text/plain; charset=utf-8");
    h[1].name = CASGI_BYTES("content-length");
    h[1].value = CASGI_STR(clen);
    rc = send_start(r, status, h, 2, 0);
    if (rc != 0)
        return rc;
    return send_body(r, body, len, 0, NULL);
}

static void respond_and_finish(req_t *r, int status, const char *body, size_t len)
{
    int rc = respond(r, status, body, len);
    if (rc != 0)
        record("%s: respond=%d", r->route, rc);
    finish(r, 0);
}

static void respond_sb_and_finish(req_t *r, int status, sbuf_t *sb)
{
    if (sb->failed) {
        sb_free(sb);
        finish(r, CASGI_ENOMEM);
        return;
    }
    respond_and_finish(r, status, sb->base ? sb->base : "", sb->len);
    sb_free(sb);
}

/* ------------------------------------------------------------------------------------------- */
/* Reading the request body                                                                     */
/* ------------------------------------------------------------------------------------------- */

static void on_body_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data);

static void read_more(req_t *r)
{
    int rc = casgi_receive(r->call, on_body_event, r);
    if (rc != 0) {
        record("%s: receive=%d", r->route, rc);
        finish(r, rc);
    }
}

/* Receives the whole body, keeping its length and checksum, then runs r->after_body. A
 * disconnect before the end is recorded in the log and ends the call. */
static void read_body(req_t *r, req_step_fn then)
{
    r->after_body = then;
    r->body_sum = 2166136261u;
    read_more(r);
}

static void on_body_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    req_t *r = data;
    size_t i;

    if (r->ended)
        return;
    if (status != 0) {
        record("%s: receive status=%d", r->route, status);
        finish(r, status);
        return;
    }
    if (ev->type == CASGI_EVENT_HTTP_DISCONNECT) {
        record("%s: disconnect after %" PRIu64 " bytes", r->route, r->body_len);
        say("%s disconnected", r->route);
        finish(r, 0);
        return;
    }
    if (ev->type != CASGI_EVENT_HTTP_REQUEST) {
        record("%s: unexpected event %d", r->route, (int)ev->type);
        finish(r, -1);
        return;
    }
    r->body_events++;
    r->body_len += ev->request.body.len;
    for (i = 0; i < ev->request.body.len; i++) {
        r->body_sum ^= (unsigned char)ev->request.body.base[i];
        r->body_sum *= 16777619u;
    }
    if (ev->request.more_body) {
        read_more(r);
        return;
    }
    r->body_done = 1;
    r->after_body(r);
}

/* ------------------------------------------------------------------------------------------- */
/* Well-behaved routes                                                                          */
/* ------------------------------------------------------------------------------------------- */

static void route_ok(req_t *r)
{
    respond_and_finish(r, 200, "ok", 2);
}

static void route_log(req_t *r)
{
    respond_and_finish(r, 200, g_log, g_log_len);
}

static void route_counters(req_t *r)
{
    sbuf_t sb = {0};

    sb_printf(&sb, "lifespan_calls=%u\nhttp_calls=%u\n", g_lifespan_calls, g_http_calls);
    respond_sb_and_finish(r, 200, &sb);
}

static void put_bytes_line(sbuf_t *sb, const char *key, casgi_bytes_t b)
{
    sb_printf(sb, "%s=", key);
    sb_escaped(sb, b.base, b.len);
    sb_put(sb, "\n", 1);
}

static void put_str_line(sbuf_t *sb, const char *key, const char *s)
{
    if (s == NULL)
        sb_printf(sb, "%s=None\n", key);
    else
        put_bytes_line(sb, key, CASGI_STR(s));
}

/* The scope, one "key=value" line each; headers as "header=name: value" in order; for a
 * websocket scope also "subprotocol=..." lines, in order. */
static void put_scope(sbuf_t *sb, const casgi_scope_t *s)
{
    size_t i;

    sb_printf(sb, "type=%s\n",
              s->type == CASGI_SCOPE_HTTP        ? "http"
              : s->type == CASGI_SCOPE_WEBSOCKET ? "websocket"
                                                 : "other");
    put_str_line(sb, "asgi_version", s->asgi_version);
    put_str_line(sb, "spec_version", s->spec_version);
    put_str_line(sb, "http_version", s->http_version);
    put_bytes_line(sb, "method", s->method);
    put_str_line(sb, "scheme", s->scheme);
    put_bytes_line(sb, "path", s->path);
    put_bytes_line(sb, "raw_path", s->raw_path);
    put_bytes_line(sb, "query_string", s->query_string);
    put_bytes_line(sb, "root_path", s->root_path);
    put_str_line(sb, "client_host", s->client.host);
    sb_printf(sb, "client_port=%d\n", s->client.port);
    put_str_line(sb, "server_host", s->server.host);
    sb_printf(sb, "server_port=%d\n", s->server.port);
    if (s->state == NULL)
        sb_printf(sb, "state=NULL\n");
    else if (s->state == (void *)g_state)
        sb_printf(sb, "state=%s\n", g_state);
    else
        sb_printf(sb, "state=unknown\n");
    sb_printf(sb, "extensions=%u\n", s->extensions);
    if (s->type == CASGI_SCOPE_WEBSOCKET) {
        sb_printf(sb, "num_subprotocols=%zu\n", s->num_subprotocols);
        for (i = 0; i < s->num_subprotocols; i++)
            put_bytes_line(sb, "subprotocol", s->subprotocols[i]);
    }
    sb_printf(sb, "num_headers=%zu\n", s->num_headers);
    for (i = 0; i < s->num_headers; i++) {
        sb_put(sb, "header=", 7);
        sb_escaped(sb, s->headers[i].name.base, s->headers[i].name.len);
        sb_put(sb, ": ", 2);
        sb_escaped(sb, s->headers[i].value.base, s->headers[i].value.len);
        sb_put(sb, "\n", 1);
    }
}

static void route_scope(req_t *r)
{
    sbuf_t sb = {0};

    put_scope(&sb, r->scope);
    respond_sb_and_finish(r, 200, &sb);
}

static void read_body_done(req_t *r)
{
    sbuf_t sb = {0};

    sb_printf(&sb, "len=%" PRIu64 " sum=%08" PRIx32 " events=%u\n", r->body_len, r->body_sum,
              r->body_events);
    respond_sb_and_finish(r, 200, &sb);
}

static void route_read_body(req_t *r)
{
    read_body(r, read_body_done);
}

/* /echo: streams the body back as it arrives, one receive per completed send (backpressure). */
static void on_echo_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data);

static void on_echo_sent(casgi_call_t *call, int status, void *data)
{
    req_t *r = data;
    int rc;

    if (r->ended)
        return;
    if (status != 0) {
        record("echo: send status=%d", status);
        finish(r, status);
        return;
    }
    rc = casgi_receive(r->call, on_echo_event, r);
    if (rc != 0) {
        record("echo: receive=%d", rc);
        finish(r, rc);
    }
}

static void on_echo_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    req_t *r = data;
    int rc;

    if (r->ended)
        return;
    if (status != 0 || ev->type != CASGI_EVENT_HTTP_REQUEST) {
        record("echo: receive status=%d type=%d", status, ev ? (int)ev->type : 0);
        finish(r, status != 0 ? status : -1);
        return;
    }
    if (!ev->request.more_body) {
        rc = send_body(r, ev->request.body.base, ev->request.body.len, 0, NULL);
        if (rc != 0)
            record("echo: final send=%d", rc);
        finish(r, rc);
        return;
    }
    rc = send_body(r, ev->request.body.base, ev->request.body.len, 1, on_echo_sent);
    if (rc != 0) {
        record("echo: send=%d", rc);
        finish(r, rc);
    }
}

static void route_echo(req_t *r)
{
    static const casgi_header_t h[] = {
        {{"content-type", 12}, {"application/octet-stream", 24}},
    };
    int rc = send_start(r, 200, h, 1, 0);

    if (rc != 0) {
        record("echo: start=%d", rc);
        finish(r, rc);
        return;
    }
    rc = casgi_receive(r->call, on_echo_event, r);
    if (rc != 0) {
        record("echo: receive=%d", rc);
        finish(r, rc);
    }
}

/* /chunks/N: N body events "chunk-i\n", then an empty final one; no Content-Length. */
static void route_chunks(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-type", 12}, {"text/plain", 10}}};
    char piece[32];
    uint64_t i;
    int rc = send_start(r, 200, h, 1, 0);

    for (i = 0; rc == 0 && i < r->param; i++) {
        int n = snprintf(piece, sizeof(piece), "chunk-%" PRIu64 "\n", i);
        rc = send_body(r, piece, (size_t)n, 1, NULL);
    }
    if (rc == 0)
        rc = send_body(r, NULL, 0, 0, NULL);
    if (rc != 0)
        record("chunks: send=%d", rc);
    finish(r, 0);
}

/* /empty: no Content-Length, one empty final body. */
static void route_empty(req_t *r)
{
    int rc = send_start(r, 200, NULL, 0, 0);

    if (rc == 0)
        rc = send_body(r, NULL, 0, 0, NULL);
    if (rc != 0)
        record("empty: send=%d", rc);
    finish(r, 0);
}

/* /big/N: N bytes (byte i is i % 251) in 64 KiB pieces, one piece per completed send. */
static void big_next(req_t *r);

static void on_big_sent(casgi_call_t *call, int status, void *data)
{
    req_t *r = data;

    if (r->ended)
        return;
    if (status != 0) {
        record("big: send status=%d after %" PRIu64, status, r->sent);
        finish(r, status);
        return;
    }
    big_next(r);
}

static void big_next(req_t *r)
{
    unsigned char piece[65536];
    size_t n = sizeof(piece), i;
    int more, rc;

    if (r->param - r->sent < n)
        n = (size_t)(r->param - r->sent);
    for (i = 0; i < n; i++)
        piece[i] = (unsigned char)((r->sent + i) % 251);
    r->sent += n;
    more = r->sent < r->param;
    rc = send_body(r, (const char *)piece, n, more, more ? on_big_sent : NULL);
    if (rc != 0) {
        record("big: send=%d", rc);
        finish(r, rc);
        return;
    }
    if (!more)
        finish(r, 0);
}

static void route_big(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-type", 12}, {"application/octet-stream", 24}}};
    int rc = send_start(r, 200, h, 1, 0);

    if (rc != 0) {
        finish(r, rc);
        return;
    }
    big_next(r);
}

/* /status/N: that status; 204, 304 and 1xx with an empty body, others with a short text. */
static void route_status(req_t *r)
{
    char body[64];
    int status = (int)r->param;
    int rc;

    if (status == 204 || status == 304 || status < 200) {
        rc = send_start(r, status, NULL, 0, 0);
        if (rc == 0)
            rc = send_body(r, NULL, 0, 0, NULL);
        if (rc != 0)
            record("status: send=%d", rc);
        finish(r, 0);
        return;
    }
    snprintf(body, sizeof(body), "status %d\n", status);
    respond_and_finish(r, status, body, strlen(body));
}

/* /headers-out: repeated and mixed-case response headers. */
static void route_headers_out(req_t *r)
{
    static const casgi_header_t h[] = {
        {{"X-Multi", 7}, {"a", 1}},
        {{"X-Multi", 7}, {"b", 1}},
        {{"X-Case", 6}, {"MiXeD", 5}},
        {{"content-length", 14}, {"2", 1}},
    };
    int rc = send_start(r, 200, h, 4, 0);

    if (rc == 0)
        rc = send_body(r, "ok", 2, 0, NULL);
    if (rc != 0)
        record("headers-out: send=%d", rc);
    finish(r, 0);
}

/* /slow-ms/N: answers after N ms; listens for http.disconnect meanwhile (as a well-behaved app
 * does), so that a server aborting the request lets it end at once. */
static void on_slow_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data);

static void on_slow_timer(uv_timer_t *t)
{
    req_t *r = t->data;
    char body[64];
    int rc;

    snprintf(body, sizeof(body), "slept %" PRIu64, r->param);
    rc = respond(r, 200, body, strlen(body));
    if (rc != 0)
        record("slow-ms: respond=%d", rc);
    say("slow-ms %" PRIu64 " done rc=%d", r->param, rc);
    finish(r, 0);
}

static void on_slow_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    req_t *r = data;
    int rc;

    if (r->ended)
        return;
    if (status != 0) {
        record("slow-ms: receive status=%d", status);
        return; /* the timer still answers */
    }
    if (ev->type == CASGI_EVENT_HTTP_DISCONNECT) {
        record("slow-ms: disconnected");
        say("slow-ms %" PRIu64 " disconnected", r->param);
        uv_timer_stop(&r->timer);
        finish(r, 0);
        return;
    }
    rc = casgi_receive(r->call, on_slow_event, r);
    if (rc != 0)
        record("slow-ms: receive=%d", rc);
}

static void route_slow(req_t *r)
{
    int rc;

    say("slow-ms %" PRIu64 " started", r->param);
    start_timer(r, r->param, on_slow_timer);
    rc = casgi_receive(r->call, on_slow_event, r);
    if (rc != 0)
        record("slow-ms: receive=%d", rc);
}

/* /slow-deaf-ms/N: answers after N ms and never receives (ignores disconnects). */
static void on_slow_deaf_timer(uv_timer_t *t)
{
    req_t *r = t->data;
    char body[64];
    int rc;

    snprintf(body, sizeof(body), "slept %" PRIu64, r->param);
    rc = respond(r, 200, body, strlen(body));
    record("slow-deaf-ms: respond=%d", rc);
    say("slow-deaf-ms %" PRIu64 " done rc=%d", r->param, rc);
    finish(r, 0);
}

static void route_slow_deaf(req_t *r)
{
    say("slow-deaf-ms %" PRIu64 " started", r->param);
    start_timer(r, r->param, on_slow_deaf_timer);
}

/* /trailers: chunked body in two events, then trailers. */
static void route_trailers(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-type", 12}, {"text/plain", 10}},
                                       {{"trailer", 7}, {"x-checksum", 10}}};
    static const casgi_header_t t[] = {{{"x-checksum", 10}, {"abcdef", 6}},
                                       {{"x-extra", 7}, {"1", 1}}};
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_TRAILERS};
    int rc_start, rc_b1, rc_b2, rc_t;

    if (!(r->scope->extensions & CASGI_EXT_HTTP_RESPONSE_TRAILERS)) {
        respond_and_finish(r, 500, "no trailers extension", 21);
        return;
    }
    rc_start = send_start(r, 200, h, 2, 1);
    rc_b1 = send_body(r, "abc", 3, 1, NULL);
    rc_b2 = send_body(r, "def", 3, 0, NULL);
    ev.trailers.headers = t;
    ev.trailers.num_headers = 2;
    ev.trailers.more_trailers = 0;
    rc_t = casgi_send(r->call, &ev, NULL, NULL);
    record("trailers: start=%d body1=%d body2=%d trailers=%d", rc_start, rc_b1, rc_b2, rc_t);
    finish(r, 0);
}

/* /expect: reads the body (so "100 Continue" goes out), then answers with its length. */
static void route_expect(req_t *r)
{
    read_body(r, read_body_done);
}

/* /expect-no-read: answers 417 without ever receiving. */
static void route_expect_no_read(req_t *r)
{
    respond_and_finish(r, 417, "expectation failed", 18);
}

/* ------------------------------------------------------------------------------------------- */
/* Misbehaving routes                                                                           */
/* ------------------------------------------------------------------------------------------- */

static void route_fail_before_start(req_t *r)
{
    finish(r, -1);
}

static void route_no_response(req_t *r)
{
    finish(r, 0);
}

/* Starts a chunked response, sends part of it, then fails (error != 0) or returns (error == 0). */
static void partial_then_end(req_t *r, int error)
{
    static const casgi_header_t h[] = {{{"content-type", 12}, {"text/plain", 10}}};
    int rc1 = send_start(r, 200, h, 1, 0);
    int rc2 = send_body(r, "partial", 7, 1, NULL);

    record("%s: start=%d body=%d", r->route, rc1, rc2);
    finish(r, error);
}

static void route_fail_after_start(req_t *r)
{
    partial_then_end(r, -1);
}

static void route_partial(req_t *r)
{
    partial_then_end(r, 0);
}

/* Declares Content-Length 100, sends 10 bytes, returns. */
static void route_partial_cl(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-length", 14}, {"100", 3}}};
    int rc1 = send_start(r, 200, h, 1, 0);
    int rc2 = send_body(r, "0123456789", 10, 1, NULL);

    record("partial-cl: start=%d body=%d", rc1, rc2);
    finish(r, 0);
}

static void route_duplicate_start(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-type", 12}, {"text/plain", 10}}};
    char body[128];
    int rc1 = send_start(r, 200, h, 1, 0);
    int rc2 = send_start(r, 201, h, 1, 0);
    int rc3;

    snprintf(body, sizeof(body), "first_start=%d second_start=%d", rc1, rc2);
    rc3 = send_body(r, body, strlen(body), 0, NULL);
    record("duplicate-start: first_start=%d second_start=%d body=%d", rc1, rc2, rc3);
    finish(r, 0);
}

static void route_body_before_start(req_t *r)
{
    char body[128];
    int rc1 = send_body(r, "oops", 4, 0, NULL);

    snprintf(body, sizeof(body), "body_before_start=%d", rc1);
    respond_and_finish(r, 200, body, strlen(body));
}

static void route_after_complete(req_t *r)
{
    casgi_event_t tr = {.type = CASGI_EVENT_HTTP_RESPONSE_TRAILERS};
    int rc0 = respond(r, 200, "done", 4);
    int rc1 = send_body(r, "x", 1, 0, NULL);
    int rc2 = send_start(r, 200, NULL, 0, 0);
    int rc3 = casgi_send(r->call, &tr, NULL, NULL);

    record("after_complete: respond=%d body=%d start=%d trailers=%d", rc0, rc1, rc2, rc3);
    finish(r, 0);
}

static void route_cl_mismatch(req_t *r)
{
    static const char twenty[] = "01234567890123456789";
    static const casgi_header_t h[] = {{{"content-length", 14}, {"10", 2}}};
    int rc1 = send_start(r, 200, h, 1, 0);
    int rc2 = send_body(r, twenty, 20, 0, NULL);

    record("content_length_mismatch: start=%d body=%d", rc1, rc2);
    finish(r, 0);
}

static void route_cl_short(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-length", 14}, {"10", 2}}};
    int rc1 = send_start(r, 200, h, 1, 0);
    int rc2 = send_body(r, "01234", 5, 0, NULL);

    record("content_length_short: start=%d body=%d", rc1, rc2);
    finish(r, 0);
}

static void route_cl_split(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-length", 14}, {"10", 2}}};
    int rc1 = send_start(r, 200, h, 1, 0);
    int rc2 = send_body(r, "01234", 5, 1, NULL);
    int rc3 = send_body(r, "56789", 5, 0, NULL);

    record("content_length_split: start=%d body1=%d body2=%d", rc1, rc2, rc3);
    finish(r, 0);
}

static void route_bad_header(req_t *r)
{
    static const char nul_value[] = {'a', '\0', 'b'};
    const casgi_header_t crlf[] = {{CASGI_BYTES("x-bad"), CASGI_BYTES("a\r\nx-injected: 1")}};
    const casgi_header_t lf[] = {{CASGI_BYTES("x-bad"), CASGI_BYTES("a\nx-injected: 1")}};
    const casgi_header_t cr[] = {{CASGI_BYTES("x-bad"), CASGI_BYTES("a\rx-injected: 1")}};
    const casgi_header_t nul[] = {{CASGI_BYTES("x-bad"), {nul_value, sizeof(nul_value)}}};
    const casgi_header_t space_name[] = {{CASGI_BYTES("bad name"), CASGI_BYTES("v")}};
    const casgi_header_t colon_name[] = {{CASGI_BYTES("x-injected: 1\r\nx"), CASGI_BYTES("v")}};
    const casgi_header_t empty_name[] = {{CASGI_BYTES(""), CASGI_BYTES("v")}};
    char body[256];
    int rc_crlf = send_start(r, 200, crlf, 1, 0);
    int rc_lf = send_start(r, 200, lf, 1, 0);
    int rc_cr = send_start(r, 200, cr, 1, 0);
    int rc_nul = send_start(r, 200, nul, 1, 0);
    int rc_space = send_start(r, 200, space_name, 1, 0);
    int rc_colon = send_start(r, 200, colon_name, 1, 0);
    int rc_empty = send_start(r, 200, empty_name, 1, 0);

    snprintf(body, sizeof(body),
             "crlf_value=%d lf_value=%d cr_value=%d nul_value=%d space_name=%d "
             "crlf_name=%d empty_name=%d",
             rc_crlf, rc_lf, rc_cr, rc_nul, rc_space, rc_colon, rc_empty);
    respond_and_finish(r, 200, body, strlen(body));
}

static void route_bad_status(req_t *r)
{
    char body[256];
    int rc_99 = send_start(r, 99, NULL, 0, 0);
    int rc_1000 = send_start(r, 1000, NULL, 0, 0);
    int rc_101 = send_start(r, 101, NULL, 0, 0);
    int rc_0 = send_start(r, 0, NULL, 0, 0);
    int rc_neg = send_start(r, -200, NULL, 0, 0);

    snprintf(body, sizeof(body), "status_99=%d status_1000=%d status_101=%d status_0=%d status_neg=%d",
             rc_99, rc_1000, rc_101, rc_0, rc_neg);
    respond_and_finish(r, 200, body, strlen(body));
}

static void route_bad_event(req_t *r)
{
    casgi_event_t lifespan_ev = {.type = CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE};
    casgi_event_t request_ev = {.type = CASGI_EVENT_HTTP_REQUEST};
    casgi_event_t disconnect_ev = {.type = CASGI_EVENT_HTTP_DISCONNECT};
    casgi_event_t unknown_ev = {.type = (casgi_event_type_t)999};
    char body[256];
    int rc_l = casgi_send(r->call, &lifespan_ev, NULL, NULL);
    int rc_r = casgi_send(r->call, &request_ev, NULL, NULL);
    int rc_d = casgi_send(r->call, &disconnect_ev, NULL, NULL);
    int rc_u = casgi_send(r->call, &unknown_ev, NULL, NULL);

    snprintf(body, sizeof(body), "lifespan_event=%d request_event=%d disconnect_event=%d "
             "unknown_event=%d", rc_l, rc_r, rc_d, rc_u);
    respond_and_finish(r, 200, body, strlen(body));
}

/* /double-receive: a second receive while one is pending must be refused (CASGI_EBUSY). */
static int g_second_receive;

static void double_receive_done(req_t *r)
{
    char body[64];

    snprintf(body, sizeof(body), "second_receive=%d", g_second_receive);
    respond_and_finish(r, 200, body, strlen(body));
}

static void on_never_called(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    record("double-receive: the refused receive's callback ran (status=%d)", status);
}

static void route_double_receive(req_t *r)
{
    int rc;

    r->after_body = double_receive_done;
    r->body_sum = 2166136261u;
    rc = casgi_receive(r->call, on_body_event, r);
    if (rc != 0) {
        record("double-receive: first receive=%d", rc);
        finish(r, rc);
        return;
    }
    g_second_receive = casgi_receive(r->call, on_never_called, NULL);
}

/* /disconnect-wait: receives until http.disconnect, which lands in the log. */
static void on_disconnect_wait_event(casgi_call_t *call, int status, const casgi_event_t *ev,
                                     void *data)
{
    req_t *r = data;
    int rc;

    if (r->ended)
        return;
    if (status != 0) {
        record("disconnect_wait: status=%d", status);
        finish(r, status);
        return;
    }
    if (ev->type == CASGI_EVENT_HTTP_DISCONNECT) {
        record("disconnect_wait: disconnect bytes=%" PRIu64 " events=%u body_done=%d",
               r->body_len, r->body_events, r->body_done);
        say("disconnect-wait got http.disconnect");
        finish(r, 0);
        return;
    }
    r->body_events++;
    r->body_len += ev->request.body.len;
    if (!ev->request.more_body)
        r->body_done = 1;
    rc = casgi_receive(r->call, on_disconnect_wait_event, r);
    if (rc != 0) {
        record("disconnect_wait: receive=%d", rc);
        finish(r, rc);
    }
}

static void route_disconnect_wait(req_t *r)
{
    int rc = casgi_receive(r->call, on_disconnect_wait_event, r);
    if (rc != 0) {
        record("disconnect_wait: receive=%d", rc);
        finish(r, rc);
    }
}

/* /send-after-disconnect/N: reads the body, waits N ms (the client leaves meanwhile), sends. */
static void on_send_after_disconnect_timer(uv_timer_t *t)
{
    req_t *r = t->data;
    int rc1 = send_start(r, 200, NULL, 0, 0);
    int rc2 = send_body(r, "late", 4, 0, NULL);

    record("send_after_disconnect: start=%d body=%d", rc1, rc2);
    say("send-after-disconnect sent: start=%d body=%d", rc1, rc2);
    finish(r, 0);
}

static void send_after_disconnect_wait(req_t *r)
{
    say("send-after-disconnect waiting");
    start_timer(r, r->param ? r->param : 300, on_send_after_disconnect_timer);
}

static void route_send_after_disconnect(req_t *r)
{
    read_body(r, send_after_disconnect_wait);
}

/* /no-read-then-respond: answers at once without reading the body. */
static void route_no_read(req_t *r)
{
    respond_and_finish(r, 200, "early", 5);
}

/* /read-after-response: answers first, then receives; the result lands in the log. */
static void on_read_after_response(casgi_call_t *call, int status, const casgi_event_t *ev,
                                   void *data)
{
    req_t *r = data;

    if (r->ended)
        return;
    record("read_after_response: status=%d type=%s", status,
           ev ? casgi_event_type_name(ev->type) : "none");
    finish(r, 0);
}

static void route_read_after_response(req_t *r)
{
    int rc = respond(r, 200, "responded", 9);

    if (rc != 0)
        record("read_after_response: respond=%d", rc);
    rc = casgi_receive(r->call, on_read_after_response, r);
    if (rc != 0) {
        record("read_after_response: receive=%d", rc);
        finish(r, 0);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* WebSocket routes                                                                             */
/* ------------------------------------------------------------------------------------------- */

/*
 * Every websocket call first receives websocket.connect, then does the one thing its route is
 * for. Log lines name the route and carry the query string in brackets ("ws-echo[id=7]: ..."), so
 * a test finds the lines of its own connection; the lines a test may need after the runner has
 * exited (a disconnect during shutdown) also go to stderr.
 */

typedef struct ws_s ws_t;
typedef void (*ws_step_fn)(ws_t *w);

struct ws_s {
    casgi_call_t *call;
    const casgi_scope_t *scope;
    const char *route; /* "echo", "close", ... */
    uint64_t param;    /* the number after the route, when it takes one */
    char tag[64];      /* the query string, printable bytes only */
    ws_step_fn on_connect;
    int ended;

    /* received */
    uint64_t messages;
    uint64_t bytes;

    /* /ws/flood */
    uint64_t sent;
    size_t size;
    unsigned char *payload;

    /* /ws/slow-reader: parked until GET /ws-release */
    ws_t *next_waiting;
    int waiting;
};

static ws_t *g_ws_waiting;
static unsigned g_ws_calls;
static uint64_t g_flood_sent;
static uint64_t g_flood_bytes;
static uint64_t g_slow_messages;
static uint64_t g_slow_bytes;

/* `b` with testapp's \xNN escaping into `out` (truncated to fit, always NUL-terminated). */
static const char *escape_into(char *out, size_t size, casgi_bytes_t b)
{
    size_t i, o = 0;

    for (i = 0; i < b.len && o + 5 < size; i++) {
        unsigned char c = (unsigned char)b.base[i];
        if (c < 0x20 || c >= 0x7f || c == '\\')
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

static void ws_unpark(ws_t *w)
{
    ws_t **p;

    if (!w->waiting)
        return;
    for (p = &g_ws_waiting; *p != NULL; p = &(*p)->next_waiting) {
        if (*p == w) {
            *p = w->next_waiting;
            break;
        }
    }
    w->next_waiting = NULL;
    w->waiting = 0;
}

/* Ends the call and frees the state; the ECANCELED callbacks that casgi_call_end() runs see
 * w->ended and do nothing. */
static void ws_finish(ws_t *w, int error)
{
    int rc;

    w->ended = 1;
    ws_unpark(w);
    rc = casgi_call_end(w->call, error);
    if (rc != 0)
        say("casgi_call_end(ws-%s) returned %d", w->route, rc);
    free(w->payload);
    free(w);
}

static int ws_accept(ws_t *w, casgi_bytes_t subprotocol, const casgi_header_t *h, size_t n)
{
    casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_ACCEPT};

    ev.accept.subprotocol = subprotocol;
    ev.accept.headers = h;
    ev.accept.num_headers = n;
    return casgi_send(w->call, &ev, NULL, NULL);
}

static int ws_send(ws_t *w, int is_text, const void *p, size_t n, casgi_send_cb cb)
{
    casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_SEND};

    ev.message.is_text = is_text;
    ev.message.data.base = p;
    ev.message.data.len = n;
    return casgi_send(w->call, &ev, cb, cb ? w : NULL);
}

static int ws_close(ws_t *w, int code, casgi_bytes_t reason)
{
    casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_CLOSE};

    ev.close.code = code;
    ev.close.reason = reason;
    return casgi_send(w->call, &ev, NULL, NULL);
}

/* Receives into `cb`; a refused receive is logged and ends the call. Returns 0 or the error. */
static int ws_receive(ws_t *w, casgi_receive_cb cb)
{
    int rc = casgi_receive(w->call, cb, w);

    if (rc != 0) {
        record("ws-%s[%s]: receive=%d", w->route, w->tag, rc);
        ws_finish(w, rc);
    }
    return rc;
}

/* Accepts; a refused accept is logged and ends the call. Returns 0 or the error. */
static int ws_accept_or_finish(ws_t *w, casgi_bytes_t subprotocol, const casgi_header_t *h,
                               size_t n)
{
    int rc = ws_accept(w, subprotocol, h, n);

    if (rc != 0) {
        record("ws-%s[%s]: accept=%d", w->route, w->tag, rc);
        ws_finish(w, rc);
    }
    return rc;
}

static void ws_log_disconnect(ws_t *w, const casgi_event_t *ev)
{
    char reason[600];

    escape_into(reason, sizeof(reason), ev->close.reason);
    record("ws-%s[%s]: disconnect code=%d reason=%s messages=%" PRIu64 " bytes=%" PRIu64, w->route,
           w->tag, ev->close.code, reason, w->messages, w->bytes);
    say("ws-%s[%s]: disconnect code=%d reason=%s messages=%" PRIu64 " bytes=%" PRIu64, w->route,
        w->tag, ev->close.code, reason, w->messages, w->bytes);
}

/* Handles the statuses and event types every receive loop treats alike. Returns 1 when `ev` is
 * a websocket.receive for the caller, 0 when the call was dealt with (and maybe ended). */
static int ws_receive_common(ws_t *w, int status, const casgi_event_t *ev)
{
    if (w->ended)
        return 0;
    if (status != 0) {
        record("ws-%s[%s]: receive status=%d", w->route, w->tag, status);
        ws_finish(w, status);
        return 0;
    }
    if (ev->type == CASGI_EVENT_WEBSOCKET_DISCONNECT) {
        ws_log_disconnect(w, ev);
        ws_finish(w, 0);
        return 0;
    }
    if (ev->type != CASGI_EVENT_WEBSOCKET_RECEIVE) {
        record("ws-%s[%s]: unexpected event %s", w->route, w->tag, casgi_event_type_name(ev->type));
        ws_finish(w, -1);
        return 0;
    }
    w->messages++;
    w->bytes += ev->message.data.len;
    return 1;
}

/* The echo loop: each message goes back as it came (text as text, bytes as bytes); the next
 * receive waits for the send callback, so a client that does not read holds the app back. */
static void on_ws_echo_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data);

static void on_ws_echo_sent(casgi_call_t *call, int status, void *data)
{
    ws_t *w = data;

    if (w->ended)
        return;
    if (status != 0)
        record("ws-%s[%s]: send status=%d", w->route, w->tag, status);
    /* After a failed send the next receive brings the disconnect, which ends the call. */
    ws_receive(w, on_ws_echo_event);
}

static void on_ws_echo_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    ws_t *w = data;
    int rc;

    if (!ws_receive_common(w, status, ev))
        return;
    rc = ws_send(w, ev->message.is_text, ev->message.data.base, ev->message.data.len,
                 on_ws_echo_sent);
    if (rc != 0) {
        record("ws-%s[%s]: send=%d", w->route, w->tag, rc);
        ws_receive(w, on_ws_echo_event);
    }
}

static void ws_echo_loop(ws_t *w)
{
    ws_receive(w, on_ws_echo_event);
}

/* /ws/echo: accepts without a subprotocol and echoes. */
static void ws_route_echo(ws_t *w)
{
    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) == 0)
        ws_echo_loop(w);
}

/* /ws/scope: accepts, sends the scope as one text message (the /scope format), then echoes. */

static void ws_route_scope(ws_t *w)
{
    sbuf_t sb = {0};
    int rc;

    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) != 0)
        return;
    put_scope(&sb, w->scope);
    if (sb.failed) {
        sb_free(&sb);
        ws_finish(w, CASGI_ENOMEM);
        return;
    }
    rc = ws_send(w, 1, sb.base, sb.len, NULL);
    sb_free(&sb);
    if (rc != 0)
        record("ws-scope[%s]: send=%d", w->tag, rc);
    ws_echo_loop(w);
}

/* /ws/subprotocol: accepts with the second offered subprotocol (none when fewer were offered). */
static void ws_route_subprotocol(ws_t *w)
{
    casgi_bytes_t chosen = {NULL, 0};

    if (w->scope->num_subprotocols >= 2)
        chosen = w->scope->subprotocols[1];
    if (ws_accept_or_finish(w, chosen, NULL, 0) == 0)
        ws_echo_loop(w);
}

/* /ws/accept-headers: accepts with an extra response header "x-test: yes". */
static void ws_route_accept_headers(ws_t *w)
{
    static const casgi_header_t h[] = {{{"x-test", 6}, {"yes", 3}}};

    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, h, 1) == 0)
        ws_echo_loop(w);
}

/* /ws/reject: websocket.close before accept (the client gets a 403). */
static void ws_route_reject(ws_t *w)
{
    int rc = ws_close(w, 0, (casgi_bytes_t){NULL, 0});

    record("ws-reject[%s]: close=%d", w->tag, rc);
    ws_finish(w, 0);
}

/* /ws/deny: the denial-response extension: 401, application/json, the body in two events. */
static void ws_route_deny(ws_t *w)
{
    static const casgi_header_t h[] = {{{"content-type", 12}, {"application/json", 16}}};
    casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_START};
    int rc_start, rc_body1 = 1, rc_body2 = 1;

    ev.start.status = 401;
    ev.start.headers = h;
    ev.start.num_headers = 1;
    rc_start = casgi_send(w->call, &ev, NULL, NULL);
    if (rc_start == 0) {
        ev = (casgi_event_t){.type = CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_BODY};
        ev.body.body = CASGI_BYTES("{\"error\":");
        ev.body.more_body = 1;
        rc_body1 = casgi_send(w->call, &ev, NULL, NULL);
        ev.body.body = CASGI_BYTES("\"nope\"}");
        ev.body.more_body = 0;
        rc_body2 = casgi_send(w->call, &ev, NULL, NULL);
    }
    record("ws-deny[%s]: extension=%d start=%d body1=%d body2=%d", w->tag,
           (w->scope->extensions & CASGI_EXT_WEBSOCKET_HTTP_RESPONSE) ? 1 : 0, rc_start, rc_body1,
           rc_body2);
    ws_finish(w, 0);
}

/* /ws/close/CODE: accepts, then closes with CODE and reason "bye" and returns. */
static void ws_route_close(ws_t *w)
{
    int rc;

    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) != 0)
        return;
    rc = ws_close(w, (int)w->param, CASGI_BYTES("bye"));
    record("ws-close[%s]: code=%" PRIu64 " close=%d", w->tag, w->param, rc);
    ws_finish(w, 0);
}

/* /ws/send-after-disconnect: accepts, ignores messages until the disconnect, then sends. */
static void on_ws_sad_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    ws_t *w = data;
    int rc_send, rc_close;

    if (w->ended)
        return;
    if (status == 0 && ev->type == CASGI_EVENT_WEBSOCKET_DISCONNECT) {
        ws_log_disconnect(w, ev);
        rc_send = ws_send(w, 1, "late", 4, NULL);
        rc_close = ws_close(w, 1000, (casgi_bytes_t){NULL, 0});
        record("ws-send-after-disconnect[%s]: send=%d close=%d", w->tag, rc_send, rc_close);
        ws_finish(w, 0);
        return;
    }
    if (!ws_receive_common(w, status, ev))
        return;
    ws_receive(w, on_ws_sad_event);
}

static void ws_route_send_after_disconnect(ws_t *w)
{
    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) == 0)
        ws_receive(w, on_ws_sad_event);
}

/* /ws/fail-before-accept, /ws/fail-after-accept, /ws/return-after-accept. */
static void ws_route_fail_before_accept(ws_t *w)
{
    ws_finish(w, -1);
}

static void ws_route_fail_after_accept(ws_t *w)
{
    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) == 0)
        ws_finish(w, -1);
}

static void ws_route_return_after_accept(ws_t *w)
{
    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) == 0)
        ws_finish(w, 0);
}

/* /ws/slow-reader: accepts and does not receive until GET /ws-release; then it counts what
 * arrives (g_slow_*, GET /ws-stats) and logs the disconnect. Until then the server must hold the
 * client back instead of buffering without bound. */
static void on_ws_slow_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    ws_t *w = data;

    if (!ws_receive_common(w, status, ev))
        return;
    g_slow_messages++;
    g_slow_bytes += ev->message.data.len;
    ws_receive(w, on_ws_slow_event);
}

static void ws_route_slow_reader(ws_t *w)
{
    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) != 0)
        return;
    w->waiting = 1;
    w->next_waiting = g_ws_waiting;
    g_ws_waiting = w;
    say("ws-slow-reader[%s] parked", w->tag);
}

/* GET /ws-release: every parked slow reader starts receiving. */
static void route_ws_release(req_t *r)
{
    char body[64];
    unsigned n = 0;

    while (g_ws_waiting != NULL) {
        ws_t *w = g_ws_waiting;
        ws_unpark(w);
        n++;
        ws_receive(w, on_ws_slow_event);
    }
    snprintf(body, sizeof(body), "released=%u", n);
    respond_and_finish(r, 200, body, strlen(body));
}

/* GET /ws-stats: the websocket counters. */
static void route_ws_stats(req_t *r)
{
    sbuf_t sb = {0};
    unsigned parked = 0;
    ws_t *w;

    for (w = g_ws_waiting; w != NULL; w = w->next_waiting)
        parked++;
    sb_printf(&sb,
              "ws_calls=%u flood_sent=%" PRIu64 " flood_bytes=%" PRIu64 " slow_messages=%" PRIu64
              " slow_bytes=%" PRIu64 " slow_parked=%u\n",
              g_ws_calls, g_flood_sent, g_flood_bytes, g_slow_messages, g_slow_bytes, parked);
    respond_sb_and_finish(r, 200, &sb);
}

/* The value of `key` in the query string ("key=value" between '&'), or `def`. */
static uint64_t query_number(const casgi_scope_t *scope, const char *key, uint64_t def)
{
    const char *q = scope->query_string.base;
    size_t qn = scope->query_string.len, kn = strlen(key), i;
    uint64_t v;

    for (i = 0; q != NULL && i + kn + 1 <= qn; i++) {
        if ((i == 0 || q[i - 1] == '&') && memcmp(q + i, key, kn) == 0 && q[i + kn] == '=') {
            v = 0;
            for (i += kn + 1; i < qn && q[i] >= '0' && q[i] <= '9'; i++)
                v = v * 10 + (uint64_t)(q[i] - '0');
            return v;
        }
    }
    return def;
}

/* Does the query string contain `needle`? */
static int query_has(const casgi_scope_t *scope, const char *needle)
{
    size_t n = strlen(needle), i;
    casgi_bytes_t q = scope->query_string;

    for (i = 0; q.base != NULL && i + n <= q.len; i++)
        if (memcmp(q.base + i, needle, n) == 0)
            return 1;
    return 0;
}

/* Receives and drops messages until the disconnect (logged), which ends the call. */
static void on_ws_drain_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    ws_t *w = data;

    if (ws_receive_common(w, status, ev))
        ws_receive(w, on_ws_drain_event);
}

/* /ws/flood/N?size=S: accepts, sends N binary messages of S bytes (default 16384), the next one
 * from each send callback, then closes with 1000 "flood done". Message i starts with i as 8
 * big-endian bytes; byte j >= 8 is (i + j) % 251. Progress is in GET /ws-stats. */
static void ws_flood_next(ws_t *w);

static void on_ws_flood_sent(casgi_call_t *call, int status, void *data)
{
    ws_t *w = data;

    if (w->ended)
        return;
    if (status != 0) {
        record("ws-flood[%s]: send status=%d after %" PRIu64, w->tag, status, w->sent);
        ws_receive(w, on_ws_drain_event); /* brings the disconnect */
        return;
    }
    ws_flood_next(w);
}

static void ws_flood_next(ws_t *w)
{
    size_t j;
    int rc;

    if (w->sent == w->param) {
        rc = ws_close(w, 1000, CASGI_BYTES("flood done"));
        record("ws-flood[%s]: sent=%" PRIu64 " close=%d", w->tag, w->sent, rc);
        ws_finish(w, 0);
        return;
    }
    for (j = 0; j < 8 && j < w->size; j++)
        w->payload[j] = (unsigned char)(w->sent >> (56 - 8 * j));
    for (; j < w->size; j++)
        w->payload[j] = (unsigned char)((w->sent + j) % 251);
    rc = ws_send(w, 0, w->payload, w->size, on_ws_flood_sent);
    if (rc != 0) {
        record("ws-flood[%s]: send=%d after %" PRIu64, w->tag, rc, w->sent);
        ws_receive(w, on_ws_drain_event);
        return;
    }
    w->sent++;
    g_flood_sent++;
    g_flood_bytes += w->size;
}

static void ws_route_flood(ws_t *w)
{
    w->size = (size_t)query_number(w->scope, "size", 16384);
    w->payload = malloc(w->size ? w->size : 1);
    if (w->payload == NULL) {
        ws_finish(w, CASGI_ENOMEM);
        return;
    }
    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) == 0)
        ws_flood_next(w);
}

/* /ws/burst/N?size=S&end=close|return|fail: accepts, sends N binary messages of S bytes
 * (default 32768; message i is S copies of the byte i % 256) without waiting for send
 * callbacks, then at once closes with 1000 "burst done" and returns (end=close, the default),
 * returns without closing (end=return) or fails (end=fail). Every message must reach the client
 * before the close frame: ASGI events keep their order. */
static void ws_route_burst(ws_t *w)
{
    uint64_t i;
    int rc = 0, rc_close = 0;

    w->size = (size_t)query_number(w->scope, "size", 32768);
    w->payload = malloc(w->size ? w->size : 1);
    if (w->payload == NULL) {
        ws_finish(w, CASGI_ENOMEM);
        return;
    }
    if (ws_accept_or_finish(w, (casgi_bytes_t){NULL, 0}, NULL, 0) != 0)
        return;
    for (i = 0; rc == 0 && i < w->param; i++) {
        memset(w->payload, (int)(i % 256), w->size);
        rc = ws_send(w, 0, w->payload, w->size, NULL);
        if (rc == 0)
            w->sent++;
    }
    if (query_has(w->scope, "end=fail")) {
        record("ws-burst[%s]: sent=%" PRIu64 " send=%d", w->tag, w->sent, rc);
        ws_finish(w, -1);
        return;
    }
    if (!query_has(w->scope, "end=return"))
        rc_close = ws_close(w, 1000, CASGI_BYTES("burst done"));
    record("ws-burst[%s]: sent=%" PRIu64 " send=%d close=%d", w->tag, w->sent, rc, rc_close);
    ws_finish(w, 0);
}

/* An unknown websocket path: rejected like /ws/reject. */
static void ws_route_not_found(ws_t *w)
{
    ws_close(w, 0, (casgi_bytes_t){NULL, 0});
    ws_finish(w, 0);
}

/* The first event of every websocket call must be websocket.connect. */
static void on_ws_connect_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    ws_t *w = data;

    if (w->ended)
        return;
    if (status != 0) {
        record("ws-%s[%s]: connect receive status=%d", w->route, w->tag, status);
        ws_finish(w, status);
        return;
    }
    if (ev->type != CASGI_EVENT_WEBSOCKET_CONNECT) {
        record("ws-%s[%s]: first event %s, not websocket.connect", w->route, w->tag,
               casgi_event_type_name(ev->type));
        ws_finish(w, -1);
        return;
    }
    w->on_connect(w);
}

/* ------------------------------------------------------------------------------------------- */
/* HTTP/2 routes (tests/integration/test_http2.py)                                              */
/* ------------------------------------------------------------------------------------------- */

/* /hold-body/N: parks without receiving (so HTTP/2 flow control stalls the upload) until GET
 * /release-body or N ms (default 10000), then reads the body and answers like /read-body. */
static req_t *g_held[32];
static unsigned g_num_held;

static void hold_release(req_t *r)
{
    unsigned i;

    for (i = 0; i < g_num_held; i++) {
        if (g_held[i] == r) {
            g_held[i] = g_held[--g_num_held];
            break;
        }
    }
    uv_timer_stop(&r->timer);
    say("hold-body released");
    read_body(r, read_body_done);
}

static void on_hold_timer(uv_timer_t *t)
{
    hold_release(t->data);
}

static void route_hold_body(req_t *r)
{
    if (g_num_held == sizeof(g_held) / sizeof(g_held[0])) {
        respond_and_finish(r, 503, "too many held", 13);
        return;
    }
    g_held[g_num_held++] = r;
    start_timer(r, r->param ? r->param : 10000, on_hold_timer);
    say("hold-body parked");
}

static void route_release_body(req_t *r)
{
    char body[64];
    unsigned n = 0;

    while (g_num_held > 0) {
        hold_release(g_held[g_num_held - 1]);
        n++;
    }
    snprintf(body, sizeof(body), "released=%u", n);
    respond_and_finish(r, 200, body, strlen(body));
}

/* /early-hint: http.response.early_hint with two links (sent whether or not the scope lists the
 * extension), then 200 "early_hint=RC ext=0|1". */
static void route_early_hint(req_t *r)
{
    const casgi_bytes_t links[] = {
        CASGI_BYTES("</style.css>; rel=preload; as=style"),
        CASGI_BYTES("</script.js>; rel=preload; as=script"),
    };
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_EARLY_HINT};
    char body[64];
    int rc;

    ev.early_hint.links = links;
    ev.early_hint.num_links = 2;
    rc = casgi_send(r->call, &ev, NULL, NULL);
    record("early-hint: early_hint=%d", rc);
    snprintf(body, sizeof(body), "early_hint=%d ext=%d", rc,
             (r->scope->extensions & CASGI_EXT_HTTP_RESPONSE_EARLY_HINT) ? 1 : 0);
    respond_and_finish(r, 200, body, strlen(body));
}

/* /push: when the scope offers CASGI_EXT_HTTP_RESPONSE_PUSH, starts a 200, pushes GET /ok (with
 * "x-pushed-by: push"), and ends with "push=RC"; without the extension: "push=absent". */
static void route_push(req_t *r)
{
    static const casgi_header_t h[] = {{{"content-type", 12}, {"text/plain", 10}}};
    static const casgi_header_t ph[] = {{{"x-pushed-by", 11}, {"push", 4}}};
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_PUSH};
    char body[64];
    int rc;

    if (!(r->scope->extensions & CASGI_EXT_HTTP_RESPONSE_PUSH)) {
        respond_and_finish(r, 200, "push=absent", 11);
        return;
    }
    rc = send_start(r, 200, h, 1, 0);
    if (rc != 0) {
        record("push: start=%d", rc);
        finish(r, rc);
        return;
    }
    ev.push.path = CASGI_BYTES("/ok");
    ev.push.headers = ph;
    ev.push.num_headers = 1;
    rc = casgi_send(r->call, &ev, NULL, NULL);
    record("push: push=%d", rc);
    snprintf(body, sizeof(body), "push=%d", rc);
    rc = send_body(r, body, strlen(body), 0, NULL);
    if (rc != 0)
        record("push: body=%d", rc);
    finish(r, 0);
}

/* /h2-conn-headers: connection-specific and upper-case header names from the app. */
static void route_h2_conn_headers(req_t *r)
{
    static const casgi_header_t h[] = {
        {{"Connection", 10}, {"close", 5}},
        {{"Keep-Alive", 10}, {"timeout=5", 9}},
        {{"X-Upper-Case", 12}, {"Yes", 3}},
        {{"Content-Length", 14}, {"2", 1}},
    };
    int rc = send_start(r, 200, h, 4, 0);

    if (rc == 0)
        rc = send_body(r, "ok", 2, 0, NULL);
    if (rc != 0)
        record("h2-conn-headers: send=%d", rc);
    finish(r, 0);
}

/* ---- end of the HTTP/2 routes ------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------------- */
/* Dispatch                                                                                     */
/* ------------------------------------------------------------------------------------------- */

typedef struct route_s {
    const char *prefix;
    req_step_fn fn;
    int takes_number; /* /prefix/N */
} route_t;

static const route_t routes[] = {
    {"/ok", route_ok, 0},
    {"/log", route_log, 0},
    {"/last-error", route_log, 0},
    {"/counters", route_counters, 0},
    {"/scope", route_scope, 0},
    {"/echo-headers", route_scope, 0},
    {"/read-body", route_read_body, 0},
    {"/echo", route_echo, 0},
    {"/chunks", route_chunks, 1},
    {"/empty", route_empty, 0},
    {"/big", route_big, 1},
    {"/status", route_status, 1},
    {"/headers-out", route_headers_out, 0},
    {"/slow-ms", route_slow, 1},
    {"/slow-deaf-ms", route_slow_deaf, 1},
    {"/trailers", route_trailers, 0},
    {"/expect", route_expect, 0},
    {"/expect-no-read", route_expect_no_read, 0},
    {"/fail-before-start", route_fail_before_start, 0},
    {"/no-response", route_no_response, 0},
    {"/fail-after-start", route_fail_after_start, 0},
    {"/partial", route_partial, 0},
    {"/partial-cl", route_partial_cl, 0},
    {"/duplicate-start", route_duplicate_start, 0},
    {"/body-before-start", route_body_before_start, 0},
    {"/after-complete", route_after_complete, 0},
    {"/content-length-mismatch", route_cl_mismatch, 0},
    {"/content-length-short", route_cl_short, 0},
    {"/content-length-split", route_cl_split, 0},
    {"/bad-header", route_bad_header, 0},
    {"/bad-status", route_bad_status, 0},
    {"/bad-event", route_bad_event, 0},
    {"/double-receive", route_double_receive, 0},
    {"/disconnect-wait", route_disconnect_wait, 0},
    {"/send-after-disconnect", route_send_after_disconnect, 1},
    {"/no-read-then-respond", route_no_read, 0},
    {"/read-after-response", route_read_after_response, 0},
    {"/ws-release", route_ws_release, 0},
    {"/ws-stats", route_ws_stats, 0},
    /* HTTP/2 routes (test_http2.py) */
    {"/hold-body", route_hold_body, 1},
    {"/release-body", route_release_body, 0},
    {"/early-hint", route_early_hint, 0},
    {"/push", route_push, 0},
    {"/h2-conn-headers", route_h2_conn_headers, 0},
};

static void route_not_found(req_t *r)
{
    respond_and_finish(r, 404, "not found", 9);
}

/* Does `path` start with the route `prefix` followed by the end or '/'? */
static int matches(casgi_bytes_t path, const char *prefix, casgi_bytes_t *rest)
{
    size_t n = strlen(prefix);

    if (path.len < n || memcmp(path.base, prefix, n) != 0)
        return 0;
    if (path.len > n && path.base[n] != '/')
        return 0;
    rest->base = path.base + n;
    rest->len = path.len - n;
    return 1;
}

static uint64_t parse_number(casgi_bytes_t rest)
{
    uint64_t v = 0;
    size_t i = 0;

    if (i < rest.len && rest.base[i] == '/')
        i++;
    for (; i < rest.len && rest.base[i] >= '0' && rest.base[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(rest.base[i] - '0');
    return v;
}

/* The path the routes see: relative to root_path when the path carries it. */
static casgi_bytes_t route_path(const casgi_scope_t *scope)
{
    casgi_bytes_t path = scope->path;

    if (scope->root_path.len > 0 && path.len >= scope->root_path.len &&
        memcmp(path.base, scope->root_path.base, scope->root_path.len) == 0) {
        path.base += scope->root_path.len;
        path.len -= scope->root_path.len;
    }
    return path;
}

static void http_entry(casgi_call_t *call, const casgi_scope_t *scope)
{
    casgi_bytes_t path = route_path(scope);
    req_t *r;
    size_t i;

    g_http_calls++;
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        casgi_call_end(call, CASGI_ENOMEM);
        return;
    }
    r->call = call;
    r->scope = scope;
    r->route = "not-found";

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (matches(path, routes[i].prefix, &r->rest)) {
            r->route = routes[i].prefix + 1;
            if (routes[i].takes_number)
                r->param = parse_number(r->rest);
            routes[i].fn(r);
            return;
        }
    }
    route_not_found(r);
}

typedef struct ws_route_s {
    const char *prefix;
    ws_step_fn fn;
    int takes_number; /* /prefix/N */
} ws_route_t;

static const ws_route_t ws_routes[] = {
    {"/ws/echo", ws_route_echo, 0},
    {"/ws/scope", ws_route_scope, 0},
    {"/ws/subprotocol", ws_route_subprotocol, 0},
    {"/ws/accept-headers", ws_route_accept_headers, 0},
    {"/ws/reject", ws_route_reject, 0},
    {"/ws/deny", ws_route_deny, 0},
    {"/ws/close", ws_route_close, 1},
    {"/ws/send-after-disconnect", ws_route_send_after_disconnect, 0},
    {"/ws/fail-before-accept", ws_route_fail_before_accept, 0},
    {"/ws/fail-after-accept", ws_route_fail_after_accept, 0},
    {"/ws/return-after-accept", ws_route_return_after_accept, 0},
    {"/ws/slow-reader", ws_route_slow_reader, 0},
    {"/ws/flood", ws_route_flood, 1},
    {"/ws/burst", ws_route_burst, 1},
};

static void ws_entry(casgi_call_t *call, const casgi_scope_t *scope)
{
    casgi_bytes_t path = route_path(scope), rest;
    casgi_bytes_t q = scope->query_string;
    ws_t *w;
    size_t i, n;
    int rc;

    g_ws_calls++;
    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        casgi_call_end(call, CASGI_ENOMEM);
        return;
    }
    w->call = call;
    w->scope = scope;
    w->route = "not-found";
    w->on_connect = ws_route_not_found;
    for (n = 0; n < q.len && n < sizeof(w->tag) - 1; n++)
        w->tag[n] = (q.base[n] > 0x20 && q.base[n] < 0x7f) ? q.base[n] : '?';
    w->tag[n] = '\0';
    for (i = 0; i < sizeof(ws_routes) / sizeof(ws_routes[0]); i++) {
        if (matches(path, ws_routes[i].prefix, &rest)) {
            w->route = ws_routes[i].prefix + 4;
            w->on_connect = ws_routes[i].fn;
            if (ws_routes[i].takes_number)
                w->param = parse_number(rest);
            break;
        }
    }
    rc = casgi_receive(call, on_ws_connect_event, w);
    if (rc != 0) {
        record("ws-%s[%s]: first receive=%d", w->route, w->tag, rc);
        ws_finish(w, rc);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Lifespan                                                                                     */
/* ------------------------------------------------------------------------------------------- */

typedef struct life_s {
    casgi_call_t *call;
    const char *mode;
    uv_timer_t timer;
    int timer_inited;
    int ended;
} life_t;

static void on_life_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void life_finish(life_t *l, int error)
{
    l->ended = 1;
    casgi_call_end(l->call, error);
    if (l->timer_inited)
        uv_close((uv_handle_t *)&l->timer, on_life_timer_closed);
    else
        free(l);
}

static void on_life_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data);

static void life_answer_startup(life_t *l)
{
    casgi_event_t out = {.type = CASGI_EVENT_LIFESPAN_STARTUP_COMPLETE};
    int rc;

    if (strcmp(l->mode, "fail") == 0 || strcmp(l->mode, "fail-slow") == 0) {
        out.type = CASGI_EVENT_LIFESPAN_STARTUP_FAILED;
        out.failed.message = CASGI_BYTES("boom from startup");
        rc = casgi_send(l->call, &out, NULL, NULL);
        say("lifespan startup failed sent rc=%d", rc);
        life_finish(l, 0);
        return;
    }
    casgi_call_set_state(l->call, g_state);
    rc = casgi_send(l->call, &out, NULL, NULL);
    say("lifespan startup complete sent rc=%d", rc);
    rc = casgi_receive(l->call, on_life_event, l);
    if (rc != 0) {
        say("lifespan receive=%d", rc);
        life_finish(l, rc);
    }
}

static void on_life_timer(uv_timer_t *t)
{
    life_answer_startup(t->data);
}

static void on_life_event(casgi_call_t *call, int status, const casgi_event_t *ev, void *data)
{
    life_t *l = data;
    int rc;

    if (l->ended)
        return;
    if (status != 0) {
        say("lifespan receive status=%d", status);
        life_finish(l, status);
        return;
    }
    if (ev->type == CASGI_EVENT_LIFESPAN_STARTUP) {
        say("lifespan startup");
        if (strcmp(l->mode, "ok-slow") == 0 || strcmp(l->mode, "fail-slow") == 0) {
            uv_timer_init(casgi_call_get_loop(call), &l->timer);
            l->timer.data = l;
            l->timer_inited = 1;
            uv_timer_start(&l->timer, on_life_timer, 700, 0);
            return;
        }
        life_answer_startup(l);
        return;
    }
    if (ev->type == CASGI_EVENT_LIFESPAN_SHUTDOWN) {
        casgi_event_t out = {.type = CASGI_EVENT_LIFESPAN_SHUTDOWN_COMPLETE};
        say("lifespan shutdown");
        if (strcmp(l->mode, "shutdown-fail") == 0) {
            out.type = CASGI_EVENT_LIFESPAN_SHUTDOWN_FAILED;
            out.failed.message = CASGI_BYTES("boom from shutdown");
        }
        rc = casgi_send(call, &out, NULL, NULL);
        say("lifespan shutdown answered rc=%d", rc);
        life_finish(l, 0);
        return;
    }
    say("lifespan unexpected event %d", (int)ev->type);
    life_finish(l, -1);
}

static void lifespan_entry(casgi_call_t *call, const casgi_scope_t *scope)
{
    const char *mode = getenv("CASGI_TEST_LIFESPAN");
    life_t *l;
    int rc;

    g_lifespan_calls++;
    if (mode == NULL || *mode == '\0')
        mode = "ok";
    say("lifespan scope asgi=%s spec=%s mode=%s", scope->asgi_version ? scope->asgi_version : "NULL",
        scope->spec_version ? scope->spec_version : "NULL", mode);
    if (strcmp(mode, "unsupported") == 0) {
        casgi_call_end(call, -1);
        return;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        casgi_call_end(call, CASGI_ENOMEM);
        return;
    }
    l->call = call;
    l->mode = mode;
    rc = casgi_receive(call, on_life_event, l);
    if (rc != 0) {
        say("lifespan receive=%d", rc);
        life_finish(l, rc);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Entry points                                                                                 */
/* ------------------------------------------------------------------------------------------- */

static void entry(casgi_call_t *call, const casgi_scope_t *scope, void *app_data)
{
    switch (scope->type) {
    case CASGI_SCOPE_LIFESPAN:
        lifespan_entry(call, scope);
        break;
    case CASGI_SCOPE_HTTP:
        http_entry(call, scope);
        break;
    case CASGI_SCOPE_WEBSOCKET:
        ws_entry(call, scope);
        break;
    default:
        casgi_call_end(call, -1);
        break;
    }
}

TESTAPP_EXPORT casgi_app_t app = {entry, NULL};

/* A second symbol, for "testapp.so:other_app": answers every request with "other app" and
 * declines lifespan. */
static void other_entry(casgi_call_t *call, const casgi_scope_t *scope, void *app_data)
{
    static const casgi_header_t h[] = {{{"content-length", 14}, {"9", 1}}};
    casgi_event_t ev = {.type = CASGI_EVENT_HTTP_RESPONSE_START};

    if (scope->type != CASGI_SCOPE_HTTP) {
        casgi_call_end(call, -1);
        return;
    }
    ev.start.status = 200;
    ev.start.headers = h;
    ev.start.num_headers = 1;
    casgi_send(call, &ev, NULL, NULL);
    ev.type = CASGI_EVENT_HTTP_RESPONSE_BODY;
    ev.body.body = CASGI_BYTES("other app");
    ev.body.more_body = 0;
    casgi_send(call, &ev, NULL, NULL);
    casgi_call_end(call, 0);
}

TESTAPP_EXPORT casgi_app_t other_app = {other_entry, NULL};
