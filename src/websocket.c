/*
 * WebSocket: the handshake on a carrier (an HTTP/1.1 connection http1.c handed over, or an HTTP/2
 * stream opened by an extended CONNECT), then wslay for the framing and this file for the rest
 * (UTF-8, permessage-deflate, keepalive, backpressure, close codes) behind the ASGI websocket
 * scope. All I/O goes through the carrier's casgi__ws_transport_t; the HTTP/1.1 carrier is at the
 * end of this file. As in http1.c all progress happens in run(): after a read, after a write
 * drained, and from the server's task queue; the app is never called from inside wslay.
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#include "call.h"
#include "date.h"
#include "headers.h"
#include "http1.h"
#include "websocket.h"
#include "ws_deflate.h"

/* How long we wait for the client's close frame after sending ours. */
#define CLOSE_WAIT_MS 5000

typedef struct msg_s {
    struct msg_s *next;
    int is_text;
    size_t len;
    char data[];
} msg_t;

typedef enum {
    WS_HANDSHAKE = 0, /* the app has not answered the upgrade yet */
    WS_DENYING,       /* the app streams an HTTP response instead (denial extension) */
    WS_OPEN,
    WS_DONE, /* the carrier is ending or gone; nothing more goes to the client */
} ws_state_t;

struct ws_s {
    /* carrier */
    const casgi__ws_transport_t *tr; /* NULL once it is gone or we aborted it */
    void *t;
    unsigned finished : 1; /* tr->finish() was called: nothing more is written or read */

    casgi_server_t *server;
    casgi__task_t task;
    int refs; /* the carrier (until on_close), the app while it holds the call, run() */
    casgi_call_t call;
    ws_state_t state;
    wslay_event_context_ptr ctx;

    /* scope: every string copied into one block */
    char *arena;
    casgi_bytes_t key;

    /* permessage-deflate */
    int deflate_on;
    casgi__ws_deflate_params_t deflate_params;
    casgi__ws_deflate_t *deflate;
    char deflate_response[160];
    casgi__buf_t scratch; /* inflated messages, compressed output */

    /* received messages waiting for the app */
    msg_t *head, *tail;
    unsigned queued;

    unsigned app_live : 1;
    unsigned connect_delivered : 1;
    unsigned disconnect_delivered : 1;
    unsigned close_known : 1; /* close_code/close_reason are final */
    unsigned awaiting_pong : 1;
    unsigned bad_frame : 1;     /* a frame header broke the rules; nothing more goes to wslay */
    unsigned close_pending : 1; /* our close waits behind the messages queued before it */
    /* frame boundaries, tracked on the way to wslay (see check_frames) */
    uint64_t frame_left;
    unsigned char hdr[14];
    unsigned hdr_len;
    unsigned shutting_down : 1;
    int close_code;
    size_t close_reason_len;
    char close_reason[124];
};
typedef casgi__websocket_t ws_t;

static const casgi__call_ops_t call_ops;
static void run(ws_t *w);

/* ---- helpers ---------------------------------------------------------------------------- */

void casgi__websocket_accept_key(casgi_bytes_t key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    /* key (24 bytes when valid, checked before) + GUID: one SHA-1 over a stack buffer */
    char input[64 + sizeof(guid)];
    size_t n = key.len < 64 ? key.len : 64;
    memcpy(input, key.base, n);
    memcpy(input + n, guid, sizeof(guid) - 1);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)input, n + sizeof(guid) - 1, digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH); /* 28 chars + NUL */
}

static const casgi_header_t *find_header(const casgi_scope_t *scope, const char *lower, size_t len)
{
    for (size_t i = 0; i < scope->num_headers; i++)
        if (casgi__headers_name_is(scope->headers[i].name, lower, len))
            return &scope->headers[i];
    return NULL;
}
#define FIND(scope, lit) find_header((scope), (lit), sizeof(lit) - 1)

int casgi__websocket_is_upgrade(const casgi_scope_t *scope)
{
    /* RFC 6455 4.1: a GET of HTTP/1.1 or later; an HTTP/1.0 request stays plain HTTP */
    if (!CASGI_NAME_IS(scope->method, "get") || strcmp(scope->http_version, "1.0") == 0)
        return 0;
    const casgi_header_t *upgrade = FIND(scope, "upgrade");
    if (upgrade == NULL || !casgi__headers_has_token(upgrade->value, "websocket", 9))
        return 0;
    /* Connection may come in several headers; any of them may carry the token. */
    for (size_t i = 0; i < scope->num_headers; i++)
        if (CASGI_NAME_IS(scope->headers[i].name, "connection") &&
            casgi__headers_has_token(scope->headers[i].value, "upgrade", 7))
            return 1;
    return 0;
}

/* A valid Sec-WebSocket-Key is the base64 of 16 bytes: 22 characters and "==". */
static int valid_key(casgi_bytes_t key)
{
    if (key.len != 24 || key.base[22] != '=' || key.base[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++) {
        char c = key.base[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return 0;
    }
    /* the last character before the padding carries 2 bits: the other 4 must be zero */
    return strchr("AQgw", key.base[21]) != NULL;
}

/* RFC 3629 UTF-8, rejecting overlongs, surrogates and code points above U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            n = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else
            return 0;
        if (i + n >= len)
            return 0; /* truncated sequence */
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += n + 1;
    }
    return 1;
}

static void wake(ws_t *w)
{
    casgi__server_defer(w->server, &w->task);
}

static void unref(ws_t *w)
{
    if (--w->refs > 0)
        return;
    casgi__server_cancel(w->server, &w->task);
    if (w->ctx)
        wslay_event_context_free(w->ctx);
    if (w->deflate)
        casgi__ws_deflate_free(w->deflate);
    for (msg_t *m = w->head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    casgi__buf_free(&w->scratch);
    free(w->arena);
    free(w);
}

static void on_task(casgi__task_t *task)
{
    run(container_of(task, ws_t, task));
}

/* Records the code and reason the app's websocket.disconnect will carry (the first one wins). */
static void set_close(ws_t *w, int code, const char *reason, size_t len)
{
    if (w->close_known)
        return;
    w->close_known = 1;
    w->close_code = code;
    w->close_reason_len = len < sizeof(w->close_reason) ? len : sizeof(w->close_reason) - 1;
    if (w->close_reason_len)
        memcpy(w->close_reason, reason, w->close_reason_len);
}

/* ---- the carrier ------------------------------------------------------------------------ */

/*
 * Every call to the carrier goes through these helpers. They hold the rules of
 * ws_transport.h: nothing after abort() or on_close (tr is NULL then), and after finish() no
 * more output, deadlines or read switching.
 */
static int live(const ws_t *w)
{
    return w->tr != NULL && !w->finished;
}

static int out(ws_t *w, const void *data, size_t len)
{
    return live(w) ? w->tr->write(w->t, data, len) : CASGI_EDISCONNECTED;
}

static void flush_later(ws_t *w)
{
    if (live(w))
        w->tr->flush_later(w->t);
}

static size_t buffered(const ws_t *w)
{
    return w->tr ? w->tr->buffered(w->t) : 0;
}

static void set_deadline(ws_t *w, uint64_t ms)
{
    if (live(w))
        w->tr->set_deadline(w->t, ms);
}

static void clear_deadline(ws_t *w)
{
    if (live(w))
        w->tr->clear_deadline(w->t);
}

/* Ends the carrier after its pending output (a lingering close, END_STREAM). */
static void finish(ws_t *w)
{
    if (!live(w))
        return;
    w->finished = 1;
    w->tr->finish(w->t);
}

/*
 * Ends the carrier at once, dropping its pending output. The carrier may report on_close from
 * inside abort(), which may free `w`: the caller holds a reference or touches `w` no more.
 */
static void drop(ws_t *w)
{
    const casgi__ws_transport_t *tr = w->tr;
    if (tr == NULL)
        return;
    w->tr = NULL;
    w->state = WS_DONE;
    tr->abort(w->t);
}

/*
 * The header fields of a handshake answer, gathered in wire order for tr->respond(): a few on
 * the stack, more (many cfg.headers, many app headers) in one allocation.
 */
typedef struct fields_s {
    casgi_header_t *v;
    size_t n, cap;
    casgi_header_t local[16];
} fields_t;

/* Room for `extra` fields besides the server's defaults. 0 or CASGI_ENOMEM. */
static int fields_init(fields_t *f, const casgi_server_t *server, size_t extra)
{
    f->n = 0;
    f->cap = extra + 2 + server->cfg.num_headers;
    f->v = f->local;
    if (f->cap > ARRAY_SIZE(f->local) && (f->v = malloc(f->cap * sizeof(*f->v))) == NULL)
        return CASGI_ENOMEM;
    return 0;
}

static void fields_add(fields_t *f, casgi_bytes_t name, casgi_bytes_t value)
{
    CASGI_ASSERT(f->n < f->cap);
    f->v[f->n++] = (casgi_header_t){name, value};
}

/* server, date and cfg.headers: what every response of this server carries. */
static void fields_add_defaults(fields_t *f, casgi_server_t *server)
{
    if (server->cfg.server_header)
        fields_add(f, CASGI_BYTES("server"), CASGI_BYTES("casgi"));
    if (server->cfg.date_header)
        fields_add(f, CASGI_BYTES("date"),
                   (casgi_bytes_t){casgi__date_now(&server->date), CASGI_DATE_LEN});
    for (size_t i = 0; i < server->cfg.num_headers; i++)
        fields_add(f, server->default_headers[i].name, server->default_headers[i].value);
}

/*
 * The app's fields that do not go on the wire: over HTTP/2 the connection-specific ones
 * (RFC 9113 8.2.2); in a denial also the framing, which is ours (close-delimited over HTTP/1.1,
 * END_STREAM over HTTP/2).
 */
static int skip_app_field(const ws_t *w, casgi_bytes_t name, int denial)
{
    if (denial && (CASGI_NAME_IS(name, "content-length") ||
                   CASGI_NAME_IS(name, "transfer-encoding") || CASGI_NAME_IS(name, "connection")))
        return 1;
    return w->tr->http2 &&
           (CASGI_NAME_IS(name, "connection") || CASGI_NAME_IS(name, "keep-alive") ||
            CASGI_NAME_IS(name, "proxy-connection") || CASGI_NAME_IS(name, "transfer-encoding") ||
            CASGI_NAME_IS(name, "upgrade"));
}

static void fields_add_app(fields_t *f, const ws_t *w, const casgi_header_t *headers, size_t n,
                           int denial)
{
    for (size_t i = 0; i < n; i++)
        if (!skip_app_field(w, headers[i].name, denial))
            fields_add(f, headers[i].name, headers[i].value);
}

static void fields_free(fields_t *f)
{
    if (f->v != f->local)
        free(f->v);
}

static int respond(ws_t *w, int status, const fields_t *f)
{
    return live(w) ? w->tr->respond(w->t, status, f->v, f->n) : CASGI_EDISCONNECTED;
}

/* ---- closing ---------------------------------------------------------------------------- */

/* Starts the closing handshake with `code` (wslay sends it in run()). */
static void close_with(ws_t *w, int code, const char *reason)
{
    set_close(w, code, reason, strlen(reason));
    if (w->ctx) {
        wslay_event_queue_close(w->ctx, (uint16_t)code, (const uint8_t *)reason, strlen(reason));
        wslay_event_shutdown_read(w->ctx);
    }
    set_deadline(w, CLOSE_WAIT_MS);
    CASGI_LOG(&w->server->log, CASGI_LOG_DEBUG, "websocket closing with %d %s", code, reason);
}

/*
 * Our own close, behind the messages the app queued before it: wslay sends control frames ahead
 * of queued data, so the close frame is queued only once the data has gone out (pump()).
 */
static void queue_close(ws_t *w)
{
    if (w->ctx == NULL)
        return;
    if (wslay_event_get_queued_msg_count(w->ctx) > 0) {
        w->close_pending = 1;
        return;
    }
    w->close_pending = 0;
    wslay_event_queue_close(w->ctx, (uint16_t)w->close_code, (const uint8_t *)w->close_reason,
                            w->close_reason_len);
}

static void close_gracefully(ws_t *w, int code, const char *reason, size_t len)
{
    set_close(w, code, reason, len);
    queue_close(w);
    set_deadline(w, CLOSE_WAIT_MS);
}

/* Uvicorn's line for a handshake: '127.0.0.1:5000 - "WebSocket /path" [accepted]'. */
static void access_log(ws_t *w, const char *outcome)
{
    casgi_server_t *server = w->server;
    if (!server->cfg.access_log || server->log.level > CASGI_LOG_INFO)
        return;
    const casgi_scope_t *s = &w->call.scope;
    char client[INET6_ADDRSTRLEN + 8] = "-";
    if (s->client.host)
        snprintf(client, sizeof(client), "%s:%d", s->client.host, s->client.port);
    casgi__log_write(&server->log, CASGI_LOG_INFO, 1, "%s - \"WebSocket %.*s\" [%s]", client,
                     (int)s->raw_path.len, s->raw_path.base, outcome);
}

/*
 * A complete HTTP answer to the handshake (with a content-length, so the client need not wait
 * for the close), then the carrier ends. Over HTTP/1.1 it says "connection: close"; a 426 names
 * the version we speak.
 */
static void refuse(ws_t *w, int status)
{
    access_log(w, status == 403 ? "rejected" : "refused");
    const char *body = status == 403   ? "Forbidden\n"
                       : status == 426 ? "Upgrade Required\n"
                       : status == 500 ? "Internal Server Error\n"
                                       : "Bad Request\n";
    char len[24];
    snprintf(len, sizeof(len), "%zu", strlen(body));
    w->state = WS_DONE;
    if (!live(w))
        return;
    fields_t f;
    if (fields_init(&f, w->server, 4) == 0) {
        fields_add_defaults(&f, w->server);
        fields_add(&f, CASGI_BYTES("content-type"), CASGI_BYTES("text/plain; charset=utf-8"));
        if (!w->tr->http2)
            fields_add(&f, CASGI_BYTES("connection"), CASGI_BYTES("close"));
        if (status == 426)
            fields_add(&f, CASGI_BYTES("sec-websocket-version"), CASGI_BYTES("13"));
        fields_add(&f, CASGI_BYTES("content-length"), CASGI_STR(len));
        if (respond(w, status, &f) == 0)
            out(w, body, strlen(body));
        fields_free(&f);
    }
    /* out of memory: what could be written goes, and the carrier ends all the same */
    finish(w);
}

/* ---- wslay callbacks -------------------------------------------------------------------- */

/*
 * Walks the frame headers in the bytes about to go to wslay and returns how many of them may go:
 * all, or those before a control frame that is fragmented or longer than 125 bytes. wslay drops
 * the connection on such a frame without the 1002 close RFC 6455 7.1.7 asks for, so we stop
 * feeding it there and send that close ourselves.
 */
static size_t check_frames(ws_t *w, const unsigned char *p, size_t n)
{
    size_t i = 0, header_start = 0;
    while (i < n) {
        if (w->frame_left > 0) {
            uint64_t k = n - i < w->frame_left ? n - i : w->frame_left;
            i += (size_t)k;
            w->frame_left -= k;
            continue;
        }
        if (w->hdr_len == 0)
            header_start = i;
        w->hdr[w->hdr_len++] = p[i++];
        if (w->hdr_len < 2)
            continue;
        unsigned len7 = w->hdr[1] & 0x7f;
        unsigned need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((w->hdr[1] & 0x80) ? 4 : 0);
        if (w->hdr_len < need)
            continue;
        uint64_t len = len7;
        if (len7 == 126)
            len = (uint64_t)w->hdr[2] << 8 | w->hdr[3];
        else if (len7 == 127)
            for (int k = 0; k < 8; k++)
                len = len << 8 | w->hdr[2 + k];
        int fin = w->hdr[0] & 0x80, opcode = w->hdr[0] & 0x0f;
        w->hdr_len = 0;
        if (opcode >= 0x8 && (!fin || len > 125)) {
            w->bad_frame = 1;
            return header_start;
        }
        w->frame_left = len;
    }
    return n;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *data)
{
    ws_t *w = data;
    casgi__buf_t *in = live(w) && !w->bad_frame ? w->tr->input(w->t) : NULL;
    size_t avail = in ? casgi__buf_size(in) : 0;
    size_t n = avail < len ? avail : len;
    if (n > 0)
        n = check_frames(w, (const unsigned char *)casgi__buf_data(in), n);
    if (n == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    memcpy(buf, casgi__buf_data(in), n);
    casgi__buf_consume(in, n);
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    ws_t *w = user;
    if (!live(w)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    /* Bounded output: what does not fit waits in wslay's queue until the carrier drains. */
    if (buffered(w) >= w->server->cfg.high_water_mark) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (out(w, data, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void enqueue(ws_t *w, int is_text, const void *data, size_t len)
{
    msg_t *m = malloc(sizeof(*m) + len);
    if (m == NULL) {
        close_with(w, 1011, "out of memory");
        return;
    }
    m->next = NULL;
    m->is_text = is_text;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    if (w->tail)
        w->tail->next = m;
    else
        w->head = m;
    w->tail = m;
    w->queued++;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    ws_t *w = user;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME: {
        const uint8_t *data = arg->msg;
        size_t len = arg->msg_length;
        if (wslay_get_rsv1(arg->rsv)) {
            if (!w->deflate_on) {
                close_with(w, 1002, "unexpected RSV1");
                return;
            }
            casgi__buf_clear(&w->scratch);
            int err = casgi__ws_deflate_decompress(w->deflate, data, len,
                                                   w->server->cfg.ws_max_size, &w->scratch);
            if (err) {
                if (err == CASGI_ELENGTH)
                    close_with(w, 1009, "message too big");
                else if (err == CASGI_ENOMEM)
                    close_with(w, 1011, "out of memory");
                else
                    close_with(w, 1007, "bad compressed data");
                return;
            }
            data = (const uint8_t *)casgi__buf_data(&w->scratch);
            len = casgi__buf_size(&w->scratch);
        }
        int is_text = arg->opcode == WSLAY_TEXT_FRAME;
        if (is_text && !valid_utf8(data, len)) {
            close_with(w, 1007, "invalid UTF-8");
            return;
        }
        enqueue(w, is_text, data, len);
        /* one large message must not pin its size for the connection's lifetime */
        casgi__buf_clear(&w->scratch);
        casgi__buf_release(&w->server->pool, &w->scratch);
        break;
    }
    case WSLAY_CONNECTION_CLOSE: {
        /* wslay answers with its own close frame; we keep what the app will be told. */
        int code = arg->status_code ? arg->status_code : 1005;
        const char *reason = arg->msg_length > 2 ? (const char *)arg->msg + 2 : "";
        size_t rlen = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
        if (rlen && !valid_utf8((const unsigned char *)reason, rlen)) {
            close_with(w, 1007, "invalid UTF-8 in close reason");
            return;
        }
        set_close(w, code, reason, rlen);
        break;
    }
    case WSLAY_PONG:
        w->awaiting_pong = 0;
        if (w->server->cfg.ws_ping_interval && !w->close_known)
            set_deadline(w, w->server->cfg.ws_ping_interval);
        break;
    default: break; /* pings are answered by wslay */
    }
}

/*
 * Control frames are checked as they start, before wslay acts on them: a close frame whose
 * payload is one byte long cannot carry a status code and is a protocol error, which wslay would
 * otherwise answer with an empty close.
 */
static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
    ws_t *w = user;
    if (arg->opcode == WSLAY_CONNECTION_CLOSE && arg->payload_length == 1)
        close_with(w, 1002, "invalid close frame");
}

static const struct wslay_event_callbacks wslay_callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_frame_recv_start_callback = on_frame_start,
    .on_msg_recv_callback = on_msg,
};

/* ---- the app's events ------------------------------------------------------------------- */

/*
 * The accept: 101 with Upgrade, Connection and Sec-WebSocket-Accept over HTTP/1.1, a plain 200
 * over HTTP/2 (RFC 8441 5); then the chosen subprotocol and extensions, the server's defaults and
 * the app's fields.
 */
static int accept_upgrade(ws_t *w, const casgi_event_t *ev)
{
    casgi_server_t *server = w->server;
    casgi_bytes_t sub = ev->accept.subprotocol;
    if (sub.len > 0 && (sub.base == NULL || !casgi__headers_valid_value(sub)))
        return CASGI_EHEADER;
    int err = casgi__headers_validate(ev->accept.headers, ev->accept.num_headers);
    if (err)
        return err;
    if (wslay_event_context_server_init(&w->ctx, &wslay_callbacks, w) != 0)
        return CASGI_ENOMEM;
    wslay_event_config_set_max_recv_msg_length(w->ctx, server->cfg.ws_max_size);
    if (w->deflate_on) {
        if (casgi__ws_deflate_new(&w->deflate_params, server->cfg.ws_deflate_mem_level,
                                  &w->deflate) != 0)
            return CASGI_ENOMEM;
        wslay_event_config_set_allowed_rsv_bits(w->ctx, WSLAY_RSV1_BIT);
    }
    fields_t f;
    if (fields_init(&f, server, 5 + ev->accept.num_headers) != 0)
        return CASGI_ENOMEM;
    int http2 = w->tr->http2;
    char accept[29];
    if (!http2) {
        casgi__websocket_accept_key(w->key, accept);
        fields_add(&f, CASGI_BYTES("upgrade"), CASGI_BYTES("websocket"));
        fields_add(&f, CASGI_BYTES("connection"), CASGI_BYTES("Upgrade"));
        fields_add(&f, CASGI_BYTES("sec-websocket-accept"), (casgi_bytes_t){accept, 28});
    }
    if (sub.len)
        fields_add(&f, CASGI_BYTES("sec-websocket-protocol"), sub);
    if (w->deflate_on)
        fields_add(&f, CASGI_BYTES("sec-websocket-extensions"), CASGI_STR(w->deflate_response));
    fields_add_defaults(&f, server);
    fields_add_app(&f, w, ev->accept.headers, ev->accept.num_headers, 0);
    err = respond(w, http2 ? 200 : 101, &f);
    fields_free(&f);
    if (err)
        return err;
    w->state = WS_OPEN;
    access_log(w, "accepted");
    if (server->cfg.ws_ping_interval)
        set_deadline(w, server->cfg.ws_ping_interval);
    else
        clear_deadline(w);
    if (w->shutting_down)
        close_gracefully(w, 1012, "server shutting down", 20);
    wake(w); /* bytes that came with the handshake are frames now */
    return 0;
}

static size_t pending_output(const ws_t *w);

static int send_message(ws_t *w, const casgi_event_t *ev)
{
    casgi_bytes_t data = ev->message.data;
    if (data.len > 0 && data.base == NULL)
        return CASGI_EEVENT;
    /* An app that ignores the send callback cannot make us buffer without bound for a client
     * that does not read: past one high-water mark plus one largest message, it must wait. */
    const casgi_config_t *cfg = &w->server->cfg;
    if (pending_output(w) > cfg->high_water_mark + cfg->ws_max_size)
        return CASGI_EBUSY;
    if (ev->message.is_text && !valid_utf8((const unsigned char *)data.base, data.len))
        return CASGI_EEVENT;
    struct wslay_event_msg msg = {
        .opcode = ev->message.is_text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME,
        .msg = (const uint8_t *)data.base,
        .msg_length = data.len,
    };
    uint8_t rsv = WSLAY_RSV_NONE;
    if (w->deflate_on && data.len >= w->server->cfg.ws_deflate_threshold) {
        casgi__buf_clear(&w->scratch);
        if (casgi__ws_deflate_compress(w->deflate, data.base, data.len, &w->scratch))
            return CASGI_ENOMEM;
        msg.msg = (const uint8_t *)casgi__buf_data(&w->scratch);
        msg.msg_length = casgi__buf_size(&w->scratch);
        rsv = WSLAY_RSV1_BIT;
    }
    /* wslay copies the payload: the app's buffer (and our scratch) are free again */
    int err = wslay_event_queue_msg_ex(w->ctx, &msg, rsv);
    casgi__buf_clear(&w->scratch);
    casgi__buf_release(&w->server->pool, &w->scratch);
    if (err == WSLAY_ERR_NO_MORE_MSG)
        return CASGI_EDISCONNECTED; /* a close is on its way */
    return err ? CASGI_ENOMEM : 0;
}

/*
 * The app's own HTTP response instead of the accept (the websocket.http.response extension). Its
 * body follows in websocket.http.response.body events and is delimited by the carrier's end:
 * the close over HTTP/1.1 ("connection: close"), END_STREAM over HTTP/2.
 */
static int deny_start(ws_t *w, const casgi_event_t *ev)
{
    if (ev->start.status < 200 || ev->start.status > 999)
        return CASGI_ESTATUS;
    int err = casgi__headers_validate(ev->start.headers, ev->start.num_headers);
    if (err)
        return err;
    fields_t f;
    if (fields_init(&f, w->server, 1 + ev->start.num_headers) != 0)
        return CASGI_ENOMEM;
    fields_add_defaults(&f, w->server);
    fields_add_app(&f, w, ev->start.headers, ev->start.num_headers, 1);
    if (!w->tr->http2)
        fields_add(&f, CASGI_BYTES("connection"), CASGI_BYTES("close"));
    err = respond(w, ev->start.status, &f);
    fields_free(&f);
    if (err)
        return err;
    w->state = WS_DENYING;
    return 0;
}

static int call_send(casgi_call_t *call, const casgi_event_t *ev)
{
    ws_t *w = container_of(call, ws_t, call);
    int err = 0;
    if (w->tr == NULL) {
        call->disconnected = 1;
        return CASGI_EDISCONNECTED;
    }
    switch (ev->type) {
    case CASGI_EVENT_WEBSOCKET_ACCEPT:
        if (w->state != WS_HANDSHAKE)
            return CASGI_ESTATE;
        err = accept_upgrade(w, ev);
        break;
    case CASGI_EVENT_WEBSOCKET_SEND:
        if (w->state == WS_HANDSHAKE || w->state == WS_DENYING)
            return CASGI_ESTATE;
        if (w->state != WS_OPEN || w->close_known)
            return CASGI_EDISCONNECTED;
        err = send_message(w, ev);
        break;
    case CASGI_EVENT_WEBSOCKET_CLOSE:
        if (w->state == WS_HANDSHAKE) {
            refuse(w, 403); /* ASGI: close before accept is an HTTP 403 */
            set_close(w, 1000, "", 0);
            break;
        }
        if (w->state != WS_OPEN)
            return CASGI_ESTATE;
        if (w->close_known)
            return CASGI_EDISCONNECTED;
        {
            int code = ev->close.code ? ev->close.code : 1000;
            casgi_bytes_t reason = ev->close.reason;
            if (code < 1000 || code > 4999 || code == 1004 || code == 1005 || code == 1006 ||
                code == 1015 || reason.len > 123 || (reason.len > 0 && reason.base == NULL) ||
                !valid_utf8((const unsigned char *)reason.base, reason.len))
                return CASGI_EEVENT;
            close_gracefully(w, code, reason.base, reason.len);
        }
        break;
    case CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_START:
        if (w->state != WS_HANDSHAKE)
            return CASGI_ESTATE;
        err = deny_start(w, ev);
        break;
    case CASGI_EVENT_WEBSOCKET_HTTP_RESPONSE_BODY:
        if (w->state != WS_DENYING)
            return CASGI_ESTATE;
        if (ev->body.body.len > 0 && ev->body.body.base == NULL)
            return CASGI_EEVENT;
        err = out(w, ev->body.body.base, ev->body.body.len);
        if (!err && !ev->body.more_body) {
            w->state = WS_DONE;
            set_close(w, 1000, "", 0);
            finish(w);
        }
        break;
    default: return CASGI_EEVENT;
    }
    flush_later(w);
    wake(w);
    return err;
}

static void call_wake(casgi_call_t *call)
{
    wake(container_of(call, ws_t, call));
}

static void call_abort(casgi_call_t *call)
{
    drop(container_of(call, ws_t, call));
}

/* Uvicorn's policy for websockets: no handshake answer → 500; an open socket → a close frame,
 * 1011 when the app failed, 1000 when it simply returned. */
static void call_end(casgi_call_t *call, int error)
{
    ws_t *w = container_of(call, ws_t, call);
    casgi_server_t *server = w->server;
    if (error)
        CASGI_LOG(&server->log, CASGI_LOG_ERROR, "Exception in ASGI application: %s (%s)",
                  casgi_strerror(error), casgi_err_name(error));
    if (w->tr) {
        switch (w->state) {
        case WS_HANDSHAKE:
            if (!error)
                CASGI_LOG(&server->log, CASGI_LOG_ERROR,
                          "ASGI callable returned without sending handshake.");
            refuse(w, 500);
            break;
        case WS_DENYING:
            drop(w); /* a partial response must not look complete */
            break;
        case WS_OPEN:
            if (!w->close_known)
                close_gracefully(w, error ? 1011 : 1000, "", 0);
            wake(w);
            break;
        case WS_DONE: break;
        }
    }
    w->app_live = 0;
    unref(w);
    casgi__server_call_ended(server);
}

static const casgi__call_ops_t call_ops = {
    .send = call_send,
    .wake = call_wake,
    .abort = call_abort,
    .end = call_end,
};

/* ---- the engine ------------------------------------------------------------------------- */

static int deliver(ws_t *w)
{
    casgi_call_t *call = &w->call;
    if (!w->connect_delivered) {
        w->connect_delivered = 1;
        casgi__call_deliver(call, &(casgi_event_t){.type = CASGI_EVENT_WEBSOCKET_CONNECT});
        return 1;
    }
    if (w->head) {
        msg_t *m = w->head;
        w->head = m->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued--;
        casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_RECEIVE};
        ev.message.is_text = m->is_text;
        ev.message.data = (casgi_bytes_t){m->data, m->len};
        casgi__call_deliver(call, &ev);
        free(m);
        return 1;
    }
    /* the app hears of the close once the carrier is gone or the handshake finished */
    int gone =
        w->tr == NULL || (w->close_known && (w->ctx == NULL || !wslay_event_want_read(w->ctx)));
    if (gone && !w->disconnect_delivered) {
        w->disconnect_delivered = 1;
        call->disconnected = 1;
        casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_DISCONNECT};
        ev.close.code = w->close_known ? w->close_code : 1006;
        ev.close.reason =
            (casgi_bytes_t){w->close_reason, w->close_known ? w->close_reason_len : 0};
        casgi__call_deliver(call, &ev);
        return 1;
    }
    if (gone) {
        /* a receive after the disconnect: say it again (ASGI's receive never blocks forever) */
        casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_DISCONNECT};
        ev.close.code = w->close_known ? w->close_code : 1006;
        casgi__call_deliver(call, &ev);
        return 1;
    }
    return 0;
}

static size_t pending_output(const ws_t *w)
{
    size_t n = buffered(w);
    if (w->ctx)
        n += wslay_event_get_queued_msg_length(w->ctx);
    return n;
}

/* Feeds input to wslay and its output to the carrier. 1 when anything moved. */
static int pump(ws_t *w)
{
    if (!live(w) || w->ctx == NULL || w->state != WS_OPEN)
        return 0;
    int moved = 0;
    casgi__buf_t *in = w->tr->input(w->t);
    if (wslay_event_want_read(w->ctx) && casgi__buf_size(in) > 0 &&
        w->queued < w->server->cfg.ws_max_queue) {
        size_t before = casgi__buf_size(in);
        int err = wslay_event_recv(w->ctx);
        if (err == WSLAY_ERR_NOMEM || (err != 0 && w->tr == NULL)) {
            drop(w);
            return 1;
        }
        if (err != 0 || w->bad_frame) {
            /* fail the connection with 1002 (RFC 6455 7.1.7) rather than dropping it silently */
            close_with(w, 1002, "protocol error");
            casgi__buf_clear(in);
        }
        moved |= casgi__buf_size(in) != before;
    }
    if (wslay_event_want_write(w->ctx)) {
        size_t before = buffered(w);
        if (wslay_event_send(w->ctx) != 0) {
            drop(w);
            return 1;
        }
        moved |= buffered(w) != before;
        flush_later(w);
        if (w->close_pending && wslay_event_get_queued_msg_count(w->ctx) == 0) {
            queue_close(w);
            moved = 1;
        }
    }
    if (!wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx)) {
        /* both close frames went their way: the carrier ends. A close wslay sent on its own
         * (1002 for a protocol error, 1009 for an oversize message) is what the app hears of. */
        uint16_t sent = wslay_event_get_status_code_sent(w->ctx);
        set_close(w, sent && sent != 1005 ? sent : 1006, "", 0);
        w->state = WS_DONE;
        finish(w);
        moved = 1;
    }
    return moved;
}

/*
 * Input flow control, decided after every run(): the handshake and an open socket read while
 * the carrier's input stays under the high-water mark and the app keeps up with its messages.
 */
static void update_reading(ws_t *w)
{
    if (!live(w))
        return;
    const casgi_config_t *cfg = &w->server->cfg;
    size_t in = casgi__buf_size(w->tr->input(w->t));
    int want = w->state == WS_OPEN && w->queued < cfg->ws_max_queue && in < cfg->high_water_mark;
    if (w->state == WS_HANDSHAKE)
        want = in < cfg->high_water_mark;
    if (want)
        w->tr->read_start(w->t);
    else
        w->tr->read_stop(w->t);
}

static void run(ws_t *w)
{
    w->refs++;
    for (;;) {
        if (w->app_live && w->call.recv_cb && deliver(w))
            continue;
        if (w->app_live && w->call.send_cb &&
            (w->tr == NULL || pending_output(w) < w->server->cfg.high_water_mark)) {
            casgi__call_send_done(&w->call, w->tr ? 0 : CASGI_EDISCONNECTED);
            continue;
        }
        if (pump(w))
            continue;
        break;
    }
    update_reading(w);
    unref(w);
}

/* ---- carrier events --------------------------------------------------------------------- */

void casgi__websocket_on_read(casgi__websocket_t *w)
{
    run(w);
}

void casgi__websocket_on_drain(casgi__websocket_t *w)
{
    run(w);
}

void casgi__websocket_on_read_error(casgi__websocket_t *w, int status)
{
    /* no close frame came: 1006, "abnormal closure" */
    CASGI_LOG(&w->server->log, CASGI_LOG_DEBUG, "websocket connection lost: %s",
              casgi_strerror(status));
}

void casgi__websocket_on_timeout(casgi__websocket_t *w)
{
    if (w->tr == NULL)
        return;
    if (w->state != WS_OPEN || w->close_known) {
        drop(w); /* the client never finished the closing handshake */
        return;
    }
    if (w->awaiting_pong) {
        CASGI_LOG(&w->server->log, CASGI_LOG_INFO, "websocket keepalive ping timeout");
        close_with(w, 1011, "keepalive ping timeout");
        run(w);
        return;
    }
    static const uint8_t payload[] = "casgi";
    struct wslay_event_msg ping = {.opcode = WSLAY_PING, .msg = payload, .msg_length = 5};
    if (wslay_event_queue_msg(w->ctx, &ping) == 0) {
        w->awaiting_pong = 1;
        set_deadline(w, w->server->cfg.ws_ping_timeout);
    }
    run(w);
}

void casgi__websocket_on_shutdown(casgi__websocket_t *w)
{
    if (w->tr == NULL)
        return;
    w->shutting_down = 1;
    if (w->state == WS_OPEN && !w->close_known) {
        close_gracefully(w, 1012, "server shutting down", 20);
        wake(w);
    } else if (w->state == WS_HANDSHAKE && !w->app_live) {
        drop(w);
    }
}

void casgi__websocket_on_close(casgi__websocket_t *w)
{
    w->tr = NULL;
    w->t = NULL;
    w->state = WS_DONE;
    if (w->app_live) {
        w->call.disconnected = 1;
        wake(w);
    }
    unref(w); /* the carrier's reference */
}

/* ---- the handshake ---------------------------------------------------------------------- */

/* Copies the http scope into one block and turns it into the websocket scope (http_version
 * kept: "1.1" or "2", a static string). */
static int copy_scope(ws_t *w, const casgi_scope_t *src)
{
    casgi_scope_t *dst = &w->call.scope;
    size_t strings = src->method.len + src->path.len + src->raw_path.len + src->query_string.len +
                     src->root_path.len + 2 * INET6_ADDRSTRLEN + 4;
    size_t subprotocols = 0;
    for (size_t i = 0; i < src->num_headers; i++) {
        strings += src->headers[i].name.len + src->headers[i].value.len;
        if (CASGI_NAME_IS(src->headers[i].name, "sec-websocket-protocol"))
            for (size_t k = 0; k < src->headers[i].value.len; k++)
                subprotocols += src->headers[i].value.base[k] == ',';
        subprotocols += CASGI_NAME_IS(src->headers[i].name, "sec-websocket-protocol");
    }
    size_t headers_size = src->num_headers * sizeof(casgi_header_t);
    size_t subs_size = subprotocols * sizeof(casgi_bytes_t);
    char *arena = malloc(headers_size + subs_size + strings + 1);
    if (arena == NULL)
        return CASGI_ENOMEM;
    w->arena = arena;
    casgi_header_t *headers = (casgi_header_t *)arena;
    casgi_bytes_t *subs = (casgi_bytes_t *)(arena + headers_size);
    char *p = arena + headers_size + subs_size;
#define COPY(field)                                                                                \
    do {                                                                                           \
        if (src->field.len)                                                                        \
            memcpy(p, src->field.base, src->field.len);                                            \
        dst->field = (casgi_bytes_t){p, src->field.len};                                           \
        p += src->field.len;                                                                       \
    } while (0)
    *dst = *src;
    COPY(method);
    COPY(path);
    COPY(raw_path);
    COPY(query_string);
    COPY(root_path);
#undef COPY
    size_t nsubs = 0;
    for (size_t i = 0; i < src->num_headers; i++) {
        casgi_bytes_t name = src->headers[i].name, value = src->headers[i].value;
        memcpy(p, name.base, name.len);
        headers[i].name = (casgi_bytes_t){p, name.len};
        p += name.len;
        if (value.len)
            memcpy(p, value.base, value.len);
        headers[i].value = (casgi_bytes_t){p, value.len};
        p += value.len;
        if (CASGI_NAME_IS(name, "sec-websocket-key"))
            w->key = headers[i].value;
        if (!CASGI_NAME_IS(name, "sec-websocket-protocol"))
            continue;
        /* "chat, superchat" → "chat", "superchat" */
        const char *v = headers[i].value.base, *end = v + value.len;
        while (v < end) {
            while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
                v++;
            const char *start = v;
            while (v < end && *v != ',')
                v++;
            const char *stop = v;
            while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
                stop--;
            if (stop > start && nsubs < subprotocols)
                subs[nsubs++] = (casgi_bytes_t){start, (size_t)(stop - start)};
        }
    }
    dst->headers = headers;
    dst->subprotocols = nsubs ? subs : NULL;
    dst->num_subprotocols = nsubs;
    if (src->client.host) {
        size_t n = strlen(src->client.host) + 1;
        memcpy(p, src->client.host, n);
        dst->client.host = p;
        p += n;
    }
    if (src->server.host) {
        size_t n = strlen(src->server.host) + 1;
        memcpy(p, src->server.host, n);
        dst->server.host = p;
        p += n;
    }
    dst->type = CASGI_SCOPE_WEBSOCKET;
    dst->spec_version = "2.4";
    dst->scheme = "ws";
    dst->extensions = CASGI_EXT_WEBSOCKET_HTTP_RESPONSE;
    return 0;
}

/* A session with its websocket scope, not started: nothing has reached the carrier yet. */
static int create(casgi_server_t *server, const casgi__ws_transport_t *tr, void *t,
                  const casgi_scope_t *scope, ws_t **out)
{
    ws_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return CASGI_ENOMEM;
    w->tr = tr;
    w->t = t;
    w->server = server;
    w->refs = 1;
    w->task.run = on_task;
    casgi__list_init(&w->task.node);
    casgi__call_init(&w->call, &call_ops, server);
    if (copy_scope(w, scope) != 0) {
        free(w);
        return CASGI_ENOMEM;
    }
    *out = w;
    return 0;
}

/*
 * Checks the client's handshake (426 naming version 13, or over HTTP/1.1 400 for a bad
 * Sec-WebSocket-Key) and hands a good one to the app, which may answer from inside
 * casgi__call_start(): accept, deny, fail, even end the call while the carrier closes. The
 * reference held here keeps `w` alive until this returns.
 */
static void handshake(ws_t *w)
{
    casgi_server_t *server = w->server;
    w->refs++;
    const casgi_header_t *version = FIND(&w->call.scope, "sec-websocket-version");
    if (version == NULL || !CASGI_NAME_IS(version->value, "13")) {
        CASGI_LOG(&server->log, CASGI_LOG_WARNING,
                  "WebSocket handshake refused: unsupported Sec-WebSocket-Version");
        refuse(w, 426);
    } else if (!w->tr->http2 && !valid_key(w->key)) {
        /* RFC 8441 5: over HTTP/2 there is no key and no accept */
        CASGI_LOG(&server->log, CASGI_LOG_WARNING,
                  "WebSocket handshake refused: invalid Sec-WebSocket-Key");
        refuse(w, 400);
    } else {
        const casgi_header_t *ext = FIND(&w->call.scope, "sec-websocket-extensions");
        if (server->cfg.ws_per_message_deflate && ext != NULL)
            w->deflate_on = casgi__ws_deflate_negotiate(
                ext->value, server->cfg.ws_deflate_window_bits, &w->deflate_params,
                w->deflate_response, sizeof(w->deflate_response));
        w->app_live = 1;
        w->refs++;
        casgi__server_call_started(server);
        casgi__call_start(&w->call);
        update_reading(w);
    }
    unref(w);
}

int casgi__websocket_open(casgi_server_t *server, const casgi__ws_transport_t *tr, void *t,
                          const casgi_scope_t *scope, casgi__websocket_t **out)
{
    ws_t *w;
    int err = create(server, tr, t, scope, &w);
    if (err)
        return err;
    *out = w; /* before the first carrier call: an abort() in handshake() may report on_close */
    handshake(w);
    return 0;
}

/* ---- the HTTP/1.1 carrier --------------------------------------------------------------- */

/*
 * A connection taken over after "Upgrade: websocket": the transport table maps onto conn.c, and
 * the connection's protocol table forwards its events to the casgi__websocket_on_* functions.
 */

static int h1_write(void *t, const void *data, size_t len)
{
    return casgi__conn_write(t, data, len);
}

#define H1_WRITE_LIT(conn, lit) casgi__conn_write((conn), (lit), sizeof(lit) - 1)

/* The status line, the fields as given, the blank line: the caller chose every field. */
static int h1_respond(void *t, int status, const casgi_header_t *headers, size_t num_headers)
{
    casgi__conn_t *conn = t;
    char line[64];
    size_t n = casgi__http1_status_line(status, line);
    if (casgi__conn_write(conn, line, n))
        return CASGI_ENOMEM;
    for (size_t i = 0; i < num_headers; i++) {
        casgi_bytes_t name = headers[i].name, value = headers[i].value;
        if (casgi__conn_write(conn, name.base, name.len) || H1_WRITE_LIT(conn, ": ") ||
            casgi__conn_write(conn, value.base, value.len) || H1_WRITE_LIT(conn, "\r\n"))
            return CASGI_ENOMEM;
    }
    return H1_WRITE_LIT(conn, "\r\n") ? CASGI_ENOMEM : 0;
}

static size_t h1_buffered(void *t)
{
    return casgi__conn_buffered(t);
}

static void h1_flush_later(void *t)
{
    casgi__conn_flush_later(t);
}

static casgi__buf_t *h1_input(void *t)
{
    return &((casgi__conn_t *)t)->rbuf;
}

static void h1_read_start(void *t)
{
    casgi__conn_read_start(t);
}

static void h1_read_stop(void *t)
{
    casgi__conn_read_stop(t);
}

static void h1_set_deadline(void *t, uint64_t ms)
{
    casgi__conn_set_deadline(t, ms);
}

static void h1_clear_deadline(void *t)
{
    casgi__conn_clear_deadline(t);
}

/* conn.c reports on_close from inside casgi__conn_close(). */
static void h1_abort(void *t)
{
    casgi__conn_close(t);
}

/* Stops reading now; the lingering close that follows the flush reads (and drops) again. */
static void h1_finish(void *t)
{
    casgi__conn_read_stop(t);
    casgi__conn_close_after_flush(t);
}

static const casgi__ws_transport_t h1_transport = {
    .http2 = 0,
    .respond = h1_respond,
    .write = h1_write,
    .buffered = h1_buffered,
    .flush_later = h1_flush_later,
    .input = h1_input,
    .read_start = h1_read_start,
    .read_stop = h1_read_stop,
    .set_deadline = h1_set_deadline,
    .clear_deadline = h1_clear_deadline,
    .abort = h1_abort,
    .finish = h1_finish,
};

static void h1_on_read(casgi__conn_t *conn)
{
    casgi__websocket_on_read(conn->proto_data);
}

static void h1_on_read_error(casgi__conn_t *conn, int status)
{
    casgi__websocket_on_read_error(conn->proto_data, status);
}

static void h1_on_drain(casgi__conn_t *conn)
{
    casgi__websocket_on_drain(conn->proto_data);
}

static void h1_on_timeout(casgi__conn_t *conn)
{
    casgi__websocket_on_timeout(conn->proto_data);
}

static void h1_on_shutdown(casgi__conn_t *conn)
{
    casgi__websocket_on_shutdown(conn->proto_data);
}

static void h1_on_close(casgi__conn_t *conn)
{
    casgi__websocket_on_close(conn->proto_data);
}

static const casgi__proto_t h1_proto = {
    .name = "websocket",
    .on_read = h1_on_read,
    .on_read_error = h1_on_read_error,
    .on_drain = h1_on_drain,
    .on_timeout = h1_on_timeout,
    .on_shutdown = h1_on_shutdown,
    .on_close = h1_on_close,
};

int casgi__websocket_takeover(casgi__conn_t *conn, const casgi_scope_t *scope)
{
    ws_t *w;
    int err = create(conn->server, &h1_transport, conn, scope, &w);
    if (err)
        return err;
    /* the connection is ours before anything can close it (the app may, from handshake()) */
    casgi__conn_set_proto(conn, &h1_proto, w);
    casgi__conn_clear_deadline(conn); /* http1's keep-alive or head deadline */
    handshake(w);
    return 0;
}
