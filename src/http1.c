/*
 * HTTP/1.x: llhttp turns bytes into a request, the call carries it to the app, and this file turns
 * the app's events back into bytes. All progress happens in run(): it is called after a read, after
 * a write drained, and from the server's task queue, and it loops until nothing moves. The app is
 * never called from inside llhttp_execute(): the parser pauses at the end of the head and at the
 * end of the message, and run() dispatches outside it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <llhttp.h>

#include "call.h"
#include "headers.h"
#include "http1.h"
#include "http2.h"
#include "scope.h"
#include "websocket.h"

typedef struct field_s {
    size_t name_off, name_len;
    size_t value_off, value_len;
} field_t;

/* Same size, so the offsets recorded while parsing become the scope's headers in place. */
_Static_assert(sizeof(field_t) == sizeof(casgi_header_t), "field_t doubles as casgi_header_t");

typedef struct http1_s {
    casgi__conn_t *conn; /* NULL once the connection closed */
    casgi_server_t *server;
    casgi__task_t task;
    int refs; /* one for the connection, one while the app holds the call, one inside run() */
    llhttp_t parser;

    /* request head: every string of the scope lives in `head`, reused across keep-alive requests */
    casgi__buf_t head;
    /* field_t while parsing, turned in place into the casgi_header_t array: fields_inline, or
     * spilled into a pool block (fields_spill) for a head with more fields than it holds */
    field_t *fields;
    size_t num_fields, fields_cap;
    casgi__buf_t fields_spill;
    size_t url_off, url_len;
    size_t head_size;
    const char *error_why;
    int error_status;      /* set by a parser callback that refuses the request */
    const char *exec_data; /* what llhttp_execute() was given, to tell a fold from a split */
    /* This read's part of the head, from its first span to the end of its last, is copied into
     * `head` in one piece (head_copy) once the head is complete or the read is used up; spans
     * record the offsets they will have there. */
    const char *span_base;
    const char *span_end;
    size_t span_base_off;
    const char *value_end;
    uint64_t request_start;

    /* request body, buffered until the app receives it */
    casgi__buf_t body;
    uint64_t body_received;

    unsigned in_request : 1;       /* message begun, not complete */
    unsigned dispatch : 1;         /* head complete, app not yet called */
    unsigned call_live : 1;        /* the app holds the call */
    unsigned message_complete : 1; /* parser paused at the end of this request */
    unsigned final_delivered : 1;  /* http.request with more_body = 0 went to the app */
    unsigned keep_alive : 1;
    unsigned client_closes : 1; /* Connection: close, or HTTP/1.0 without keep-alive */
    unsigned http10 : 1;
    unsigned is_head : 1;
    unsigned expect_continue : 1;
    unsigned continue_sent : 1;
    unsigned shutting_down : 1;
    unsigned broken : 1; /* an error response is going out; parse nothing more */
    unsigned in_field_name : 1;
    unsigned head_done : 1; /* later header callbacks are chunked trailers: dropped */
    unsigned head_deadline_set : 1;
    unsigned ws_upgrade : 1;  /* the head asks for a WebSocket: websocket.c takes the connection */
    unsigned h2c_upgrade : 1; /* the request asks for h2c: collect its body, then http2.c takes
                                 the connection and serves it as stream 1 */
    unsigned response_started : 1;

    /* response */
    unsigned chunked : 1;
    unsigned no_body : 1;
    unsigned has_length : 1;
    unsigned will_close : 1;
    unsigned trailers_begun : 1;
    unsigned response_done : 1;
    uint64_t content_length;
    uint64_t body_sent;

    /* Not zeroed by http1_new(): written before they are read. */
    field_t fields_inline[16]; /* most requests carry fewer headers: no block to take */
    casgi_call_t call;         /* casgi__call_init() zeroes it for each request */
} http1_t;

static const casgi__call_ops_t call_ops;
static const casgi__proto_t proto;
static const llhttp_settings_t parser_settings;
static void run(http1_t *h);
static void park_if_idle(http1_t *h);

/* ---- small formatting helpers (no printf on the hot path) -------------------------------- */

static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t fmt_hex(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

const char *casgi__http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "";
}

size_t casgi__http1_status_line(int status, char *out)
{
    switch (status) {
#define LINE(code, reason)                                                                         \
    case code:                                                                                     \
        memcpy(out, "HTTP/1.1 " #code " " reason "\r\n",                                           \
               sizeof("HTTP/1.1 " #code " " reason "\r\n") - 1);                                   \
        return sizeof("HTTP/1.1 " #code " " reason "\r\n") - 1;
        LINE(200, "OK")
        LINE(204, "No Content")
        LINE(304, "Not Modified")
        LINE(404, "Not Found")
#undef LINE
    }
    const char *reason = casgi__http_reason(status);
    size_t n = 9;
    memcpy(out, "HTTP/1.1 ", 9);
    n += fmt_u64(out + n, (uint64_t)status);
    out[n++] = ' ';
    size_t rlen = strlen(reason);
    memcpy(out + n, reason, rlen);
    n += rlen;
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

static inline char *put(char *p, const void *data, size_t len)
{
    memcpy(p, data, len);
    return p + len;
}
#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static inline char *put_header(char *p, const casgi_header_t *hd)
{
    p = put(p, hd->name.base, hd->name.len);
    p = PUT_LIT(p, ": ");
    p = put(p, hd->value.base, hd->value.len);
    return PUT_LIT(p, "\r\n");
}

/* Appends to the connection's output; on allocation failure the connection is dropped. */
static int out(http1_t *h, const void *data, size_t len)
{
    if (h->conn == NULL)
        return CASGI_EDISCONNECTED;
    if (casgi__conn_write(h->conn, data, len) != 0) {
        CASGI_LOG(&h->server->log, CASGI_LOG_ERROR, "out of memory writing a response");
        casgi__conn_close(h->conn);
        return CASGI_ENOMEM;
    }
    return 0;
}
#define OUT_LIT(h, lit) out((h), (lit), sizeof(lit) - 1)

/* One "name: value" line, as out() appends. */
static int out_header(http1_t *h, const casgi_header_t *hd)
{
    return out(h, hd->name.base, hd->name.len) || OUT_LIT(h, ": ") ||
                   out(h, hd->value.base, hd->value.len) || OUT_LIT(h, "\r\n")
               ? CASGI_ENOMEM
               : 0;
}

/* ---- lifetime --------------------------------------------------------------------------- */

/* Makes room in a request buffer, taking a pool block when it has none. */
static inline int scratch_reserve(http1_t *h, casgi__buf_t *b, size_t len)
{
    if (CASGI_LIKELY(b->cap - b->len >= len))
        return 0;
    return casgi__buf_reserve_pooled(&h->server->pool, b, len);
}

static int head_append(http1_t *h, const char *at, size_t len)
{
    if (scratch_reserve(h, &h->head, len))
        return -1;
    memcpy(h->head.base + h->head.len, at, len);
    h->head.len += len;
    return 0;
}

/* No fields, kept in the inline array: a fresh state, and every request after its blocks went. */
static void fields_inline_again(http1_t *h)
{
    h->num_fields = 0;
    h->fields = h->fields_inline;
    h->fields_cap = ARRAY_SIZE(h->fields_inline);
}

/* Makes room for one more field: the inline array moves into a pool block when full. */
static int spill_fields(http1_t *h)
{
    casgi__buf_t *b = &h->fields_spill;
    size_t used = h->num_fields * sizeof(field_t);
    if (h->fields == h->fields_inline) {
        if (scratch_reserve(h, b, used + sizeof(field_t)))
            return -1;
        memcpy(b->base, h->fields_inline, used);
    } else {
        b->len = used;
        if (scratch_reserve(h, b, sizeof(field_t)))
            return -1;
    }
    b->len = used;
    h->fields = (field_t *)b->base;
    h->fields_cap = b->cap / sizeof(field_t);
    return 0;
}

/* Between requests a connection holds no request memory: the blocks go back to the pool. */
static void release_scratch(http1_t *h)
{
    casgi__pool_t *pool = &h->server->pool;
    casgi__buf_clear(&h->head);
    casgi__buf_release(pool, &h->head);
    casgi__buf_clear(&h->fields_spill);
    casgi__buf_release(pool, &h->fields_spill);
    casgi__buf_clear(&h->body);
    casgi__buf_release(pool, &h->body);
    fields_inline_again(h);
}

static void unref(http1_t *h)
{
    if (--h->refs > 0)
        return;
    casgi__server_cancel(h->server, &h->task);
    release_scratch(h);
    casgi__pool_give(&h->server->http1_states, h);
}

static void on_task(casgi__task_t *task)
{
    run(container_of(task, http1_t, task));
}

/* Asks for a run() pass from the task queue (none while run() is on the stack: task.running). */
static void wake(http1_t *h)
{
    casgi__server_defer(h->server, &h->task);
}

/* ---- error responses -------------------------------------------------------------------- */

/*
 * Refuses the current request with a complete response of our own and closes the connection
 * afterwards (lingering, so the client gets to read it). When the app already started a response,
 * the only honest answer left is to cut the connection.
 */
static void respond_error(http1_t *h, int status, const char *why)
{
    casgi_server_t *server = h->server;
    h->broken = 1;
    if (status == 503)
        CASGI_LOG(&server->log, CASGI_LOG_WARNING, "Exceeded concurrency limit.");
    else
        CASGI_LOG(&server->log, CASGI_LOG_WARNING, "Invalid HTTP request received (%d): %s", status,
                  why);
    if (h->conn == NULL)
        return;
    if (h->call_live) {
        h->call.disconnected = 1;
        wake(h);
    }
    if (h->response_started) {
        /* This request already has its answer: let a complete one out, cut a partial one. */
        if (h->response_done)
            casgi__conn_close_after_flush(h->conn);
        else
            casgi__conn_close(h->conn);
        return;
    }
    char line[64];
    size_t n = casgi__http1_status_line(status, line);
    const char *reason = casgi__http_reason(status);
    char len[24];
    size_t body_len = strlen(reason) + 1;
    size_t len_n = fmt_u64(len, body_len);
    if (out(h, line, n) || OUT_LIT(h, "content-type: text/plain; charset=utf-8\r\n") ||
        OUT_LIT(h, "connection: close\r\ncontent-length: ") || out(h, len, len_n) ||
        OUT_LIT(h, "\r\n"))
        return;
    if (server->cfg.server_header && OUT_LIT(h, "server: casgi\r\n"))
        return;
    if (server->cfg.date_header &&
        (OUT_LIT(h, "date: ") || out(h, casgi__date_now(&server->date), CASGI_DATE_LEN) ||
         OUT_LIT(h, "\r\n")))
        return;
    /* the config's default headers go on every response, the server's own too (as uvicorn's
     * and as over HTTP/2) */
    for (size_t i = 0; i < server->cfg.num_headers; i++)
        if (out_header(h, &server->default_headers[i]))
            return;
    if (OUT_LIT(h, "\r\n") || out(h, reason, strlen(reason)) || OUT_LIT(h, "\n"))
        return;
    casgi__conn_read_stop(h->conn);
    casgi__conn_close_after_flush(h->conn);
}

/* ---- parser callbacks ------------------------------------------------------------------- */

static int grow_head(http1_t *h, size_t len)
{
    h->head_size += len;
    if (h->head_size > h->server->cfg.max_request_head) {
        h->error_status = 431;
        return -1;
    }
    return 0;
}

/* Counts a span of the head against the limit; its offset in `head`, once copied, in *off. */
static int take_head(http1_t *h, const char *at, size_t len, size_t *off)
{
    if (grow_head(h, len))
        return -1;
    if (h->span_base == NULL) {
        h->span_base = at;
        h->span_base_off = h->head.len;
    }
    h->span_end = at + len;
    *off = h->span_base_off + (size_t)(at - h->span_base);
    return 0;
}

/* Copies this read's part of the head into `head`, while the input it points into is intact. */
static int head_copy(http1_t *h)
{
    if (h->span_base == NULL)
        return 0;
    int err = head_append(h, h->span_base, (size_t)(h->span_end - h->span_base));
    h->span_base = NULL;
    return err;
}

static int on_message_begin(llhttp_t *p)
{
    http1_t *h = p->data;
    casgi__buf_clear(&h->head);
    casgi__buf_clear(&h->body);
    h->num_fields = 0;
    h->url_off = h->url_len = 0;
    h->head_size = 0;
    h->error_status = 0;
    h->error_why = NULL;
    h->body_received = 0;
    h->in_request = 1;
    h->in_field_name = 0;
    h->head_done = 0;
    h->ws_upgrade = 0;
    h->h2c_upgrade = 0;
    h->response_started = 0;
    h->message_complete = h->final_delivered = 0;
    h->expect_continue = h->continue_sent = 0;
    h->chunked = h->no_body = h->has_length = h->will_close = 0;
    h->trailers_begun = h->response_done = 0;
    h->content_length = h->body_sent = 0;
    h->request_start = h->server->cfg.access_log ? uv_hrtime() : 0;
    h->head_deadline_set = 0; /* see parse() */
    h->span_base = NULL;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    http1_t *h = p->data;
    size_t off;
    h->url_len += len;
    if (h->url_len > h->server->cfg.max_url) {
        h->error_status = 414;
        return -1;
    }
    if (take_head(h, at, len, &off))
        return -1;
    if (h->url_len == len)
        h->url_off = off;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    http1_t *h = p->data;
    if (h->head_done)
        return 0; /* ASGI has no request trailers; the scope's strings must not move */
    field_t *f = h->num_fields ? &h->fields[h->num_fields - 1] : NULL;
    size_t off;
    if (!h->in_field_name) {
        h->in_field_name = 1;
        /* a new field starts: 4 more bytes of ": " and CRLF count toward the limit */
        if (grow_head(h, 4))
            return -1;
        if (h->num_fields == h->fields_cap && spill_fields(h))
            return -1;
        f = &h->fields[h->num_fields++];
        f->name_len = 0;
        f->value_off = f->value_len = 0;
    }
    if (take_head(h, at, len, &off))
        return -1;
    if (f->name_len == 0)
        f->name_off = off;
    f->name_len += len;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    http1_t *h = p->data;
    h->in_field_name = 0;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    http1_t *h = p->data;
    if (h->head_done)
        return 0;
    field_t *f = &h->fields[h->num_fields - 1];
    if (f->value_len > 0 && at != h->value_end && at != h->exec_data) {
        /* llhttp joins obs-fold lines silently; RFC 9112 5.2 lets us refuse them, and a value
         * split by a fold is a classic smuggling vector. */
        h->error_status = 400;
        h->error_why = "obsolete line folding in a header value";
        return -1;
    }
    h->value_end = at + len;
    size_t off;
    if (take_head(h, at, len, &off))
        return -1;
    if (f->value_len == 0)
        f->value_off = off;
    f->value_len += len;
    return 0;
}

/* Builds the scope from the head; 0, or -1 with h->error_status set. */
static int build_scope(http1_t *h)
{
    casgi_server_t *server = h->server;
    casgi__conn_t *conn = h->conn;
    llhttp_t *p = &h->parser;

    /* The head in one piece, and room for the decoded path: the pointers taken below stay put. */
    size_t root_len = strlen(server->root_path);
    if (head_copy(h) || scratch_reserve(h, &h->head, h->url_len + 2 * root_len + 1))
        return -1;

    casgi_scope_t *scope = &h->call.scope;
    char *base = h->head.base;
    int hosts = 0;
    uint64_t declared_length = 0;
    int has_length = 0;
    for (size_t i = 0; i < h->num_fields; i++) {
        field_t f = h->fields[i]; /* copied: hd overwrites it in place */
        casgi_header_t *hd = (casgi_header_t *)&h->fields[i];
        hd->name = (casgi_bytes_t){base + f.name_off, f.name_len};
        /* llhttp lets "Name :" and "Bad Name:" through; RFC 9112 5.1 says 400 */
        if (!casgi__headers_lower_token(base + f.name_off, f.name_len)) {
            h->error_status = 400;
            h->error_why = "invalid header name";
            return -1;
        }
        size_t vlen = f.value_len;
        while (vlen > 0 &&
               (base[f.value_off + vlen - 1] == ' ' || base[f.value_off + vlen - 1] == '\t'))
            vlen--; /* trailing OWS is not part of the value (RFC 9110 5.5) */
        hd->value = (casgi_bytes_t){vlen ? base + f.value_off : base, vlen};
        if (CASGI_NAME_IS(hd->name, "host"))
            hosts++;
        else if (CASGI_NAME_IS(hd->name, "expect"))
            h->expect_continue = CASGI_NAME_IS(hd->value, "100-continue");
        else if (CASGI_NAME_IS(hd->name, "content-length"))
            has_length = casgi__headers_parse_length(hd->value, &declared_length) == 0;
    }

    if (p->http_major != 1) {
        /* HTTP/0.9 has no version (and no headers); 2.x and beyond do not come this way */
        h->error_status = p->http_major == 0 ? 400 : 505;
        h->error_why = "unsupported HTTP version";
        return -1;
    }
    h->http10 = p->http_minor == 0;
    if (!h->http10 && hosts != 1) {
        /* RFC 9112 3.2: a 1.1 request without exactly one Host is a 400 */
        h->error_status = 400;
        h->error_why = "missing or duplicate Host header";
        return -1;
    }
    if (h->http10)
        h->expect_continue = 0;
    if (server->cfg.max_body_size && has_length && declared_length > server->cfg.max_body_size) {
        h->error_status = 413;
        return -1;
    }

    casgi__call_init(&h->call, &call_ops, server);
    scope->type = CASGI_SCOPE_HTTP;
    scope->asgi_version = "3.0";
    scope->spec_version = "2.5";
    scope->http_version = h->http10 ? "1.0" : "1.1";
    const char *method = llhttp_method_name((llhttp_method_t)p->method);
    scope->method = (casgi_bytes_t){method, strlen(method)};
    scope->scheme = conn->scheme;
    casgi_bytes_t target = {base + h->url_off, h->url_len};
    h->head.len +=
        casgi__scope_set_target(scope, target, server->root_path, root_len, base + h->head.len);
    scope->headers = (const casgi_header_t *)h->fields;
    scope->num_headers = h->num_fields;
    scope->client = conn->client;
    scope->server = conn->local;
    /* 1xx responses are HTTP/1.1's: a 1.0 client would take a 103 for the final answer */
    scope->extensions = CASGI_EXT_HTTP_RESPONSE_TRAILERS |
                        (h->http10 ? 0u : (unsigned)CASGI_EXT_HTTP_RESPONSE_EARLY_HINT);

    h->is_head = p->method == HTTP_HEAD;
    h->keep_alive = llhttp_should_keep_alive(p) != 0;
    h->client_closes = !h->keep_alive;
    return 0;
}

/*
 * RFC 7540 3.2: "Upgrade: h2c" with exactly one HTTP2-Settings, named in Connection too. The
 * request (body included) becomes stream 1, so its body must be complete before the switch: we
 * take the upgrade only for a body of known, small length, and serve anything else as HTTP/1.1,
 * which the RFC allows.
 */
static int wants_h2c(http1_t *h)
{
    const casgi_scope_t *scope = &h->call.scope;
    llhttp_t *p = &h->parser;
    if (!h->server->cfg.http2 || h->http10 || (p->flags & F_CHUNKED) ||
        ((p->flags & F_CONTENT_LENGTH) && p->content_length > h->server->cfg.high_water_mark))
        return 0;
    int upgrade = 0, settings = 0, conn_option = 0;
    for (size_t i = 0; i < scope->num_headers; i++) {
        casgi_bytes_t name = scope->headers[i].name, value = scope->headers[i].value;
        if (CASGI_NAME_IS(name, "upgrade"))
            upgrade |= casgi__headers_has_token(value, "h2c", 3);
        else if (CASGI_NAME_IS(name, "http2-settings"))
            settings++;
        else if (CASGI_NAME_IS(name, "connection"))
            conn_option |= casgi__headers_has_token(value, "http2-settings", 14);
    }
    return upgrade && settings == 1 && conn_option;
}

static int on_headers_complete(llhttp_t *p)
{
    http1_t *h = p->data;
    casgi__conn_clear_deadline(h->conn);
    if (build_scope(h) != 0)
        return -1;
    h->head_done = 1;
    if (p->upgrade && h->server->cfg.ws && casgi__websocket_is_upgrade(&h->call.scope)) {
        /* no body; llhttp_execute() returns HPE_PAUSED_UPGRADE right after the head */
        h->ws_upgrade = 1;
        return 2;
    }
    if (p->upgrade && wants_h2c(h)) {
        /* the body (small, by wants_h2c) is collected; the upgrade pause follows the message */
        h->h2c_upgrade = 1;
        return 0;
    }
    h->dispatch = 1;
    /* The app is called from run(), outside the parser. A request without a body runs on to
     * on_message_complete, which pauses; one with a body pauses here, so the app starts before
     * the body arrives and streams it. */
    int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length);
    return has_body ? HPE_PAUSED : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    http1_t *h = p->data;
    h->body_received += len;
    uint64_t max = h->server->cfg.max_body_size;
    if (max && h->body_received > max) {
        h->error_status = 413;
        return -1;
    }
    if (h->h2c_upgrade) /* stream 1's body, bounded by wants_h2c() */
        return scratch_reserve(h, &h->body, len) || casgi__buf_append(&h->body, at, len) ? -1 : 0;
    /* Nobody will read it once the app is gone or the response is out: drop it. */
    if (!h->call_live || h->call.disconnected || h->call.response == CASGI__RESPONSE_COMPLETE)
        return 0;
    if (scratch_reserve(h, &h->body, len))
        return -1;
    return casgi__buf_append(&h->body, at, len) ? -1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
    http1_t *h = p->data;
    h->in_request = 0;
    if (h->ws_upgrade || h->h2c_upgrade)
        return 0; /* the upgrade pause follows */
    h->message_complete = 1;
    /* One request at a time: pipelined bytes wait in rbuf until this call is over. */
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the response ------------------------------------------------------------------------ */

static void response_done(http1_t *h)
{
    h->response_done = 1;
    casgi__server_request_done(h->server);
    casgi__call_log_request(&h->call, (casgi_bytes_t){h->head.base + h->url_off, h->url_len},
                            h->request_start);
    if (h->will_close) {
        /* a client that asked to close, and sent all of its request, sends nothing more */
        if (h->client_closes && h->message_complete)
            h->conn->peer_done = 1;
        casgi__conn_close_after_flush(h->conn);
    }
    wake(h);
}

static int write_head(http1_t *h, const casgi_event_t *ev)
{
    casgi_server_t *server = h->server;
    const casgi_header_t *headers = ev->start.headers;
    size_t n = ev->start.num_headers;
    int status = ev->start.status;
    int has_date = 0, has_server = 0, has_length = 0, app_close = 0;
    uint64_t content_length = 0;
    uint64_t framing = 0; /* bit i: headers[i] is framing, decided by us (first 64 headers) */
    /* status line, server, date, framing, connection and the final CRLF fit in this */
    size_t size = 64 + 16 + 40 + 48 + 28 + 2;

    /* Validate everything before any state changes: a refused start leaves no trace. */
    for (size_t i = 0; i < n; i++) {
        casgi_bytes_t name = headers[i].name, value = headers[i].value;
        size += name.len + value.len + 4;
        switch (name.len) { /* the length rules out most names before any byte compare */
        case 14:
            if (CASGI_NAME_IS(name, "content-length")) {
                uint64_t len;
                if (casgi__headers_parse_length(value, &len) != 0 ||
                    (has_length && len != content_length))
                    return CASGI_EHEADER;
                has_length = 1;
                content_length = len;
                framing |= i < 64 ? 1ull << i : 0;
            }
            break;
        case 17:
            if (CASGI_NAME_IS(name, "transfer-encoding"))
                framing |= i < 64 ? 1ull << i : 0;
            break;
        case 10:
            if (CASGI_NAME_IS(name, "connection")) {
                app_close |= casgi__headers_has_token(value, "close", 5);
                framing |= i < 64 ? 1ull << i : 0;
            }
            break;
        case 4: has_date |= CASGI_NAME_IS(name, "date"); break;
        case 6: has_server |= CASGI_NAME_IS(name, "server"); break;
        }
    }

    for (size_t i = 0; i < server->cfg.num_headers; i++)
        size += server->default_headers[i].name.len + server->default_headers[i].value.len + 4;
    h->response_started = 1;
    h->has_length = has_length;
    h->content_length = content_length;
    h->will_close = app_close;
    int bodiless_status = status == 204 || status == 304;
    h->no_body = h->is_head || bodiless_status;
    /* Without the body read, and without a 100 sent, the client may or may not send it: close. */
    if (!h->keep_alive || h->shutting_down ||
        (h->expect_continue && !h->continue_sent && !h->message_complete))
        h->will_close = 1;
    h->chunked = 0;
    if (bodiless_status) {
        h->has_length = h->has_length && status == 304;
    } else if (ev->start.trailers && !h->http10) {
        h->chunked = 1; /* trailers need chunked framing; a declared length cannot coexist */
        h->has_length = 0;
    } else if (!h->has_length) {
        if (h->http10)
            h->will_close = 1; /* close-delimited */
        else
            h->chunked = 1;
    }

    /* One reservation, then plain stores: the head is built in place in the output buffer. */
    if (casgi__conn_reserve_output(h->conn, size))
        return CASGI_ENOMEM;
    casgi__buf_t *w = &h->conn->wbuf;
    char *p = w->base + w->len;
    p += casgi__http1_status_line(status, p);
    if (server->cfg.server_header && !has_server)
        p = PUT_LIT(p, "server: casgi\r\n");
    if (server->cfg.date_header && !has_date) {
        p = PUT_LIT(p, "date: ");
        p = put(p, casgi__date_now(&server->date), CASGI_DATE_LEN);
        p = PUT_LIT(p, "\r\n");
    }
    for (size_t i = 0; i < server->cfg.num_headers; i++)
        p = put_header(p, &server->default_headers[i]);
    for (size_t i = 0; i < n; i++) {
        casgi_bytes_t name = headers[i].name;
        int ours = i < 64 ? (int)(framing >> i & 1)
                          : CASGI_NAME_IS(name, "content-length") ||
                                CASGI_NAME_IS(name, "transfer-encoding") ||
                                CASGI_NAME_IS(name, "connection");
        if (!ours) /* framing is ours to decide */
            p = put_header(p, &headers[i]);
    }
    if (h->has_length) {
        p = PUT_LIT(p, "content-length: ");
        p += fmt_u64(p, h->content_length);
        p = PUT_LIT(p, "\r\n");
    } else if (h->chunked) {
        p = PUT_LIT(p, "transfer-encoding: chunked\r\n");
    }
    if (h->will_close)
        p = PUT_LIT(p, "connection: close\r\n");
    else if (h->http10)
        p = PUT_LIT(p, "connection: keep-alive\r\n");
    p = PUT_LIT(p, "\r\n");
    w->len = (size_t)(p - w->base);
    return 0;
}

static int write_body(http1_t *h, const casgi_event_t *ev)
{
    casgi_bytes_t data = ev->body.body;
    int last = !ev->body.more_body;
    int done = last && !h->call.trailers_announced;
    if (h->no_body) {
        /* HEAD, 204 and 304 carry no body whatever the app sends */
    } else if (h->chunked) {
        if (data.len > 0) {
            char size[20];
            size_t n = fmt_hex(size, data.len);
            size[n++] = '\r';
            size[n++] = '\n';
            if (out(h, size, n) || out(h, data.base, data.len) || OUT_LIT(h, "\r\n"))
                return CASGI_ENOMEM;
        }
        if (done && OUT_LIT(h, "0\r\n\r\n"))
            return CASGI_ENOMEM;
    } else if (h->has_length) {
        if (h->body_sent + data.len > h->content_length ||
            (last && h->body_sent + data.len < h->content_length)) {
            CASGI_LOG(&h->server->log, CASGI_LOG_ERROR,
                      "Response content %s than Content-Length (%llu bytes); aborting",
                      h->body_sent + data.len > h->content_length ? "longer" : "shorter",
                      (unsigned long long)h->content_length);
            casgi__conn_close(h->conn);
            return CASGI_ELENGTH;
        }
        if (out(h, data.base, data.len))
            return CASGI_ENOMEM;
    } else if (out(h, data.base, data.len)) {
        return CASGI_ENOMEM;
    }
    h->body_sent += data.len;
    if (done)
        response_done(h);
    return 0;
}

static int write_trailers(http1_t *h, const casgi_event_t *ev)
{
    int last = !ev->trailers.more_trailers;
    if (h->chunked && !h->no_body) {
        if (!h->trailers_begun && OUT_LIT(h, "0\r\n"))
            return CASGI_ENOMEM;
        h->trailers_begun = 1;
        for (size_t i = 0; i < ev->trailers.num_headers; i++)
            if (out_header(h, &ev->trailers.headers[i]))
                return CASGI_ENOMEM;
        if (last && OUT_LIT(h, "\r\n"))
            return CASGI_ENOMEM;
    }
    if (last)
        response_done(h);
    return 0;
}

/* A 103 Early Hints response (RFC 8297) before the final one: one link line per value. */
static int write_early_hint(http1_t *h, const casgi_event_t *ev)
{
    if (ev->early_hint.num_links == 0)
        return 0;
    if (OUT_LIT(h, "HTTP/1.1 103 Early Hints\r\n"))
        return CASGI_ENOMEM;
    for (size_t i = 0; i < ev->early_hint.num_links; i++) {
        casgi_bytes_t link = ev->early_hint.links[i];
        if (OUT_LIT(h, "link: ") || out(h, link.base, link.len) || OUT_LIT(h, "\r\n"))
            return CASGI_ENOMEM;
    }
    return OUT_LIT(h, "\r\n") ? CASGI_ENOMEM : 0;
}

/* ---- call operations -------------------------------------------------------------------- */

static int call_send(casgi_call_t *call, const casgi_event_t *ev)
{
    http1_t *h = container_of(call, http1_t, call);
    if (h->conn == NULL || h->broken) {
        call->disconnected = 1;
        return CASGI_EDISCONNECTED;
    }
    int err;
    switch (ev->type) {
    case CASGI_EVENT_HTTP_RESPONSE_START: {
        size_t mark = h->conn->wbuf.len;
        err = write_head(h, ev);
        if (err && h->conn && !h->conn->closing)
            h->conn->wbuf.len = mark; /* nothing of a refused head reaches the wire */
        break;
    }
    case CASGI_EVENT_HTTP_RESPONSE_BODY: err = write_body(h, ev); break;
    case CASGI_EVENT_HTTP_RESPONSE_TRAILERS: err = write_trailers(h, ev); break;
    case CASGI_EVENT_HTTP_RESPONSE_EARLY_HINT: err = write_early_hint(h, ev); break;
    default: return CASGI_EEVENT;
    }
    if (h->conn != NULL)
        casgi__conn_flush_later(h->conn);
    return err;
}

static void call_wake(casgi_call_t *call)
{
    wake(container_of(call, http1_t, call));
}

static void call_abort(casgi_call_t *call)
{
    http1_t *h = container_of(call, http1_t, call);
    if (h->conn != NULL)
        casgi__conn_close(h->conn);
}

static void call_end(casgi_call_t *call, int error)
{
    http1_t *h = container_of(call, http1_t, call);
    casgi_server_t *server = h->server;
    h->call_live = 0;
    casgi__buf_clear(&h->body); /* nobody will read it; it must not hold back parsing */
    if (h->conn != NULL)
        wake(h);
    unref(h);
    /* last: after a forced shutdown this may release the server itself */
    casgi__server_call_ended(server);
}

static const casgi__call_ops_t call_ops = {
    .send = call_send,
    .wake = call_wake,
    .abort = call_abort,
    .end = call_end,
};

/* ---- the engine ------------------------------------------------------------------------- */

/* Completes a pending receive when there is something to say; 1 when it did. */
static int deliver(http1_t *h)
{
    casgi_call_t *call = &h->call;
    int final = h->message_complete;
    switch (casgi__call_deliver_http(call, h->conn == NULL, &h->body, final, h->final_delivered)) {
    case CASGI__DELIVERED_DISCONNECT: return 1;
    case CASGI__DELIVERED_BODY:
        h->final_delivered = final;
        casgi__buf_clear(&h->body);
        return 1;
    case CASGI__DELIVERED_NOTHING: break;
    }
    if (!h->final_delivered && h->expect_continue && !h->continue_sent &&
        call->response == CASGI__RESPONSE_NONE) {
        /* The app asked for the body: now, and only now, invite the client to send it. */
        h->continue_sent = 1;
        OUT_LIT(h, "HTTP/1.1 100 Continue\r\n\r\n");
        casgi__conn_flush_later(h->conn);
    }
    return 0;
}

/* Starts the app for a request whose head is complete. */
static void dispatch(http1_t *h)
{
    h->dispatch = 0;
    if (casgi__server_over_limit(h->server)) {
        respond_error(h, 503, "");
        return;
    }
    h->call_live = 1;
    h->refs++;
    if (h->shutting_down)
        h->keep_alive = 0;
    casgi__server_call_started(h->server);
    casgi__call_start(&h->call);
}

/* The call is over and its response complete: keep the connection for the next request or close. */
static void finish_request(http1_t *h)
{
    h->message_complete = 0;
    h->response_done = 0;
    /* A pipelined request already waiting reuses the blocks; otherwise they go back now. */
    if (casgi__buf_size(&h->conn->rbuf) == 0)
        release_scratch(h);
    if (!h->keep_alive || h->will_close || h->shutting_down) {
        casgi__conn_close_after_flush(h->conn);
        h->broken = 1;
        return;
    }
    casgi__conn_set_deadline(h->conn, h->server->cfg.timeout_keep_alive);
}

/*
 * Hands the connection to websocket.c, with whatever the client sent after the head still in
 * rbuf. This http1 state lets go of the connection for good.
 */
static void upgrade_to_websocket(http1_t *h)
{
    casgi__conn_t *conn = h->conn;
    if (casgi__server_over_limit(h->server)) {
        respond_error(h, 503, "");
        return;
    }
    casgi__conn_read_stop(conn);
    if (casgi__websocket_takeover(conn, &h->call.scope) != 0) {
        respond_error(h, 500, "out of memory");
        return;
    }
    h->conn = NULL;
    /* Drop the connection's reference (conn->proto is websocket.c's now). run() holds one more,
     * so this never frees: the last unref happens when run() returns. */
    CASGI_ASSERT(h->refs > 1);
    h->refs--;
}

/* base64url without padding (RFC 7540 3.2.1), as HTTP2-Settings carries it. -1 when invalid. */
static ssize_t decode_base64url(casgi_bytes_t in, uint8_t *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        char c = in.base[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-' || c == '+' ? 62
                : c == '_' || c == '/' ? 63
                : c == '='             ? -2
                                       : -1;
        if (v == -2)
            break;
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)n;
}

/*
 * Answers 101 and hands the connection to http2.c, the request becoming stream 1 (RFC 7540 3.2).
 * Settings that do not decode, or hold values out of range, mean the upgrade is ignored and the
 * request served as HTTP/1.1.
 */
static void upgrade_to_http2(http1_t *h)
{
    casgi__conn_t *conn = h->conn;
    const casgi_scope_t *scope = &h->call.scope;
    uint8_t settings[6 * 16];
    ssize_t n = -1;
    for (size_t i = 0; i < scope->num_headers; i++)
        if (CASGI_NAME_IS(scope->headers[i].name, "http2-settings"))
            n = decode_base64url(scope->headers[i].value, settings, sizeof(settings));
    if (n < 0 || !casgi__http2_settings_valid(settings, (size_t)n)) {
        CASGI_LOG(&h->server->log, CASGI_LOG_INFO,
                  "Ignoring Upgrade: h2c with an invalid HTTP2-Settings header");
        h->h2c_upgrade = 0;
        h->dispatch = 1;
        h->message_complete = 1;
        llhttp_resume_after_upgrade(&h->parser);
        return;
    }
    casgi__conn_read_stop(conn);
    if (OUT_LIT(h,
                "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"))
        return;
    casgi_bytes_t body = {casgi__buf_data(&h->body), casgi__buf_size(&h->body)};
    if (casgi__http2_upgrade(conn, scope, settings, (size_t)n, body) != 0) {
        CASGI_LOG(&h->server->log, CASGI_LOG_ERROR, "cannot switch to HTTP/2; closing");
        casgi__conn_close(conn);
        return;
    }
    h->conn = NULL;
    CASGI_ASSERT(h->refs > 1);
    h->refs--;
}

static const char *parse_error_reason(http1_t *h, llhttp_errno_t err)
{
    if (h->error_why)
        return h->error_why;
    switch (h->error_status) {
    case 413: return "request body too large";
    case 414: return "request target too long";
    case 431: return "request head too large";
    }
    if (err == HPE_PAUSED_H2_UPGRADE)
        return "HTTP/2 preface on an HTTP/1 connection";
    const char *reason = llhttp_get_error_reason(&h->parser);
    return reason ? reason : llhttp_errno_name(err);
}

/* Feeds buffered input to llhttp until it pauses or runs dry. 1 when something moved. */
static int parse(http1_t *h)
{
    casgi__conn_t *conn = h->conn;
    const char *data = casgi__buf_data(&conn->rbuf);
    size_t len = casgi__buf_size(&conn->rbuf);
    h->exec_data = data;
    llhttp_errno_t err = llhttp_execute(&h->parser, data, len);
    size_t consumed = len;
    if (err == HPE_OK && h->in_request && !h->head_done) {
        /* A head split across reads: what this read brought must leave rbuf before it moves. */
        if (head_copy(h) != 0) {
            respond_error(h, 500, "out of memory");
            return 1;
        }
        /* The request-head deadline (against slowloris) is armed only for a head that did not
         * arrive whole: most arrive in one read, and arming and clearing it costs more than
         * parsing them. */
        if (!h->head_deadline_set) {
            h->head_deadline_set = 1;
            casgi__conn_set_deadline(conn, h->server->cfg.timeout_request_header);
        }
    }
    switch (err) {
    case HPE_OK: break;
    case HPE_PAUSED:
        consumed = (size_t)(llhttp_get_error_pos(&h->parser) - data);
        llhttp_resume(&h->parser);
        break;
    case HPE_PAUSED_UPGRADE:
        consumed = (size_t)(llhttp_get_error_pos(&h->parser) - data);
        if (h->ws_upgrade) {
            casgi__buf_consume(&conn->rbuf, consumed);
            upgrade_to_websocket(h);
            return 1;
        }
        if (h->h2c_upgrade) {
            casgi__buf_consume(&conn->rbuf, consumed);
            upgrade_to_http2(h);
            return 1;
        }
        /* An upgrade we do not take (another protocol, or h2c declined by wants_h2c): the
         * request is served as plain HTTP/1.1. */
        llhttp_resume_after_upgrade(&h->parser);
        break;
    default: {
        int status = h->error_status ? h->error_status : 400;
        respond_error(h, status, parse_error_reason(h, err));
        return 1;
    }
    }
    casgi__buf_consume(&conn->rbuf, consumed);
    return 1;
}

static int can_parse(const http1_t *h)
{
    const casgi__conn_t *conn = h->conn;
    return conn != NULL && !conn->closing && !conn->lingering && !conn->close_after_flush &&
           !h->broken && !h->dispatch && !h->message_complete && casgi__buf_size(&conn->rbuf) > 0 &&
           casgi__buf_size(&h->body) < h->server->cfg.high_water_mark;
}

static void update_reading(http1_t *h)
{
    casgi__conn_t *conn = h->conn;
    if (conn == NULL || conn->closing || conn->lingering)
        return;
    size_t hwm = h->server->cfg.high_water_mark;
    int want = !h->broken && !conn->close_after_flush && casgi__buf_size(&h->body) < hwm &&
               casgi__buf_size(&conn->rbuf) < hwm;
    if (want)
        casgi__conn_read_start(conn);
    else
        casgi__conn_read_stop(conn);
}

static void run(http1_t *h)
{
    h->refs++;
    h->task.running++;
    for (;;) {
        casgi__conn_t *conn = h->conn;
        if (h->dispatch && conn != NULL && !h->broken) {
            dispatch(h);
            continue;
        }
        if (h->call_live && h->call.recv_cb && deliver(h))
            continue;
        if (h->call_live && h->call.send_cb &&
            (conn == NULL || casgi__conn_buffered(conn) < h->server->cfg.high_water_mark)) {
            casgi__call_send_done(&h->call, conn == NULL ? CASGI_EDISCONNECTED : 0);
            continue;
        }
        if (conn == NULL || conn->closing)
            break;
        if (!h->call_live && h->message_complete && h->response_done && !h->broken) {
            finish_request(h);
            continue;
        }
        if (can_parse(h) && parse(h))
            continue;
        break;
    }
    h->task.running--;
    update_reading(h);
    park_if_idle(h);
    unref(h);
}

/* ---- connection events ------------------------------------------------------------------ */

/*
 * Between requests a connection keeps no http1 state at all (conn->proto_data is NULL): an idle
 * keep-alive connection costs its socket and conn struct, not another 600 bytes of parser and call
 * (issue 5's memory target). The state comes back, fresh, with the next bytes.
 */
static http1_t *http1_new(casgi__conn_t *conn)
{
    http1_t *h = casgi__pool_take(&conn->server->http1_states, sizeof(*h));
    if (h == NULL)
        return NULL;
    memset(h, 0, offsetof(http1_t, fields_inline));
    h->conn = conn;
    h->server = conn->server;
    h->refs = 1; /* the connection's */
    h->task.run = on_task;
    casgi__list_init(&h->task.node);
    fields_inline_again(h);
    llhttp_init(&h->parser, HTTP_REQUEST, &parser_settings);
    h->parser.data = h;
    h->shutting_down = casgi__server_stopping(conn->server);
    conn->proto_data = h;
    return h;
}

/* Called at the end of run(): lets go of the state when the connection is between requests. */
static void park_if_idle(http1_t *h)
{
    casgi__conn_t *conn = h->conn;
    if (conn == NULL || conn->closing || conn->lingering || conn->close_after_flush ||
        h->call_live || h->dispatch || h->in_request || h->message_complete || h->broken ||
        casgi__buf_size(&conn->rbuf) > 0)
        return;
    conn->proto_data = NULL;
    h->conn = NULL;
    /* the connection's reference; run() still holds one, so the state goes when run() returns */
    CASGI_ASSERT(h->refs > 1);
    h->refs--;
}

static void on_read(casgi__conn_t *conn)
{
    http1_t *h = conn->proto_data;
    if (h == NULL && (h = http1_new(conn)) == NULL) {
        CASGI_LOG(&conn->server->log, CASGI_LOG_ERROR, "out of memory for a request");
        casgi__conn_close(conn);
        return;
    }
    run(h);
}

static void on_drain(casgi__conn_t *conn)
{
    http1_t *h = conn->proto_data;
    /* Idle time counts from the last byte written, not from when the response was queued: a
     * slow reader of a large response is not an idle client. */
    if (h == NULL || (!h->in_request && !h->call_live && !h->dispatch && !h->broken))
        casgi__conn_set_deadline(conn, conn->server->cfg.timeout_keep_alive);
    if (h != NULL)
        run(h);
}

static void on_read_error(casgi__conn_t *conn, int status)
{
    http1_t *h = conn->proto_data;
    if (h != NULL && h->in_request && status != UV_EOF)
        CASGI_LOG(&h->server->log, CASGI_LOG_DEBUG, "connection lost: %s", casgi_strerror(status));
}

static void on_timeout(casgi__conn_t *conn)
{
    http1_t *h = conn->proto_data;
    if (h != NULL && h->in_request && !h->dispatch && !h->call_live)
        CASGI_LOG(&h->server->log, CASGI_LOG_WARNING,
                  "Request header timeout: closing a connection that did not complete its request"
                  " head in time.");
    casgi__conn_close(conn);
}

static void on_shutdown(casgi__conn_t *conn)
{
    http1_t *h = conn->proto_data;
    if (h != NULL) {
        h->shutting_down = 1;
        int between_requests = !h->call_live && !h->dispatch && !h->message_complete &&
                               !h->in_request && casgi__buf_size(&conn->rbuf) == 0;
        if (!between_requests)
            return; /* the request in progress finishes first, then the connection closes */
    }
    if (casgi__conn_buffered(conn) > 0)
        casgi__conn_close_after_flush(conn); /* the last response is still on its way out */
    else
        casgi__conn_close(conn);
}

static void on_close(casgi__conn_t *conn)
{
    http1_t *h = conn->proto_data;
    if (h == NULL)
        return;
    h->conn = NULL;
    if (h->call_live) {
        h->call.disconnected = 1;
        wake(h);
    }
    unref(h);
}

static const casgi__proto_t proto = {
    .name = "http/1.1",
    .on_read = on_read,
    .on_read_error = on_read_error,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_shutdown = on_shutdown,
    .on_close = on_close,
};

int casgi__http1_attach(casgi__conn_t *conn)
{
    /* No state until the first bytes arrive (see http1_new). */
    casgi__conn_set_proto(conn, &proto, NULL);
    casgi__conn_set_deadline(conn, conn->server->cfg.timeout_keep_alive);
    casgi__conn_read_start(conn);
    return 0;
}
