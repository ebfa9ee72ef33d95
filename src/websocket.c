/*
 * WebSocket: the handshake on a carrier (an HTTP/1.1 connection http1.c handed over, or an HTTP/2
 * stream opened by an extended CONNECT), then RFC 6455 framing (ws_frame.c) and everything above
 * it (message assembly, UTF-8, permessage-deflate, keepalive, backpressure, close codes) behind
 * the ASGI websocket scope. All I/O goes through the carrier's casgi__ws_transport_t; the
 * HTTP/1.1 carrier is at the end of this file. As in http1.c all progress happens in run(): after
 * a read, after a write drained, and from the server's task queue.
 *
 * Frames are read straight from the carrier's input: a message that arrived whole in one frame
 * is unmasked where it lies and handed to a waiting app from there, so it is never copied; a
 * message in several frames, or a frame that arrived in pieces, is unmasked into a buffer taken
 * for that message only. Frames go out as a header and the payload written straight into the
 * carrier. An idle WebSocket holds no buffer at all.
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "call.h"
#include "date.h"
#include "headers.h"
#include "http1.h"
#include "websocket.h"
#include "ws_deflate.h"
#include "ws_frame.h"

/* How long we wait for the client's close frame after sending ours. */
#define CLOSE_WAIT_MS 5000

/* A received message waiting for the app to ask for it. */
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

    casgi_server_t *server;
    casgi__task_t task;
    int refs; /* the carrier (until on_close), the app while it holds the call, run() */
    ws_state_t state;
    casgi_call_t call;
    char *arena;                  /* the scope's strings and arrays, one block */
    casgi__ws_deflate_t *deflate; /* permessage-deflate, when agreed */

    /* received messages waiting for the app */
    msg_t *head, *tail;
    unsigned queued;

    /* the message being received in pieces (several frames, or one that came in parts) */
    casgi__buf_t rx;   /* its payload so far: memory only while such a message is in flight */
    uint64_t rx_left;  /* bytes of the current frame's payload still to come */
    size_t rx_checked; /* rx holds valid UTF-8 up to here (text, not compressed) */
    unsigned char rx_key[4];

    /* closing: what the app's websocket.disconnect will carry */
    char *close_reason; /* NULL when empty */
    uint16_t close_code;
    uint8_t close_reason_len;

    unsigned finished : 1; /* tr->finish() was called: nothing more is written or read */
    unsigned broken : 1;   /* a frame could not be written whole: the carrier must go */
    unsigned app_live : 1;
    unsigned connect_delivered : 1;
    unsigned disconnect_delivered : 1;
    unsigned close_known : 1; /* close_code/close_reason are final */
    unsigned close_sent : 1;  /* our close frame went to the carrier: no more frames */
    unsigned rx_closed : 1;   /* no more frames are read (a close came, or a protocol error) */
    unsigned awaiting_pong : 1;
    unsigned shutting_down : 1;
    unsigned in_message : 1;   /* a message is being read: its next data frame continues it */
    unsigned msg_text : 1;     /* of the message in flight */
    unsigned msg_deflated : 1; /* its first frame had RSV1 */
    unsigned rx_fin : 1;       /* the frame whose payload is being read ends its message */
    unsigned rx_phase : 2;     /* position in that payload, modulo 4 (the key's) */
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

/* The Sec-WebSocket-Key (the last one, if the client sent several); empty when missing. */
static casgi_bytes_t key_of(const casgi_scope_t *scope)
{
    casgi_bytes_t key = {NULL, 0};
    for (size_t i = 0; i < scope->num_headers; i++)
        if (CASGI_NAME_IS(scope->headers[i].name, "sec-websocket-key"))
            key = scope->headers[i].value;
    return key;
}

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

static int valid_utf8(const void *s, size_t len)
{
    return casgi__ws_frame_valid_utf8(s, len);
}

/*
 * Asks for a run() pass from the server's task queue. Inside run() none is needed (task.running):
 * whatever called wake() came from a step of run()'s loop, which looks at every condition again
 * after any step that did something, and a second pass per message (the app's send wakes us from
 * inside its receive callback) cost an echo about a fifth of its instructions.
 */
static void wake(ws_t *w)
{
    casgi__server_defer(w->server, &w->task);
}

static void free_queue(ws_t *w)
{
    for (msg_t *m = w->head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    w->head = w->tail = NULL;
    w->queued = 0;
}

static void unref(ws_t *w)
{
    if (--w->refs > 0)
        return;
    casgi__server_cancel(w->server, &w->task);
    if (w->deflate)
        casgi__ws_deflate_free(w->deflate);
    free_queue(w);
    casgi__buf_free(&w->rx);
    free(w->close_reason);
    free(w->arena);
    free(w);
}

static void on_task(casgi__task_t *task)
{
    run(container_of(task, ws_t, task));
}

/* Records the code and reason the app's websocket.disconnect will carry (the first one wins).
 * Out of memory, the reason is lost, not the code. */
static void set_close(ws_t *w, int code, const char *reason, size_t len)
{
    if (w->close_known)
        return;
    w->close_known = 1;
    w->close_code = (uint16_t)code;
    if (len > 123)
        len = 123;
    if (len > 0 && (w->close_reason = malloc(len)) != NULL) {
        memcpy(w->close_reason, reason, len);
        w->close_reason_len = (uint8_t)len;
    }
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

/* ---- frames out ------------------------------------------------------------------------- */

/*
 * Writes one whole frame, unmasked as a server's are: its header and the payload, straight into
 * the carrier (which copies them: `payload` is borrowed for the call). A frame cut short would
 * leave the client reading garbage, so after a failed write the carrier is dropped in run();
 * the caller only learns the code (CASGI_ENOMEM, or CASGI_EDISCONNECTED once the carrier is
 * ending).
 */
static int write_frame(ws_t *w, unsigned first, const void *payload, size_t len)
{
    if (!live(w) || w->broken)
        return CASGI_EDISCONNECTED;
    unsigned char head[CASGI__WS_MAX_SERVER_HEADER];
    size_t head_len = casgi__ws_frame_header(head, first, len);
    int err;
    if (w->tr->write2) {
        err = w->tr->write2(w->t, head, head_len, payload, len);
    } else {
        err = out(w, head, head_len);
        if (err == 0 && len > 0)
            err = out(w, payload, len);
    }
    if (err) {
        w->broken = 1;
        wake(w);
        return err;
    }
    flush_later(w);
    return 0;
}

/*
 * Our close frame, once: `code` (none when 0, the answer to an empty close) and up to 123 bytes
 * of reason. It follows whatever went out before it, and nothing follows it.
 */
static void send_close(ws_t *w, int code, const char *reason, size_t len)
{
    if (w->close_sent || w->state != WS_OPEN)
        return;
    unsigned char payload[125];
    size_t n = 0;
    if (code) {
        if (len > 123)
            len = 123;
        payload[0] = (unsigned char)(code >> 8);
        payload[1] = (unsigned char)code;
        if (len > 0)
            memcpy(payload + 2, reason, len);
        n = 2 + len;
    }
    w->close_sent = 1;
    write_frame(w, CASGI__WS_FIN | CASGI__WS_OP_CLOSE, payload, n);
}

/* No more frames are read: a close came, or the connection failed. A message in flight is
 * dropped. */
static void stop_reading(ws_t *w)
{
    w->rx_closed = 1;
    w->in_message = 0;
    w->rx_left = 0;
    casgi__buf_clear(&w->rx);
    casgi__buf_release(&w->server->pool, &w->rx);
}

/* Fails the connection with `code` (RFC 6455 7.1.7): our close frame goes out, nothing more is
 * read, and the final flush has CLOSE_WAIT_MS. */
static void close_with(ws_t *w, int code, const char *reason)
{
    set_close(w, code, reason, strlen(reason));
    send_close(w, code, reason, strlen(reason));
    stop_reading(w);
    set_deadline(w, CLOSE_WAIT_MS);
    CASGI_LOG(&w->server->log, CASGI_LOG_DEBUG, "websocket closing with %d %s", code, reason);
}

/* The same for a frame that broke the rules: what the client sent after it is dropped. */
static void fail(ws_t *w, int code, const char *reason)
{
    close_with(w, code, reason);
    if (live(w))
        casgi__buf_clear(w->tr->input(w->t));
}

/* The closing handshake the app (or a shutdown) starts: the client's frames are still read
 * until its close comes. */
static void close_gracefully(ws_t *w, int code, const char *reason, size_t len)
{
    set_close(w, code, reason, len);
    send_close(w, code, reason, len);
    set_deadline(w, CLOSE_WAIT_MS);
}

/*
 * A complete HTTP answer to the handshake (with a content-length, so the client need not wait
 * for the close), then the carrier ends. Over HTTP/1.1 it says "connection: close"; a 426 names
 * the version we speak.
 */
static void refuse(ws_t *w, int status)
{
    casgi__call_log_websocket(&w->call, status == 403 ? "rejected" : "refused");
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

/* ---- frames in -------------------------------------------------------------------------- */

/* What one step of reading did. */
enum {
    RX_WAIT,      /* nothing: more bytes must come first */
    RX_MOVED,     /* input was consumed */
    RX_DELIVERED, /* ... and a message went to the app */
};

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

/* A message to the app, borrowed for the callback; never a NULL pointer, even when empty. */
static void deliver_message(ws_t *w, int is_text, const void *data, size_t len)
{
    casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_RECEIVE};
    ev.message.is_text = is_text;
    ev.message.data = (casgi_bytes_t){data ? data : "", len};
    casgi__call_deliver(&w->call, &ev);
}

/* 1 when the app waits for a message and none waits before this one. */
static int app_waits(const ws_t *w)
{
    return w->app_live && w->call.recv_cb != NULL && w->head == NULL && w->connect_delivered &&
           !w->disconnect_delivered;
}

/*
 * A whole message as the app will see it: its UTF-8 checked if it is text (unless `checked`),
 * then handed to the app at once when it waits for one (borrowed for the callback, so `data` may
 * lie in the carrier's input or in rx), else copied to the queue. RX_DELIVERED or RX_MOVED.
 */
static int hand_over(ws_t *w, const void *data, size_t len, int checked)
{
    if (w->msg_text && !checked && !valid_utf8(data, len)) {
        fail(w, 1007, "invalid UTF-8");
        return RX_MOVED;
    }
    if (app_waits(w)) {
        deliver_message(w, w->msg_text, data, len);
        return RX_DELIVERED;
    }
    if (w->app_live)
        enqueue(w, w->msg_text, data, len);
    /* else nobody will read it: the queue must not hold back the client's close */
    return RX_MOVED;
}

/* A compressed message: hand_over() what it inflates to. */
static int inflate_message(ws_t *w, const void *data, size_t len)
{
    casgi__buf_t inflated = {0};
    int r = RX_MOVED;
    int err =
        casgi__ws_deflate_decompress(w->deflate, data, len, w->server->cfg.ws_max_size, &inflated);
    if (err == CASGI_ELENGTH)
        fail(w, 1009, "message too big");
    else if (err == CASGI_ENOMEM)
        fail(w, 1011, "out of memory");
    else if (err)
        fail(w, 1007, "bad compressed data");
    else /* never consumed: the bytes start at base */
        r = hand_over(w, inflated.base, casgi__buf_size(&inflated), 0);
    casgi__buf_free(&inflated);
    return r;
}

/* A whole message (the payload of its frames, unmasked), inflated if it was compressed, for
 * hand_over(). RX_DELIVERED or RX_MOVED. */
static int on_message(ws_t *w, const void *data, size_t len, int checked)
{
    if (w->msg_deflated)
        return inflate_message(w, data, len);
    return hand_over(w, data, len, checked);
}

/* The client's close frame: what the app will hear, and our answer with the same code. */
static void on_close_frame(ws_t *w, const unsigned char *payload, size_t len)
{
    if (len == 0) {
        set_close(w, 1005, "", 0); /* "no status received" */
        stop_reading(w);
        send_close(w, 0, "", 0);
        set_deadline(w, CLOSE_WAIT_MS);
        return;
    }
    unsigned code = (unsigned)payload[0] << 8 | payload[1];
    const char *reason = (const char *)payload + 2;
    if (!casgi__ws_frame_valid_close_code(code)) {
        fail(w, 1002, "invalid close code");
        return;
    }
    if (!valid_utf8(reason, len - 2)) {
        fail(w, 1007, "invalid UTF-8 in close reason");
        return;
    }
    set_close(w, (int)code, reason, len - 2);
    stop_reading(w);
    send_close(w, (int)code, reason, len - 2);
    set_deadline(w, CLOSE_WAIT_MS); /* bounds the final flush to a client that stopped reading */
}

static void on_control(ws_t *w, unsigned opcode, const unsigned char *payload, size_t len)
{
    const casgi_config_t *cfg = &w->server->cfg;
    switch (opcode) {
    case CASGI__WS_OP_PING:
        if (!w->close_sent)
            write_frame(w, CASGI__WS_FIN | CASGI__WS_OP_PONG, payload, len);
        break;
    case CASGI__WS_OP_PONG:
        w->awaiting_pong = 0;
        if (cfg->ws_ping_interval && !w->close_known)
            set_deadline(w, cfg->ws_ping_interval);
        break;
    default: on_close_frame(w, payload, len); break;
    }
}

/*
 * The rules of a frame header (RFC 6455 5.2-5.5, RFC 7692 6.1): 0, or the close code that fails
 * the connection (1002, or 1009 for a message that would outgrow cfg.ws_max_size: announced
 * lengths are checked before any payload is read), with its reason in *why.
 */
static int check_frame(const ws_t *w, const casgi__ws_frame_t *f, const char **why)
{
    int data = f->opcode == CASGI__WS_OP_TEXT || f->opcode == CASGI__WS_OP_BINARY;
    *why = "protocol error";
    if (!f->masked) {
        *why = "unmasked frame";
        return 1002;
    }
    if ((f->flags & (CASGI__WS_RSV2 | CASGI__WS_RSV3)) ||
        ((f->flags & CASGI__WS_RSV1) && !(data && w->deflate != NULL))) {
        *why = "unexpected reserved bit";
        return 1002;
    }
    switch (f->opcode) {
    case CASGI__WS_OP_CONTINUATION:
        if (!w->in_message)
            return 1002;
        break;
    case CASGI__WS_OP_TEXT:
    case CASGI__WS_OP_BINARY:
        if (w->in_message)
            return 1002;
        break;
    case CASGI__WS_OP_CLOSE:
    case CASGI__WS_OP_PING:
    case CASGI__WS_OP_PONG:
        if (!(f->flags & CASGI__WS_FIN) || f->len > 125) {
            *why = "invalid control frame";
            return 1002;
        }
        if (f->opcode == CASGI__WS_OP_CLOSE && f->len == 1) {
            *why = "invalid close frame"; /* too short for a code */
            return 1002;
        }
        return 0;
    default: *why = "unknown opcode"; return 1002;
    }
    if (f->len > w->server->cfg.ws_max_size - casgi__buf_size(&w->rx)) {
        *why = "message too big";
        return 1009;
    }
    return 0;
}

/* The end of a frame read in pieces into rx: at the end of its message, the message. */
static int frame_end(ws_t *w)
{
    if (!w->rx_fin)
        return RX_MOVED;
    w->in_message = 0;
    int checked = w->msg_text && !w->msg_deflated;
    if (checked && w->rx_checked != casgi__buf_size(&w->rx)) {
        fail(w, 1007, "invalid UTF-8"); /* a character cut short by the end of the message */
        return RX_MOVED;
    }
    /* the message leaves rx before the app sees it, and rx is free for the next one */
    casgi__buf_t msg = w->rx;
    w->rx = (casgi__buf_t){0};
    int r = on_message(w, msg.base, casgi__buf_size(&msg), checked);
    casgi__buf_clear(&msg);
    casgi__buf_release(&w->server->pool, &msg);
    return r;
}

/* More of the current frame's payload, unmasked into rx; text is checked as it comes, so bad
 * UTF-8 fails the connection without waiting for the rest of the message. */
static int read_payload(ws_t *w, casgi__buf_t *in)
{
    size_t n = casgi__buf_size(in);
    if (n > w->rx_left)
        n = (size_t)w->rx_left;
    casgi__ws_frame_unmask(w->rx.base + w->rx.len, casgi__buf_data(in), n, w->rx_key, w->rx_phase);
    casgi__buf_consume(in, n);
    w->rx.len += n;
    w->rx_left -= n;
    w->rx_phase = (w->rx_phase + n) & 3;
    if (w->msg_text && !w->msg_deflated) {
        size_t complete;
        if (casgi__ws_frame_utf8(w->rx.base + w->rx_checked, w->rx.len - w->rx_checked,
                                 &complete) != 0) {
            fail(w, 1007, "invalid UTF-8");
            return RX_MOVED;
        }
        w->rx_checked += complete;
    }
    return w->rx_left == 0 ? frame_end(w) : RX_MOVED;
}

/*
 * One frame header from the carrier's input, and the payload too when it is all there. A control
 * frame (at most 125 bytes) waits until it is whole and is handled at once; so is the common data
 * frame, a whole message that arrived whole, which is unmasked in place. Any other data frame
 * starts a payload read into rx (read_payload).
 *
 * Consuming input only moves the buffer's offsets: the bytes stay where they are until the
 * carrier reads again, which cannot happen before run() returns, so a payload consumed here may
 * still be handed to the app.
 */
static int read_frame(ws_t *w, casgi__buf_t *in)
{
    unsigned char *p = (unsigned char *)casgi__buf_data(in);
    size_t avail = casgi__buf_size(in);
    casgi__ws_frame_t f;
    int header = casgi__ws_frame_parse(p, avail, &f);
    if (header == 0)
        return RX_WAIT;
    const char *why = "protocol error";
    int code = header < 0 ? 1002 : check_frame(w, &f, &why);
    if (code) {
        fail(w, code, why);
        return RX_MOVED;
    }
    unsigned char *payload = p + header;
    size_t have = avail - (size_t)header;
    if (f.opcode & 0x8) {
        if (have < f.len)
            return RX_WAIT;
        casgi__ws_frame_unmask(payload, payload, (size_t)f.len, f.key, 0);
        casgi__buf_consume(in, (size_t)header + (size_t)f.len);
        on_control(w, f.opcode, payload, (size_t)f.len);
        return RX_MOVED;
    }
    if (f.opcode != CASGI__WS_OP_CONTINUATION) {
        w->msg_text = f.opcode == CASGI__WS_OP_TEXT;
        w->msg_deflated = (f.flags & CASGI__WS_RSV1) != 0;
        w->rx_checked = 0;
        if ((f.flags & CASGI__WS_FIN) && have >= f.len) {
            casgi__ws_frame_unmask(payload, payload, (size_t)f.len, f.key, 0);
            casgi__buf_consume(in, (size_t)header + (size_t)f.len);
            return on_message(w, payload, (size_t)f.len, 0);
        }
        w->in_message = 1;
    }
    if (f.len > 0 && casgi__buf_reserve_pooled(&w->server->pool, &w->rx, (size_t)f.len) != 0) {
        fail(w, 1011, "out of memory");
        return RX_MOVED;
    }
    casgi__buf_consume(in, (size_t)header);
    memcpy(w->rx_key, f.key, 4);
    w->rx_left = f.len;
    w->rx_phase = 0;
    w->rx_fin = (f.flags & CASGI__WS_FIN) != 0;
    return f.len == 0 ? frame_end(w) : RX_MOVED;
}

/*
 * Reads frames from the carrier's input until it runs dry, the queue for the app is full, the
 * reading stops (a close, a failure), or a message went to the app: then run() lets the app
 * answer before the next one, which it may then take straight from the input too. 1 when input
 * was consumed.
 */
static int read_frames(ws_t *w)
{
    unsigned max_queue = w->server->cfg.ws_max_queue;
    int moved = 0;
    size_t hwm = w->server->cfg.high_water_mark;
    /* Output past the high-water mark stops reading too: pings and pongs, not only messages, cost
     * output, and a client that sends and never reads must not make it grow without bound. */
    while (live(w) && w->state == WS_OPEN && !w->rx_closed && w->queued < max_queue &&
           w->tr->buffered(w->t) < hwm) {
        casgi__buf_t *in = w->tr->input(w->t);
        if (casgi__buf_size(in) == 0)
            break;
        int r = w->rx_left > 0 ? read_payload(w, in) : read_frame(w, in);
        if (r == RX_WAIT)
            break;
        moved = 1;
        if (r == RX_DELIVERED)
            break;
    }
    return moved;
}

/* ---- the app's events ------------------------------------------------------------------- */

/*
 * The accept: 101 with Upgrade, Connection and Sec-WebSocket-Accept over HTTP/1.1, a plain 200
 * over HTTP/2 (RFC 8441 5); then the chosen subprotocol and extensions, the server's defaults and
 * the app's fields. permessage-deflate is agreed here, from the client's first offer we can take.
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
    const casgi_header_t *ext = FIND(&w->call.scope, "sec-websocket-extensions");
    casgi__ws_deflate_params_t params;
    char deflate_response[160] = "";
    if (server->cfg.ws_per_message_deflate && ext != NULL &&
        casgi__ws_deflate_negotiate(ext->value, server->cfg.ws_deflate_window_bits, &params,
                                    deflate_response, sizeof(deflate_response)) &&
        casgi__ws_deflate_new(&params, server->cfg.ws_deflate_mem_level, &w->deflate) != 0)
        return CASGI_ENOMEM;
    fields_t f;
    if (fields_init(&f, server, 5 + ev->accept.num_headers) != 0) {
        err = CASGI_ENOMEM;
        goto fail_deflate;
    }
    int http2 = w->tr->http2;
    char accept[29];
    if (!http2) {
        casgi__websocket_accept_key(key_of(&w->call.scope), accept);
        fields_add(&f, CASGI_BYTES("upgrade"), CASGI_BYTES("websocket"));
        fields_add(&f, CASGI_BYTES("connection"), CASGI_BYTES("Upgrade"));
        fields_add(&f, CASGI_BYTES("sec-websocket-accept"), (casgi_bytes_t){accept, 28});
    }
    if (sub.len)
        fields_add(&f, CASGI_BYTES("sec-websocket-protocol"), sub);
    if (w->deflate)
        fields_add(&f, CASGI_BYTES("sec-websocket-extensions"), CASGI_STR(deflate_response));
    fields_add_defaults(&f, server);
    fields_add_app(&f, w, ev->accept.headers, ev->accept.num_headers, 0);
    err = respond(w, http2 ? 200 : 101, &f);
    fields_free(&f);
    if (err)
        goto fail_deflate;
    w->state = WS_OPEN;
    casgi__call_log_websocket(&w->call, "accepted");
    if (server->cfg.ws_ping_interval)
        set_deadline(w, server->cfg.ws_ping_interval);
    else
        clear_deadline(w);
    if (w->shutting_down)
        close_gracefully(w, 1012, "server shutting down", 20);
    wake(w); /* bytes that came with the handshake are frames now */
    return 0;

fail_deflate:
    casgi__ws_deflate_free(w->deflate);
    w->deflate = NULL;
    return err;
}

static size_t pending_output(const ws_t *w);

/* One message, in one frame (compressed when agreed and long enough), written at once. */
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
    if (ev->message.is_text && !valid_utf8(data.base, data.len))
        return CASGI_EEVENT;
    unsigned first =
        CASGI__WS_FIN | (ev->message.is_text ? CASGI__WS_OP_TEXT : CASGI__WS_OP_BINARY);
    if (w->deflate == NULL || data.len < cfg->ws_deflate_threshold)
        return write_frame(w, first, data.base, data.len);
    casgi__buf_t z = {0};
    int err = casgi__ws_deflate_compress(w->deflate, data.base, data.len, &z);
    if (err == 0)
        err = write_frame(w, first | CASGI__WS_RSV1, casgi__buf_data(&z), casgi__buf_size(&z));
    casgi__buf_free(&z);
    return err;
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
        deliver_message(w, m->is_text, m->data, m->len);
        free(m);
        return 1;
    }
    /* the app hears of the close once the carrier is gone or the handshake finished */
    int gone = w->tr == NULL || (w->close_known && (w->state != WS_OPEN || w->rx_closed));
    if (gone && !w->disconnect_delivered) {
        w->disconnect_delivered = 1;
        call->disconnected = 1;
        casgi_event_t ev = {.type = CASGI_EVENT_WEBSOCKET_DISCONNECT};
        ev.close.code = w->close_known ? w->close_code : 1006;
        ev.close.reason =
            (casgi_bytes_t){w->close_reason ? w->close_reason : "", w->close_reason_len};
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
    return buffered(w);
}

/* Reads frames, and ends the carrier once both close frames went their way. 1 when anything
 * moved. */
static int pump(ws_t *w)
{
    if (!live(w) || w->state != WS_OPEN)
        return 0;
    if (w->broken) {
        drop(w);
        return 1;
    }
    int moved = read_frames(w);
    if (live(w) && w->state == WS_OPEN && w->close_sent && w->rx_closed) {
        set_close(w, 1006, "", 0); /* known by now: kept from the close frames */
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
    int want = w->state == WS_OPEN && w->queued < cfg->ws_max_queue && in < cfg->high_water_mark &&
               w->tr->buffered(w->t) < cfg->high_water_mark;
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
    w->task.running++;
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
    w->task.running--;
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
    if (!w->close_sent && write_frame(w, CASGI__WS_FIN | CASGI__WS_OP_PING, "casgi", 5) == 0) {
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
    } else if (!w->tr->http2 && !valid_key(key_of(&w->call.scope))) {
        /* RFC 8441 5: over HTTP/2 there is no key and no accept */
        CASGI_LOG(&server->log, CASGI_LOG_WARNING,
                  "WebSocket handshake refused: invalid Sec-WebSocket-Key");
        refuse(w, 400);
    } else {
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

static int h1_write2(void *t, const void *a, size_t alen, const void *b, size_t blen)
{
    casgi__conn_t *conn = t;
    if (casgi__conn_reserve_output(conn, alen + blen))
        return CASGI_ENOMEM;
    char *p = conn->wbuf.base + conn->wbuf.len;
    memcpy(p, a, alen);
    if (blen > 0) /* b may be NULL then */
        memcpy(p + alen, b, blen);
    conn->wbuf.len += alen + blen;
    return 0;
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
    .write2 = h1_write2,
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
