/*
 * HTTP/2 (RFC 9113) with nghttp2: one nghttp2 session per connection, one ASGI call per request
 * stream. nghttp2 owns the framing, HPACK, stream states and the frame-level rules; this file owns
 * what nghttp2 leaves to the application: turning streams into calls and back, the HTTP rules for
 * requests (RFC 9113 8, with nghttp2's own checks off: they cost more than the rest of a
 * request), flow control that follows the app (a stream's window is given back only as the app
 * receives), the limits an attacker leans on, and the graceful GOAWAY sequence.
 *
 * As in http1.c, the app is never called from inside nghttp2: callbacks record what happened and
 * queue the stream's task; the task talks to the app; the connection's task lets nghttp2 write
 * (nghttp2_session_send into the connection's output, one write per loop turn).
 */
#include <stdio.h>
#include <stdlib.h>

#include <nghttp2/nghttp2.h>

#include "call.h"
#include "headers.h"
#include "http1.h"
#include "http2.h"
#include "scope.h"
#include "websocket.h"

/*
 * nghttp2 1.60 replaced the ssize_t API with nghttp2_ssize and "*2" functions and deprecated the
 * old names; Debian 12 ships 1.52. The difference lives here and nowhere else.
 */
#if NGHTTP2_VERSION_NUM >= 0x013c00
typedef nghttp2_ssize h2_ssize_t;
typedef nghttp2_data_provider2 h2_data_provider_t;
#define h2_submit_response nghttp2_submit_response2
#define h2_session_mem_recv nghttp2_session_mem_recv2
#define h2_callbacks_set_send nghttp2_session_callbacks_set_send_callback2
#else
typedef ssize_t h2_ssize_t;
typedef nghttp2_data_provider h2_data_provider_t;
#define h2_submit_response nghttp2_submit_response
#define h2_session_mem_recv nghttp2_session_mem_recv
#define h2_callbacks_set_send nghttp2_session_callbacks_set_send_callback
#endif

/* How long the window for counting client resets is (the rapid-reset defence). */
#define RESET_WINDOW_MS 10000

typedef struct h2_s h2_t;

typedef struct field_s {
    size_t name_off, name_len;
    size_t value_off, value_len;
} field_t;
_Static_assert(sizeof(field_t) == sizeof(casgi_header_t), "field_t doubles as casgi_header_t");

typedef struct span_s {
    size_t off, len;
    int set;
} span_t;

typedef struct stream_s {
    casgi_call_t call;
    h2_t *h2;
    int32_t id;
    int refs; /* nghttp2's (until the stream closes), the app's (while it holds the call) */
    casgi__task_t task;
    casgi__list_t node; /* h2->streams */

    /* request head: strings in `head`, field_t records in `fields` (casgi_header_t at dispatch) */
    casgi__buf_t head;
    casgi__buf_t fields;
    size_t num_fields;
    size_t head_size;
    span_t method, path, scheme, authority, protocol;
    int error_status; /* the request is refused with this status instead of reaching the app */
    uint64_t request_start;
    uint64_t declared_length;  /* the request's content-length, when has_declared_length */
    unsigned fields_begun : 1; /* a regular field came: no pseudo-header field may follow */
    unsigned has_host : 1;
    unsigned has_declared_length : 1;
    unsigned malformed : 1; /* RFC 9113 8.1.1: reset with PROTOCOL_ERROR, never dispatched */
    unsigned rejected : 1;  /* the reset for it is submitted: what else comes is dropped */

    /* request body: received, not yet given to the app */
    casgi__buf_t body;
    size_t unacked;         /* bytes given to the app, not yet returned to the client's window */
    uint64_t body_received; /* DATA payload octets, for content-length and max_body_size */

    /* response: bytes the data source has not taken yet, and trailers for the end */
    casgi__buf_t out;
    casgi__buf_t trailers;     /* packed: uint32 name_len, uint32 value_len, name, value */
    char status_text[3];       /* the final response's :status and date, which nghttp2 */
    char date[CASGI_DATE_LEN]; /* reads here when it encodes the HEADERS (submit_head) */
    uint64_t content_length;
    uint64_t body_sent;

    unsigned open : 1;         /* nghttp2 has not closed the stream */
    unsigned headers_done : 1; /* the request head is complete */
    unsigned dispatch : 1;     /* the head is complete, the app not yet called */
    unsigned call_live : 1;    /* the app holds the call */
    unsigned end_stream : 1;   /* the client finished the request body */
    unsigned final_delivered : 1;
    unsigned submitted : 1; /* response HEADERS submitted */
    unsigned no_body : 1;   /* HEAD, 204, 304: DATA is dropped */
    unsigned has_length : 1;
    unsigned out_eof : 1;      /* the body is complete (trailers may still be due) */
    unsigned trailers_due : 1; /* the app announced trailers */
    unsigned trailers_ready : 1;
    unsigned deferred : 1; /* the data source said NGHTTP2_ERR_DEFERRED */
    unsigned pushed : 1;   /* a pushed request: the server made it up */
    unsigned logged : 1;

    /* RFC 8441: a WebSocket rides this stream; its bytes are the DATA both ways */
    casgi__websocket_t *ws;
    struct ws_timer_s *ws_timer;
    size_t ws_unacked;        /* input received, not yet returned to the client's window */
    int32_t send_window;      /* our window on this stream before a SETTINGS (on_begin_frame) */
    unsigned ws_finished : 1; /* websocket.c called finish(): END_STREAM after the output */
    unsigned ws_eof : 1;      /* the client's END_STREAM was reported */
    unsigned ws_input : 1;    /* input grew since the stream task last ran */
    unsigned ws_drained : 1;  /* output shrank since the stream task last ran */

    /* Where a typical request head, its field records and a small response body fit, so that
     * the usual request allocates nothing for them. Last: stream_new clears what comes before. */
    char head_space[512];
    field_t field_space[8];
    char out_space[256];
} stream_t;
_Static_assert(offsetof(stream_t, call) == 0, "stream_new clears what follows the call");

struct h2_s {
    casgi__conn_t *conn; /* NULL once the connection closed */
    casgi_server_t *server;
    nghttp2_session *session;
    casgi__task_t task; /* lets nghttp2 write */
    int refs;           /* the connection's, one per stream object, one inside run() */
    casgi__list_t streams;
    casgi__buf_t nv; /* scratch for header arrays handed to nghttp2 (it copies them) */
    uint64_t reset_window_start;
    unsigned resets;
    unsigned shutting_down : 1;
    unsigned final_goaway : 1;
    unsigned calm_logged : 1;
    unsigned settings_sent : 1;
    unsigned num_open;           /* request streams nghttp2 holds open */
    int32_t peer_initial_window; /* the client's SETTINGS_INITIAL_WINDOW_SIZE in force */
    stream_t *heading; /* the stream whose header block is being received (blocks never mix) */
    uint64_t deadline; /* ms of the connection deadline to set once nghttp2 returns; 0: none */
};

static const casgi__call_ops_t call_ops;
static const casgi__proto_t proto;
static void run(h2_t *h2);
static void stream_unref(stream_t *s);

/* ---- lifetime ---------------------------------------------------------------------------- */

static void h2_unref(h2_t *h2)
{
    if (--h2->refs > 0)
        return;
    casgi__server_cancel(h2->server, &h2->task);
    if (h2->session)
        nghttp2_session_del(h2->session);
    casgi__buf_free(&h2->nv);
    free(h2);
}

static void wake_conn(h2_t *h2)
{
    if (h2->conn != NULL)
        casgi__server_defer(h2->server, &h2->task);
}

static void wake_stream(stream_t *s)
{
    casgi__server_defer(s->call.server, &s->task);
}

static void stream_release_buffers(stream_t *s)
{
    casgi__pool_t *pool = &s->call.server->pool;
    casgi__buf_t *bufs[] = {&s->head, &s->fields, &s->body, &s->out, &s->trailers};
    for (size_t i = 0; i < ARRAY_SIZE(bufs); i++) {
        if (bufs[i]->base == NULL || bufs[i]->borrowed)
            continue; /* nothing of its own: stream_new starts it afresh */
        casgi__buf_clear(bufs[i]);
        casgi__buf_release(pool, bufs[i]);
    }
}

static void ws_timer_release(stream_t *s);

static void stream_unref(stream_t *s)
{
    if (--s->refs > 0)
        return;
    casgi_server_t *server = s->call.server;
    casgi__server_cancel(server, &s->task);
    casgi__list_remove(&s->node);
    if (s->h2->heading == s)
        s->h2->heading = NULL;
    stream_release_buffers(s);
    ws_timer_release(s);
    h2_t *h2 = s->h2;
    casgi__pool_give(&server->h2_streams, s);
    h2_unref(h2);
}

static void on_stream_task(casgi__task_t *task);

static stream_t *stream_new(h2_t *h2, int32_t id)
{
    stream_t *s = casgi__pool_take(&h2->server->h2_streams, sizeof(*s));
    if (s == NULL)
        return NULL;
    /* casgi__call_init clears the call */
    memset((char *)s + sizeof(s->call), 0, offsetof(stream_t, head_space) - sizeof(s->call));
    casgi__buf_start_in(&s->head, s->head_space, sizeof(s->head_space));
    casgi__buf_start_in(&s->fields, s->field_space, sizeof(s->field_space));
    casgi__buf_start_in(&s->out, s->out_space, sizeof(s->out_space));
    casgi__buf_t *bufs[] = {&s->head, &s->fields, &s->body, &s->out, &s->trailers};
    for (size_t i = 0; i < ARRAY_SIZE(bufs); i++)
        casgi__buf_use_slab(bufs[i], &h2->server->slab);
    s->h2 = h2;
    s->id = id;
    s->refs = 1; /* nghttp2's, dropped in on_stream_close */
    s->open = 1;
    s->task.run = on_stream_task;
    casgi__list_init(&s->task.node);
    casgi__list_insert_tail(&h2->streams, &s->node);
    casgi__call_init(&s->call, &call_ops, h2->server);
    s->request_start = h2->server->cfg.access_log ? uv_hrtime() : 0;
    h2->refs++;
    return s;
}

static stream_t *stream_of(h2_t *h2, int32_t id)
{
    return h2->session ? nghttp2_session_get_stream_user_data(h2->session, id) : NULL;
}

/* ---- request head ------------------------------------------------------------------------ */

static int head_append(stream_t *s, const uint8_t *data, size_t len, size_t *off)
{
    *off = s->head.len;
    if (casgi__buf_reserve(&s->head, len + 1))
        return -1;
    if (len)
        memcpy(s->head.base + s->head.len, data, len);
    s->head.len += len;
    return 0;
}

/*
 * Records one request field (name and value copied into the head). Returns the name's copy,
 * valid until the next append, or NULL when out of memory.
 */
static char *add_field(stream_t *s, const void *name, size_t name_len, const void *value,
                       size_t value_len)
{
    field_t f = {0, name_len, 0, value_len};
    if (casgi__buf_reserve(&s->fields, sizeof(f)) || head_append(s, name, name_len, &f.name_off) ||
        head_append(s, value, value_len, &f.value_off))
        return NULL;
    memcpy(s->fields.base + s->fields.len, &f, sizeof(f));
    s->fields.len += sizeof(f);
    s->num_fields++;
    return s->head.base + f.name_off;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    h2_t *h2 = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (h2->num_open >= h2->server->cfg.h2_max_concurrent_streams) {
        /* RFC 9113 5.1.2: a stream error, so the client may retry it (see advertise_limit) */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    stream_t *s = stream_new(h2, frame->hd.stream_id);
    if (s == NULL) {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    h2->heading = s;
    h2->num_open++;
    h2->deadline = h2->server->cfg.timeout_request_header;
    return 0;
}

/*
 * RFC 9113 8.2.2: connection-specific fields must not appear in HTTP/2, in requests (on_field) or
 * responses. Found by length first: it runs over every field of every request.
 */
static int connection_specific(casgi_bytes_t name)
{
    switch (name.len) {
    case 7: return CASGI_NAME_IS(name, "upgrade");
    case 10: return CASGI_NAME_IS(name, "connection") || CASGI_NAME_IS(name, "keep-alive");
    case 16: return CASGI_NAME_IS(name, "proxy-connection");
    case 17: return CASGI_NAME_IS(name, "transfer-encoding");
    default: return 0;
    }
}

static void take_pseudo(span_t *span, size_t off, size_t len)
{
    span->off = off;
    span->len = len;
    span->set = 1;
}

/*
 * nghttp2's HTTP messaging checks are off (session_new): the rules of RFC 9113 8 for requests are
 * kept here, in the pass over each field that records it anyway. Character classes of a byte:
 */
enum {
    C_NAME = 1,       /* a regular field name: a token in lower case (8.2.1) */
    C_VALUE = 2,      /* a field value: HTAB, SP to '~', obs-text (8.2.1, RFC 9110 5.5) */
    C_PATH = 4,       /* :path: VCHAR and obs-text, no whitespace */
    C_TOKEN = 8,      /* :method: a token (RFC 9110 9.1) */
    C_AUTHORITY = 16, /* :authority and host: RFC 3986 authority characters */
};
static const unsigned char field_chars[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    2,  31, 6,  15, 31, 31, 31, 31, 22, 22, 31, 31, 22, 31, 31, 6,  /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 22, 22, 6,  22, 6,  6,  /* 0x30 */
    22, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, /* 0x40 */
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 22, 6,  22, 15, 31, /* 0x50 */
    15, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, /* 0x60 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 6,  15, 6,  31, 0,  /* 0x70 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0x80 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0x90 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xa0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xb0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xc0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xd0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xe0 */
    6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  6,  /* 0xf0 */
};

/* 1 when every byte is of class `c`: no branch per byte, four bytes a turn. */
static int all_of(const uint8_t *p, size_t len, unsigned char c)
{
    unsigned char ok = c;
    size_t i = 0;
    for (; i + 4 <= len; i += 4)
        ok &= field_chars[p[i]] & field_chars[p[i + 1]] & field_chars[p[i + 2]] &
              field_chars[p[i + 3]];
    for (; i < len; i++)
        ok &= field_chars[p[i]];
    return ok != 0;
}

/*
 * Whether n bytes (4 to 16, a constant where it is inlined) equal a literal's: two overlapping
 * word compares instead of a call to memcmp, for the names every request carries.
 */
static inline int same_bytes(const uint8_t *a, const char *lit, size_t n)
{
    if (n >= 8) {
        uint64_t a0, a1, b0, b1;
        memcpy(&a0, a, 8);
        memcpy(&b0, lit, 8);
        memcpy(&a1, a + n - 8, 8);
        memcpy(&b1, lit + n - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    uint32_t a0, a1, b0, b1;
    memcpy(&a0, a, 4);
    memcpy(&b0, lit, 4);
    memcpy(&a1, a + n - 4, 4);
    memcpy(&b1, lit + n - 4, 4);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}
#define SAME(a, lit) same_bytes((a), (lit), sizeof(lit) - 1)

/* RFC 9113 8.2.1: a value neither starts nor ends with whitespace. */
static int valid_value(const uint8_t *v, size_t len)
{
    return len == 0 || (v[0] != ' ' && v[0] != '\t' && v[len - 1] != ' ' && v[len - 1] != '\t' &&
                        all_of(v, len, C_VALUE));
}

/* RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static int valid_scheme(const uint8_t *v, size_t len)
{
    if (len == 0 || !((v[0] | 0x20) >= 'a' && (v[0] | 0x20) <= 'z'))
        return 0;
    for (size_t i = 1; i < len; i++) {
        uint8_t c = v[i];
        if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* A pseudo-header field of a request: its span, or NULL when unknown (RFC 9113 8.3). */
static span_t *pseudo_span(stream_t *s, const uint8_t *name, size_t len)
{
    switch (len) {
    case 5: return SAME(name, ":path") ? &s->path : NULL;
    case 7: return SAME(name, ":method") ? &s->method : SAME(name, ":scheme") ? &s->scheme : NULL;
    case 9:
        /* RFC 8441 3: only where our SETTINGS_ENABLE_CONNECT_PROTOCOL allows it */
        return SAME(name, ":protocol") && s->h2->server->cfg.ws ? &s->protocol : NULL;
    case 10: return SAME(name, ":authority") ? &s->authority : NULL;
    default: return NULL;
    }
}

/* RFC 9113 8.3.1: whether a pseudo-header field's value is well formed. */
static int valid_pseudo(const stream_t *s, const span_t *span, const uint8_t *v, size_t len)
{
    if (span == &s->method)
        return all_of(v, len, C_TOKEN);
    if (span == &s->path)
        return all_of(v, len, C_PATH);
    if (span == &s->scheme)
        return valid_scheme(v, len);
    if (span == &s->authority)
        return all_of(v, len, C_AUTHORITY);
    return valid_value(v, len);
}

/* A request's pseudo-header field (RFC 9113 8.3): recorded, or the request marked malformed. */
static int on_pseudo(stream_t *s, const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen)
{
    span_t *span = s->fields_begun ? NULL : pseudo_span(s, name, namelen);
    if (span == NULL || span->set || valuelen == 0 || !valid_pseudo(s, span, value, valuelen)) {
        s->malformed = 1;
        return 0;
    }
    size_t off;
    if (head_append(s, value, valuelen, &off))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    take_pseudo(span, off, valuelen);
    if (span == &s->path && valuelen > s->h2->server->cfg.max_url)
        s->error_status = 414;
    return 0;
}

/* A request's regular field (RFC 9113 8.2): recorded, or the request marked malformed. */
static int on_field(stream_t *s, const uint8_t *name, size_t namelen, const uint8_t *value,
                    size_t valuelen)
{
    s->fields_begun = 1;
    if (!all_of(name, namelen, C_NAME) || namelen == 0 || !valid_value(value, valuelen)) {
        s->malformed = 1;
        return 0;
    }
    /* The names the server reads, found by length first; the name is known to be in lower case. */
    enum { PLAIN, HOST, LENGTH, TE } kind = PLAIN;
    switch (namelen) {
    case 2: kind = name[0] == 't' && name[1] == 'e' ? TE : PLAIN; break;
    case 4: kind = SAME(name, "host") ? HOST : PLAIN; break;
    case 14: kind = SAME(name, "content-length") ? LENGTH : PLAIN; break;
    }
    casgi_bytes_t v = {(const char *)value, valuelen};
    if ((kind == PLAIN && connection_specific((casgi_bytes_t){(const char *)name, namelen})) ||
        (kind == TE && !CASGI_NAME_IS(v, "trailers"))) {
        s->malformed = 1;
        return 0;
    }
    if (kind == HOST) {
        if (s->has_host || !all_of(value, valuelen, C_AUTHORITY) || valuelen == 0) {
            s->malformed = 1;
            return 0;
        }
        s->has_host = 1;
    } else if (kind == LENGTH) {
        if (s->has_declared_length || casgi__headers_parse_length(v, &s->declared_length) != 0) {
            s->malformed = 1;
            return 0;
        }
        s->has_declared_length = 1;
        uint64_t max = s->h2->server->cfg.max_body_size;
        if (max && s->declared_length > max)
            s->error_status = 413;
    }
    if (add_field(s, name, namelen, value, valuelen) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)session;
    (void)flags;
    h2_t *h2 = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    stream_t *s = h2->heading;
    if (s == NULL || s->id != frame->hd.stream_id)
        s = h2->heading = stream_of(h2, frame->hd.stream_id);
    if (s == NULL || s->error_status || s->malformed)
        return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        /* trailers (8.1): no pseudo-header fields; ASGI has no request trailers, so the fields
         * go no further than this check */
        if (namelen == 0 || name[0] == ':' || !all_of(name, namelen, C_NAME) ||
            !valid_value(value, valuelen))
            s->malformed = 1;
        return 0;
    }
    /* RFC 9113 6.5.2: each field counts its name, value and 32 bytes */
    s->head_size += namelen + valuelen + 32;
    if (s->head_size > h2->server->cfg.max_request_head) {
        s->error_status = 431;
        return 0;
    }
    if (namelen > 0 && name[0] == ':')
        return on_pseudo(s, name, namelen, value, valuelen);
    return on_field(s, name, namelen, value, valuelen);
}

/* RFC 9113 8.3.1 and 8.5, RFC 8441 4: the request head has what its kind of request needs. */
static int request_complete(const stream_t *s)
{
    /* methods are case-sensitive (RFC 9110 9.1) */
    const uint8_t *method = (const uint8_t *)s->head.base + s->method.off;
    int connect = s->method.set && s->method.len == 7 && SAME(method, "CONNECT");
    if (connect && !s->protocol.set)
        return s->authority.set && !s->scheme.set && !s->path.set;
    if (!s->method.set || !s->scheme.set || !s->path.set || !(s->authority.set || s->has_host))
        return 0;
    if (s->protocol.set && (!connect || !s->authority.set))
        return 0;
    casgi_bytes_t scheme = {s->head.base + s->scheme.off, s->scheme.len};
    if (!CASGI_NAME_IS(scheme, "http") && !CASGI_NAME_IS(scheme, "https"))
        return 1;
    /* an http(s) target: origin form, or "*" for OPTIONS */
    const char *path = s->head.base + s->path.off;
    return path[0] == '/' ||
           (s->path.len == 1 && path[0] == '*' && s->method.len == 7 && SAME(method, "OPTIONS"));
}

/* RFC 9113 8.1.1: the body's length must be the declared one. */
static int length_exceeded(const stream_t *s)
{
    return s->has_declared_length && s->body_received > s->declared_length;
}
static int length_short(const stream_t *s)
{
    return s->has_declared_length && s->body_received != s->declared_length;
}

/*
 * A malformed request (RFC 9113 8.1.1) is a stream error PROTOCOL_ERROR. Its app never sees it,
 * or, when the fault comes with the body or trailers, sees a disconnect.
 */
static void reject_malformed(stream_t *s)
{
    h2_t *h2 = s->h2;
    CASGI_LOG(&h2->server->log, CASGI_LOG_WARNING, "Malformed HTTP/2 request on stream %d",
              (int)s->id);
    s->malformed = 1;
    s->rejected = 1;
    s->dispatch = 0;
    casgi__buf_clear(&s->body);
    nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_PROTOCOL_ERROR);
    if (s->call_live) {
        s->call.disconnected = 1;
        wake_stream(s);
    }
    wake_conn(h2);
}

/*
 * Builds the http scope from the head. The scope's strings point into s->head, which must not
 * move afterwards: everything it still needs is reserved first.
 */
static int build_scope(stream_t *s)
{
    h2_t *h2 = s->h2;
    casgi_server_t *server = h2->server;
    casgi__conn_t *conn = h2->conn;
    size_t root_len = strlen(server->root_path);
    /* RFC 9113 8.2.3: cookie crumbs are joined with "; " for an HTTP/1-style consumer */
    size_t cookies = 0, cookie_len = 0;
    int has_host = 0;
    for (size_t i = 0; i < s->num_fields; i++) {
        field_t f;
        memcpy(&f, s->fields.base + i * sizeof(f), sizeof(f));
        const char *name = s->head.base + f.name_off;
        if (f.name_len == 6 && memcmp(name, "cookie", 6) == 0) {
            cookies++;
            cookie_len += f.value_len + 2;
        }
        has_host |= f.name_len == 4 && memcmp(name, "host", 4) == 0;
    }
    int add_host = !has_host && s->authority.set;
    if (casgi__buf_reserve(&s->head,
                           s->path.len + 2 * root_len + 8 + (cookies > 1 ? cookie_len : 0)) ||
        casgi__buf_reserve(&s->fields, add_host ? sizeof(field_t) : 0))
        return CASGI_ENOMEM;
    if (add_host) {
        /* ASGI (and RFC 9113 8.3.1 for HTTP/1 consumers): :authority becomes a host header */
        field_t f = {0, 4, s->authority.off, s->authority.len};
        size_t off;
        head_append(s, (const uint8_t *)"host", 4, &off); /* room reserved above */
        f.name_off = off;
        /* first, as ASGI puts it */
        memmove(s->fields.base + sizeof(f), s->fields.base, s->fields.len);
        memcpy(s->fields.base, &f, sizeof(f));
        s->fields.len += sizeof(f);
        s->num_fields++;
    }
    char *base = s->head.base;
    casgi_header_t *headers = (casgi_header_t *)s->fields.base;
    casgi_bytes_t authority = {base + s->authority.off, s->authority.len};
    size_t kept = 0;
    casgi_header_t *first_cookie = NULL;
    for (size_t i = 0; i < s->num_fields; i++) {
        field_t f;
        memcpy(&f, s->fields.base + i * sizeof(f), sizeof(f));
        casgi_header_t hd = {{base + f.name_off, f.name_len}, {base + f.value_off, f.value_len}};
        /* RFC 9113 8.3.1: a Host that names another target than :authority is malformed (the
         * one made from :authority, first, names it) */
        if (s->authority.set && !(add_host && i == 0) && CASGI_NAME_IS(hd.name, "host") &&
            (hd.value.len != authority.len ||
             !casgi__headers_name_is(hd.value, authority.base, authority.len)))
            return CASGI_EHEADER;
        if (cookies > 1 && CASGI_NAME_IS(hd.name, "cookie")) {
            char *joined = base + s->head.len;
            if (first_cookie != NULL) {
                /* appended to the joined value, which grows in place at the end of head */
                memcpy(joined, "; ", 2);
                memcpy(joined + 2, hd.value.base, hd.value.len);
                first_cookie->value.len += 2 + hd.value.len;
                s->head.len += 2 + hd.value.len;
                continue;
            }
            memcpy(joined, hd.value.base, hd.value.len);
            hd.value.base = joined;
            s->head.len += hd.value.len;
            headers[kept] = hd;
            first_cookie = &headers[kept++];
            continue;
        }
        headers[kept++] = hd;
    }
    s->num_fields = kept;

    casgi_scope_t *scope = &s->call.scope;
    scope->type = CASGI_SCOPE_HTTP;
    scope->asgi_version = "3.0";
    scope->spec_version = "2.5";
    scope->http_version = "2";
    scope->method = (casgi_bytes_t){base + s->method.off, s->method.len};
    scope->scheme = conn->scheme;
    casgi_bytes_t target = {base + s->path.off, s->path.len};
    s->head.len +=
        casgi__scope_set_target(scope, target, server->root_path, root_len, base + s->head.len);
    scope->headers = s->num_fields ? headers : NULL;
    scope->num_headers = s->num_fields;
    scope->client = conn->client;
    scope->server = conn->local;
    scope->extensions = CASGI_EXT_HTTP_RESPONSE_TRAILERS | CASGI_EXT_HTTP_RESPONSE_EARLY_HINT;
    if (!s->pushed &&
        nghttp2_session_get_remote_settings(h2->session, NGHTTP2_SETTINGS_ENABLE_PUSH))
        scope->extensions |= CASGI_EXT_HTTP_RESPONSE_PUSH;
    return 0;
}

static void respond_error(stream_t *s, int status, const char *why);

/* Builds the scope and checks the concurrency limit, or answers the request itself: 1 when the
 * app may have it. */
static int admit(stream_t *s)
{
    int err = build_scope(s);
    if (err == CASGI_EHEADER) {
        /* a malformed request (RFC 9113 8.1.1): a stream error, no response */
        CASGI_LOG(&s->h2->server->log, CASGI_LOG_WARNING,
                  "Invalid HTTP/2 request received: host header differs from :authority");
        nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_PROTOCOL_ERROR);
        wake_conn(s->h2);
        return 0;
    }
    if (err != 0) {
        respond_error(s, 500, "out of memory");
        return 0;
    }
    if (casgi__server_over_limit(s->h2->server)) {
        respond_error(s, 503, "concurrency limit");
        return 0;
    }
    return 1;
}

/* ---- response ---------------------------------------------------------------------------- */

/*
 * Appends one field to the array handed to nghttp2. Without flags nghttp2 copies the strings,
 * lower-casing the names on the way (RFC 9113 8.2), so the app's case and buffers may be passed
 * as they are. NO_COPY_NAME/NO_COPY_VALUE: the string lives until the frame is encoded, and a
 * name is in lower case already.
 */
static int nv_add_flags(h2_t *h2, casgi_bytes_t name, casgi_bytes_t value, uint8_t flags)
{
    if (casgi__buf_reserve(&h2->nv, sizeof(nghttp2_nv)))
        return CASGI_ENOMEM;
    nghttp2_nv nv = {(uint8_t *)(uintptr_t)name.base, (uint8_t *)(uintptr_t)value.base, name.len,
                     value.len, flags};
    memcpy(h2->nv.base + h2->nv.len, &nv, sizeof(nv));
    h2->nv.len += sizeof(nv);
    return 0;
}

static int nv_add(h2_t *h2, casgi_bytes_t name, casgi_bytes_t value)
{
    return nv_add_flags(h2, name, value, NGHTTP2_NV_FLAG_NONE);
}

/* A literal field: nothing to copy, its name in lower case. */
#define NV_LITERAL(h2, name, value)                                                                \
    nv_add_flags((h2), (name), (value),                                                            \
                 NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)

/*
 * The literal for a name nearly every response carries, when the app spelt it in lower case
 * already: nghttp2 then neither copies nor lower-cases it. NULL for any other name.
 */
static const char *known_name(casgi_bytes_t name)
{
    const uint8_t *n = (const uint8_t *)name.base;
    switch (name.len) {
    case 12: return SAME(n, "content-type") ? "content-type" : NULL;
    case 14: return SAME(n, "content-length") ? "content-length" : NULL;
    default: return NULL;
    }
}

static nghttp2_nv *nv_array(h2_t *h2, size_t *count)
{
    *count = h2->nv.len / sizeof(nghttp2_nv);
    return (nghttp2_nv *)h2->nv.base;
}

static h2_ssize_t data_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user);

typedef enum {
    HEAD_FINAL,         /* the response: :status, the app's fields, the server's defaults */
    HEAD_INFORMATIONAL, /* a 1xx: :status and the fields given */
    HEAD_AS_GIVEN,      /* the response, its fields complete already (websocket.c's) */
} head_kind_t;

/*
 * Submits a response HEADERS frame. nghttp2 copies the app's fields; the server's are literals,
 * and the final response's :status and date are kept in the stream for nghttp2 to read in place:
 * it encodes a stream's HEADERS only while the stream is open, and the stream_t outlives
 * nghttp2's stream (its reference goes in on_stream_close). A 1xx, which may come more than
 * once, lets nghttp2 copy them.
 */
static int submit_head(stream_t *s, int status, const casgi_header_t *headers, size_t n,
                       head_kind_t kind)
{
    int informational = kind == HEAD_INFORMATIONAL;
    h2_t *h2 = s->h2;
    casgi_server_t *server = h2->server;
    char status_text[3] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                           (char)('0' + status % 10)};
    int in_place = !informational && !s->submitted;
    uint8_t value_flag = NGHTTP2_NV_FLAG_NONE;
    casgi_bytes_t status_bytes = {status_text, 3};
    if (in_place) {
        value_flag = NGHTTP2_NV_FLAG_NO_COPY_VALUE;
        memcpy(s->status_text, status_text, 3);
        status_bytes.base = s->status_text;
    }
    casgi__buf_clear(&h2->nv);
    int has_date = 0, has_server = 0;
    if (nv_add_flags(h2, CASGI_BYTES(":status"), status_bytes,
                     NGHTTP2_NV_FLAG_NO_COPY_NAME | value_flag))
        return CASGI_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        casgi_bytes_t name = headers[i].name;
        /* RFC 9110 8.6: no Content-Length in a 204 (HTTP/1 drops it too) */
        if (connection_specific(name) || (status == 204 && CASGI_NAME_IS(name, "content-length")))
            continue;
        has_date |= CASGI_NAME_IS(name, "date");
        has_server |= CASGI_NAME_IS(name, "server");
        const char *known = known_name(name);
        if (known != NULL ? nv_add_flags(h2, (casgi_bytes_t){known, name.len}, headers[i].value,
                                         NGHTTP2_NV_FLAG_NO_COPY_NAME)
                          : nv_add(h2, name, headers[i].value))
            return CASGI_ENOMEM;
    }
    if (kind == HEAD_FINAL) {
        if (server->cfg.server_header && !has_server &&
            NV_LITERAL(h2, CASGI_BYTES("server"), CASGI_BYTES("casgi")))
            return CASGI_ENOMEM;
        if (server->cfg.date_header && !has_date) {
            casgi_bytes_t date = {casgi__date_now(&server->date), CASGI_DATE_LEN};
            if (in_place) {
                memcpy(s->date, date.base, CASGI_DATE_LEN);
                date.base = s->date;
            }
            if (nv_add_flags(h2, CASGI_BYTES("date"), date,
                             NGHTTP2_NV_FLAG_NO_COPY_NAME | value_flag))
                return CASGI_ENOMEM;
        }
        for (size_t i = 0; i < server->cfg.num_headers; i++)
            if (nv_add(h2, server->default_headers[i].name, server->default_headers[i].value))
                return CASGI_ENOMEM;
    }
    size_t count;
    nghttp2_nv *nva = nv_array(h2, &count);
    int rv;
    if (informational) {
        rv = nghttp2_submit_headers(h2->session, NGHTTP2_FLAG_NONE, s->id, NULL, nva, count, NULL);
    } else {
        h2_data_provider_t provider = {.source.ptr = s, .read_callback = data_read};
        rv = h2_submit_response(h2->session, s->id, nva, count, s->no_body ? NULL : &provider);
        s->submitted = rv == 0;
    }
    if (rv != 0)
        return rv == NGHTTP2_ERR_NOMEM ? CASGI_ENOMEM : CASGI_EDISCONNECTED;
    wake_conn(h2);
    return 0;
}

/* The server's own answer to a request the app never sees. */
static void respond_error(stream_t *s, int status, const char *why)
{
    casgi_server_t *server = s->call.server;
    CASGI_LOG(&server->log, CASGI_LOG_WARNING, "Invalid HTTP/2 request received (%d): %s", status,
              why);
    /* the same body as HTTP/1's answer: the reason phrase and a newline */
    const char *reason = casgi__http_reason(status);
    size_t body_len = strlen(reason) + 1;
    char len[24];
    snprintf(len, sizeof(len), "%zu", body_len);
    casgi_header_t headers[] = {
        {CASGI_BYTES("content-type"), CASGI_BYTES("text/plain; charset=utf-8")},
        {CASGI_BYTES("content-length"), CASGI_STR(len)},
    };
    s->call.status = status;
    s->no_body = 0;
    if (casgi__buf_append(&s->out, reason, strlen(reason)) || casgi__buf_append(&s->out, "\n", 1) ||
        submit_head(s, status, headers, ARRAY_SIZE(headers), HEAD_FINAL) != 0) {
        nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    s->out_eof = 1;
    wake_conn(s->h2);
}

static int pack_trailers(stream_t *s, const casgi_header_t *headers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t lens[2] = {(uint32_t)headers[i].name.len, (uint32_t)headers[i].value.len};
        if (connection_specific(headers[i].name))
            continue;
        if (casgi__buf_append(&s->trailers, lens, sizeof(lens)) ||
            casgi__buf_append(&s->trailers, headers[i].name.base, lens[0]) ||
            casgi__buf_append(&s->trailers, headers[i].value.base, lens[1]))
            return CASGI_ENOMEM;
    }
    return 0;
}

static int submit_trailers(stream_t *s)
{
    h2_t *h2 = s->h2;
    casgi__buf_clear(&h2->nv);
    const char *p = casgi__buf_data(&s->trailers);
    const char *end = p + casgi__buf_size(&s->trailers);
    while (p < end) {
        uint32_t lens[2];
        memcpy(lens, p, sizeof(lens));
        p += sizeof(lens);
        casgi_bytes_t name = {p, lens[0]}, value = {p + lens[0], lens[1]};
        p += lens[0] + lens[1];
        if (nv_add(h2, name, value))
            return NGHTTP2_ERR_NOMEM;
    }
    size_t count;
    nghttp2_nv *nva = nv_array(h2, &count);
    return nghttp2_submit_trailer(h2->session, s->id, nva, count);
}

/*
 * nghttp2 asks for the next DATA payload. It defers while the app has sent nothing new, and is
 * resumed by the next send; the app's send callback follows what this takes (the stream's window
 * and our buffer), not the socket.
 */
static h2_ssize_t data_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *source, void *user)
{
    (void)session;
    (void)id;
    (void)user;
    stream_t *s = source->ptr;
    size_t avail = casgi__buf_size(&s->out);
    size_t n = avail < length ? avail : length;
    if (n > 0) {
        memcpy(buf, casgi__buf_data(&s->out), n);
        casgi__buf_consume(&s->out, n);
        if (s->call.send_cb)
            wake_stream(s);
        if (s->ws) {
            s->ws_drained = 1;
            wake_stream(s);
        }
    }
    if (n == avail && s->out_eof && (!s->trailers_due || s->trailers_ready)) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->trailers_due) {
            int rv = submit_trailers(s);
            if (rv != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (h2_ssize_t)n;
    }
    if (n == 0) {
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (h2_ssize_t)n;
}

static void resume(stream_t *s)
{
    if (s->deferred && s->open && s->h2->session) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->h2->session, s->id);
    }
    wake_conn(s->h2);
}

static void response_complete(stream_t *s)
{
    s->out_eof = 1;
    casgi__server_request_done(s->call.server);
    if (!s->logged) {
        s->logged = 1;
        casgi__call_log_request(&s->call, (casgi_bytes_t){s->head.base + s->path.off, s->path.len},
                                s->request_start);
    }
    resume(s);
}

static int write_start(stream_t *s, const casgi_event_t *ev)
{
    const casgi_header_t *headers = ev->start.headers;
    size_t n = ev->start.num_headers;
    int status = ev->start.status;
    uint64_t content_length = 0;
    int has_length = 0;
    for (size_t i = 0; i < n; i++)
        if (CASGI_NAME_IS(headers[i].name, "content-length")) {
            uint64_t len;
            if (casgi__headers_parse_length(headers[i].value, &len) != 0 ||
                (has_length && len != content_length))
                return CASGI_EHEADER;
            has_length = 1;
            content_length = len;
        }
    int is_head = CASGI_NAME_IS(s->call.scope.method, "head");
    s->no_body = is_head || status == 204 || status == 304;
    s->has_length = has_length && !s->no_body;
    s->content_length = content_length;
    s->trailers_due = ev->start.trailers != 0 && !s->no_body;
    return submit_head(s, status, headers, n, HEAD_FINAL);
}

static int write_body(stream_t *s, const casgi_event_t *ev)
{
    casgi_bytes_t data = ev->body.body;
    int last = !ev->body.more_body;
    if (!s->no_body) {
        if (s->has_length && (s->body_sent + data.len > s->content_length ||
                              (last && s->body_sent + data.len < s->content_length))) {
            CASGI_LOG(&s->call.server->log, CASGI_LOG_ERROR,
                      "Response content %s than Content-Length (%llu bytes); aborting",
                      s->body_sent + data.len > s->content_length ? "longer" : "shorter",
                      (unsigned long long)s->content_length);
            nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id,
                                      NGHTTP2_INTERNAL_ERROR);
            wake_conn(s->h2);
            return CASGI_ELENGTH;
        }
        if (casgi__buf_append(&s->out, data.base, data.len))
            return CASGI_ENOMEM;
        s->body_sent += data.len;
    }
    if (last) {
        if (s->trailers_due) {
            s->out_eof = 1;
            resume(s);
        } else {
            response_complete(s);
        }
    } else if (data.len) {
        resume(s);
    }
    return 0;
}

static int write_trailers(stream_t *s, const casgi_event_t *ev)
{
    if (s->trailers_due && pack_trailers(s, ev->trailers.headers, ev->trailers.num_headers))
        return CASGI_ENOMEM;
    if (!ev->trailers.more_trailers) {
        s->trailers_ready = 1;
        response_complete(s);
    }
    return 0;
}

static int write_early_hint(stream_t *s, const casgi_event_t *ev)
{
    size_t n = ev->early_hint.num_links;
    if (n == 0)
        return 0;
    casgi_header_t small[16];
    casgi_header_t *links = n <= ARRAY_SIZE(small) ? small : malloc(n * sizeof(*links));
    if (links == NULL)
        return CASGI_ENOMEM;
    for (size_t i = 0; i < n; i++)
        links[i] = (casgi_header_t){CASGI_BYTES("link"), ev->early_hint.links[i]};
    int err = submit_head(s, 103, links, n, HEAD_INFORMATIONAL);
    if (links != small)
        free(links);
    return err;
}

static int start_pushed(stream_t *parent, const casgi_event_t *ev);

/* ---- call operations --------------------------------------------------------------------- */

static int call_send(casgi_call_t *call, const casgi_event_t *ev)
{
    stream_t *s = container_of(call, stream_t, call);
    if (!s->open || s->h2->conn == NULL) {
        call->disconnected = 1;
        return CASGI_EDISCONNECTED;
    }
    switch (ev->type) {
    case CASGI_EVENT_HTTP_RESPONSE_START: return write_start(s, ev);
    case CASGI_EVENT_HTTP_RESPONSE_BODY: return write_body(s, ev);
    case CASGI_EVENT_HTTP_RESPONSE_TRAILERS: return write_trailers(s, ev);
    case CASGI_EVENT_HTTP_RESPONSE_EARLY_HINT: return write_early_hint(s, ev);
    case CASGI_EVENT_HTTP_RESPONSE_PUSH: return start_pushed(s, ev);
    default: return CASGI_EEVENT;
    }
}

static void call_wake(casgi_call_t *call)
{
    wake_stream(container_of(call, stream_t, call));
}

static void call_abort(casgi_call_t *call)
{
    stream_t *s = container_of(call, stream_t, call);
    if (s->open && s->h2->session) {
        nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
        wake_conn(s->h2);
    }
}

/* Gives the client back the window of bytes the app has taken. */
static void give_window(stream_t *s)
{
    if (s->unacked && s->open && s->h2->session) {
        nghttp2_session_consume_stream(s->h2->session, s->id, s->unacked);
        wake_conn(s->h2);
    }
    s->unacked = 0;
}

static void call_end(casgi_call_t *call, int error)
{
    (void)error;
    stream_t *s = container_of(call, stream_t, call);
    casgi_server_t *server = call->server;
    s->call_live = 0;
    /* Nobody reads the rest of the body: let it flow (and be dropped) rather than stall. */
    s->unacked += casgi__buf_size(&s->body);
    casgi__buf_clear(&s->body);
    give_window(s);
    if (s->open && s->h2->session && !s->submitted) {
        /* The app ended without a response it could still send (a disconnect raced it). */
        nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        wake_conn(s->h2);
    }
    stream_unref(s);
    casgi__server_call_ended(server);
}

static const casgi__call_ops_t call_ops = {
    .send = call_send,
    .wake = call_wake,
    .abort = call_abort,
    .end = call_end,
};

/* ---- streams ----------------------------------------------------------------------------- */

static int deliver(stream_t *s)
{
    int gone = !s->open || s->h2->conn == NULL;
    int final = s->end_stream;
    size_t n = casgi__buf_size(&s->body);
    switch (casgi__call_deliver_http(&s->call, gone, &s->body, final, s->final_delivered)) {
    case CASGI__DELIVERED_DISCONNECT: return 1;
    case CASGI__DELIVERED_BODY:
        s->final_delivered = final;
        casgi__buf_clear(&s->body);
        s->unacked += n;
        give_window(s);
        return 1;
    case CASGI__DELIVERED_NOTHING: break;
    }
    return 0;
}

static void open_websocket(stream_t *s);

static void dispatch(stream_t *s)
{
    h2_t *h2 = s->h2;
    s->dispatch = 0;
    if (s->error_status) {
        respond_error(s, s->error_status,
                      s->error_status == 431   ? "request head too large"
                      : s->error_status == 413 ? "request body too large"
                                               : "request target too long");
        return;
    }
    if (!s->method.set || (!s->path.set && !s->protocol.set)) {
        respond_error(s, 405, "CONNECT is not supported");
        return;
    }
    if (s->protocol.set) {
        open_websocket(s);
        return;
    }
    if (!admit(s))
        return;
    s->call_live = 1;
    s->refs++;
    casgi__server_call_started(h2->server);
    casgi__call_start(&s->call);
}

static void ws_events(stream_t *s);

static void on_stream_task(casgi__task_t *task)
{
    stream_t *s = container_of(task, stream_t, task);
    s->refs++;
    if (s->ws != NULL)
        ws_events(s);
    for (;;) {
        if (s->dispatch && s->h2->conn != NULL) {
            dispatch(s);
            continue;
        }
        if (s->call_live && s->call.recv_cb && deliver(s))
            continue;
        if (s->call_live && s->call.send_cb &&
            (!s->open || s->h2->conn == NULL ||
             casgi__buf_size(&s->out) < s->call.server->cfg.high_water_mark)) {
            casgi__call_send_done(&s->call, s->open && s->h2->conn ? 0 : CASGI_EDISCONNECTED);
            continue;
        }
        break;
    }
    wake_conn(s->h2);
    stream_unref(s);
}

/* ---- server push ------------------------------------------------------------------------- */

static int start_pushed(stream_t *parent, const casgi_event_t *ev)
{
    h2_t *h2 = parent->h2;
    if (!nghttp2_session_get_remote_settings(h2->session, NGHTTP2_SETTINGS_ENABLE_PUSH) ||
        h2->shutting_down)
        return 0; /* the client turned push off since: a push is a hint, dropping it is fine */
    const casgi_scope_t *ps = &parent->call.scope;
    casgi_bytes_t authority = {NULL, 0};
    if (parent->authority.set)
        authority =
            (casgi_bytes_t){parent->head.base + parent->authority.off, parent->authority.len};
    for (size_t i = 0; authority.len == 0 && i < ps->num_headers; i++)
        if (CASGI_NAME_IS(ps->headers[i].name, "host"))
            authority = ps->headers[i].value;
    casgi__buf_clear(&h2->nv);
    if (nv_add(h2, CASGI_BYTES(":method"), CASGI_BYTES("GET")) ||
        nv_add(h2, CASGI_BYTES(":scheme"), CASGI_STR(ps->scheme)) ||
        nv_add(h2, CASGI_BYTES(":path"), ev->push.path) ||
        (authority.len && nv_add(h2, CASGI_BYTES(":authority"), authority)))
        return CASGI_ENOMEM;
    for (size_t i = 0; i < ev->push.num_headers; i++)
        if (!connection_specific(ev->push.headers[i].name) &&
            nv_add(h2, ev->push.headers[i].name, ev->push.headers[i].value))
            return CASGI_ENOMEM;
    size_t count;
    nghttp2_nv *nva = nv_array(h2, &count);
    stream_t *s = stream_new(h2, 0);
    if (s == NULL)
        return CASGI_ENOMEM;
    s->pushed = 1;
    s->end_stream = 1;
    /* The promised request is also the pushed stream's scope: same fields, same order. */
    for (size_t i = 0; i < count; i++) {
        size_t off;
        if (nva[i].name[0] == ':') {
            if (head_append(s, nva[i].value, nva[i].valuelen, &off))
                goto nomem;
            span_t *span = nva[i].namelen == 5                            ? &s->path
                           : nva[i].namelen == 7 && nva[i].name[1] == 'm' ? &s->method
                           : nva[i].namelen == 7                          ? &s->scheme
                                                                          : &s->authority;
            take_pseudo(span, off, nva[i].valuelen);
            continue;
        }
        char *name = add_field(s, nva[i].name, nva[i].namelen, nva[i].value, nva[i].valuelen);
        if (name == NULL)
            goto nomem;
        casgi__headers_lower(name, nva[i].namelen); /* scope names are */
    }
    int32_t id =
        nghttp2_submit_push_promise(h2->session, NGHTTP2_FLAG_NONE, parent->id, nva, count, s);
    if (id < 0) {
        stream_unref(s);
        return id == NGHTTP2_ERR_NOMEM ? CASGI_ENOMEM : 0;
    }
    /* the app runs once the PUSH_PROMISE is out (on_frame_send): before, the stream is unknown */
    s->id = id;
    s->headers_done = 1;
    wake_conn(h2);
    return 0;
nomem:
    stream_unref(s);
    return CASGI_ENOMEM;
}

/* ---- WebSocket over HTTP/2 (RFC 8441) ---------------------------------------------------- */

/* A stream's WebSocket deadline. Its own allocation: libuv frees handles asynchronously. */
typedef struct ws_timer_s {
    uv_timer_t timer;
    stream_t *stream; /* NULL once the stream is gone */
} ws_timer_t;

static void ws_timer_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void ws_timer_release(stream_t *s)
{
    if (s->ws_timer == NULL)
        return;
    s->ws_timer->stream = NULL;
    uv_close((uv_handle_t *)&s->ws_timer->timer, ws_timer_closed);
    s->ws_timer = NULL;
}

static void ws_timer_fired(uv_timer_t *timer)
{
    ws_timer_t *t = timer->data;
    if (t->stream != NULL && t->stream->ws != NULL)
        casgi__websocket_on_timeout(t->stream->ws);
}

static int ws_respond(void *t, int status, const casgi_header_t *headers, size_t n)
{
    stream_t *s = t;
    if (!s->open || s->h2->session == NULL)
        return CASGI_EDISCONNECTED;
    s->no_body = 0;
    return submit_head(s, status, headers, n, HEAD_AS_GIVEN);
}

static int ws_write(void *t, const void *data, size_t len)
{
    stream_t *s = t;
    if (!s->open || s->h2->session == NULL)
        return CASGI_EDISCONNECTED;
    if (casgi__buf_append(&s->out, data, len))
        return CASGI_ENOMEM;
    resume(s);
    return 0;
}

static size_t ws_buffered(void *t)
{
    return casgi__buf_size(&((stream_t *)t)->out);
}

static void ws_flush_later(void *t)
{
    wake_conn(((stream_t *)t)->h2);
}

static casgi__buf_t *ws_input(void *t)
{
    return &((stream_t *)t)->body;
}

/* What websocket.c consumed goes back to the client's window; a stopped reader gets none. */
static void ws_read_start(void *t)
{
    stream_t *s = t;
    size_t consumed = s->ws_unacked - casgi__buf_size(&s->body);
    if (consumed > 0 && s->open && s->h2->session) {
        nghttp2_session_consume_stream(s->h2->session, s->id, consumed);
        s->ws_unacked -= consumed;
        wake_conn(s->h2);
    }
}

static void ws_read_stop(void *t)
{
    (void)t;
}

static void ws_set_deadline(void *t, uint64_t ms)
{
    stream_t *s = t;
    if (s->ws_timer == NULL) {
        ws_timer_t *timer = malloc(sizeof(*timer));
        if (timer == NULL)
            return; /* no keepalive for this one socket: better than failing it */
        uv_timer_init(s->h2->server->loop, &timer->timer);
        timer->timer.data = timer;
        timer->stream = s;
        s->ws_timer = timer;
    }
    uv_timer_start(&s->ws_timer->timer, ws_timer_fired, ms, 0);
}

static void ws_clear_deadline(void *t)
{
    stream_t *s = t;
    if (s->ws_timer != NULL)
        uv_timer_stop(&s->ws_timer->timer);
}

static void ws_abort(void *t)
{
    stream_t *s = t;
    if (s->open && s->h2->session) {
        nghttp2_submit_rst_stream(s->h2->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        wake_conn(s->h2);
    }
}

static void ws_finish(void *t)
{
    stream_t *s = t;
    s->ws_finished = 1;
    s->out_eof = 1;
    /* what is left unread, and what still comes (on_data_chunk), is dropped: its window goes
     * back at once, so the client is never stuck on a closed window */
    casgi__buf_clear(&s->body);
    ws_read_start(s);
    resume(s);
}

static const casgi__ws_transport_t ws_transport = {
    .http2 = 1,
    .respond = ws_respond,
    .write = ws_write,
    .buffered = ws_buffered,
    .flush_later = ws_flush_later,
    .input = ws_input,
    .read_start = ws_read_start,
    .read_stop = ws_read_stop,
    .set_deadline = ws_set_deadline,
    .clear_deadline = ws_clear_deadline,
    .abort = ws_abort,
    .finish = ws_finish,
};

/* The stream is gone (closed, reset, or the connection with it): the last word to websocket.c. */
static void ws_gone(stream_t *s)
{
    casgi__websocket_t *w = s->ws;
    if (w == NULL)
        return;
    s->ws = NULL;
    ws_timer_release(s);
    casgi__websocket_on_close(w);
}

/* What happened to the stream since its task last ran, told to websocket.c. */
static void ws_events(stream_t *s)
{
    /* input first: a close frame may share the DATA frame that ends the stream */
    if (s->ws_input) {
        s->ws_input = 0;
        casgi__websocket_on_read(s->ws);
    }
    if (s->ws != NULL && s->ws_drained) {
        s->ws_drained = 0;
        casgi__websocket_on_drain(s->ws);
    }
    if (s->ws != NULL && s->end_stream && !s->ws_eof) {
        /* the client ended its side: for a WebSocket that is the connection going away */
        s->ws_eof = 1;
        casgi__websocket_on_read_error(s->ws, UV_EOF);
        if (s->ws != NULL && !s->ws_finished)
            ws_abort(s);
    }
}

/* An extended CONNECT (RFC 8441 4): ":protocol websocket" opens a WebSocket on this stream. */
static void open_websocket(stream_t *s)
{
    h2_t *h2 = s->h2;
    casgi_bytes_t protocol = {s->head.base + s->protocol.off, s->protocol.len};
    if (!h2->server->cfg.ws || !CASGI_NAME_IS(protocol, "websocket")) {
        respond_error(s, 400, "extended CONNECT for an unsupported protocol");
        return;
    }
    if (!admit(s))
        return;
    /* DATA that came before the answer is the WebSocket's first input */
    s->ws_unacked = casgi__buf_size(&s->body);
    if (casgi__websocket_open(h2->server, &ws_transport, s, &s->call.scope, &s->ws) != 0)
        respond_error(s, 500, "out of memory");
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------- */

/*
 * nghttp2 1.52 treats a HEADERS beyond the acknowledged SETTINGS_MAX_CONCURRENT_STREAMS as a
 * connection error, tearing down every stream of the connection; RFC 9113 5.1.2 asks for a stream
 * error. So nghttp2 is given twice the limit (see submit_settings), on_begin_headers refuses the
 * streams between the two with REFUSED_STREAM, and the client is told the real limit: this
 * rewrites that one value in our first SETTINGS frame on its way out.
 */
static void advertise_limit(h2_t *h2, uint8_t *frame, size_t length)
{
    h2->settings_sent = 1;
    if (length < 9 || frame[3] != NGHTTP2_SETTINGS || frame[4] != 0)
        return;
    size_t payload = (size_t)frame[0] << 16 | (size_t)frame[1] << 8 | frame[2];
    if (payload > length - 9)
        return;
    uint32_t limit = h2->server->cfg.h2_max_concurrent_streams;
    for (uint8_t *e = frame + 9; e + 6 <= frame + 9 + payload; e += 6)
        if (e[0] == 0 && e[1] == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) {
            e[2] = (uint8_t)(limit >> 24);
            e[3] = (uint8_t)(limit >> 16);
            e[4] = (uint8_t)(limit >> 8);
            e[5] = (uint8_t)limit;
        }
}

static h2_ssize_t send_callback(nghttp2_session *session, const uint8_t *data, size_t length,
                                int flags, void *user)
{
    (void)session;
    (void)flags;
    h2_t *h2 = user;
    casgi__conn_t *conn = h2->conn;
    if (conn == NULL || conn->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    /* Past the high-water mark the client is not reading: nghttp2 keeps the rest queued. */
    if (casgi__conn_buffered(conn) >= h2->server->cfg.high_water_mark)
        return NGHTTP2_ERR_WOULDBLOCK;
    size_t at = conn->wbuf.len;
    if (casgi__conn_write(conn, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (!h2->settings_sent)
        advertise_limit(h2, (uint8_t *)conn->wbuf.base + at, length);
    return (h2_ssize_t)length;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    h2_t *h2 = user;
    /* The connection's window is returned at once; a stream's only as its app receives, so a
     * slow app holds back its own stream and no other. */
    nghttp2_session_consume_connection(session, len);
    stream_t *s = nghttp2_session_get_stream_user_data(session, id);
    if (s != NULL && !s->rejected) {
        s->body_received += len;
        if (length_exceeded(s)) {
            nghttp2_session_consume_stream(session, id, len);
            reject_malformed(s);
            return 0;
        }
    }
    if (s != NULL && s->ws != NULL && !s->ws_finished) {
        if (casgi__buf_append(&s->body, data, len))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        s->ws_unacked += len;
        s->ws_input = 1;
        wake_stream(s);
        return 0;
    }
    int wanted = s != NULL && !s->error_status && !s->rejected &&
                 (s->dispatch || (s->call_live && !s->call.disconnected &&
                                  s->call.response != CASGI__RESPONSE_COMPLETE));
    if (!wanted) {
        nghttp2_session_consume_stream(session, id, len);
        return 0;
    }
    uint64_t max = h2->server->cfg.max_body_size;
    if (max && s->body_received > max) {
        nghttp2_session_consume_stream(session, id, len);
        casgi__buf_clear(&s->body);
        if (s->dispatch) {
            s->error_status = 413;
        } else if (s->call.response == CASGI__RESPONSE_NONE) {
            s->call.disconnected = 1; /* the app's sends fail from now on; ours goes out */
            respond_error(s, 413, "request body too large");
            wake_stream(s);
        } else {
            s->call.disconnected = 1;
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
            wake_stream(s);
        }
        return 0;
    }
    if (casgi__buf_append(&s->body, data, len))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (s->call.recv_cb)
        wake_stream(s);
    return 0;
}

static void count_reset(h2_t *h2)
{
    uint64_t now = uv_now(h2->server->loop);
    if (now - h2->reset_window_start > RESET_WINDOW_MS) {
        h2->reset_window_start = now;
        h2->resets = 0;
    }
    unsigned max = h2->server->cfg.h2_max_resets; /* 0: no limit, as for every limit */
    if (max && ++h2->resets > max && !h2->calm_logged) {
        h2->calm_logged = 1;
        CASGI_LOG(&h2->server->log, CASGI_LOG_WARNING,
                  "HTTP/2 client reset more than %u streams in %d s (rapid reset): GOAWAY "
                  "ENHANCE_YOUR_CALM",
                  h2->server->cfg.h2_max_resets, RESET_WINDOW_MS / 1000);
        nghttp2_session_terminate_session(h2->session, NGHTTP2_ENHANCE_YOUR_CALM);
    }
}

static void check_initial_window(h2_t *h2, const nghttp2_settings *settings);

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    h2_t *h2 = user;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
        stream_t *s = h2->heading; /* it received this block's fields: no lookup */
        if (s == NULL || s->id != frame->hd.stream_id || !s->open)
            s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (s == NULL || s->rejected)
            return 0;
        int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && !s->headers_done) {
            s->headers_done = 1;
            h2->deadline = h2->server->cfg.timeout_keep_alive;
            /* a request refused with a status is answered, however its head ended */
            if (!s->error_status &&
                (s->malformed || !request_complete(s) || (end_stream && length_short(s)))) {
                reject_malformed(s);
                return 0;
            }
            s->dispatch = 1;
            wake_stream(s);
        } else if (s->malformed || !end_stream || length_short(s)) {
            /* trailers (8.1): valid fields only, and they end the stream */
            reject_malformed(s);
            return 0;
        }
        if (end_stream) {
            s->end_stream = 1;
            wake_stream(s);
        }
        return 0;
    }
    case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
            if (s != NULL && !s->rejected) {
                if (length_short(s)) {
                    reject_malformed(s);
                    return 0;
                }
                s->end_stream = 1;
                wake_stream(s);
            }
        }
        return 0;
    case NGHTTP2_RST_STREAM: count_reset(h2); return 0;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            check_initial_window(h2, &frame->settings);
        return 0;
    default: return 0;
    }
}

/* A pushed stream exists once its PUSH_PROMISE is out: only then may its app answer. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)user;
    if (frame->hd.type != NGHTTP2_PUSH_PROMISE)
        return 0;
    stream_t *s =
        nghttp2_session_get_stream_user_data(session, frame->push_promise.promised_stream_id);
    if (s != NULL && !s->call_live) {
        s->dispatch = 1;
        wake_stream(s);
    }
    return 0;
}

static int on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame, int error,
                             void *user)
{
    (void)session;
    (void)error;
    (void)user;
    if (frame->hd.type != NGHTTP2_PUSH_PROMISE)
        return 0;
    /* the promise never went out, so nghttp2 never opened (and will never close) the stream */
    stream_t *s =
        frame->push_promise.promised_stream_id
            ? nghttp2_session_get_stream_user_data(session, frame->push_promise.promised_stream_id)
            : NULL;
    if (s != NULL) {
        s->open = 0;
        stream_unref(s);
    }
    return 0;
}

static void ws_gone(stream_t *s);

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    (void)error_code;
    h2_t *h2 = user;
    stream_t *s = nghttp2_session_get_stream_user_data(session, id);
    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    s->open = 0;
    if (!s->pushed)
        h2->num_open--;
    if (h2->shutting_down)
        wake_conn(h2); /* perhaps the last stream: the final GOAWAY is due */
    else if (h2->num_open == 0 && h2->conn != NULL)
        h2->deadline = h2->server->cfg.timeout_keep_alive; /* idle from now */
    ws_gone(s);
    if (s->call_live) {
        if (s->call.response != CASGI__RESPONSE_COMPLETE)
            s->call.disconnected = 1;
        wake_stream(s);
    }
    s->dispatch = 0;
    stream_unref(s);
    return 0;
}

/*
 * RFC 9113 5.1.1: a new stream's identifier must be greater than every one the client used
 * before, else PROTOCOL_ERROR for the connection. nghttp2 1.52 drops such a HEADERS silently when
 * it no longer knows the stream, so the check is made here, on the frame header.
 */
static int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *user)
{
    h2_t *h2 = user;
    if (hd->type == NGHTTP2_HEADERS && (hd->stream_id & 1) &&
        hd->stream_id <= nghttp2_session_get_last_proc_stream_id(session) &&
        nghttp2_session_find_stream(session, hd->stream_id) == NULL)
        nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR);
    if (hd->type == NGHTTP2_SETTINGS && !(hd->flags & NGHTTP2_FLAG_ACK))
        for (casgi__list_t *n = h2->streams.next; n != &h2->streams; n = n->next) {
            stream_t *s = container_of(n, stream_t, node);
            if (s->open)
                s->send_window = nghttp2_session_get_stream_remote_window_size(session, s->id);
        }
    return 0;
}

/*
 * RFC 9113 6.9.2: a new SETTINGS_INITIAL_WINDOW_SIZE that pushes any stream's window past 2^31-1
 * is a connection error FLOW_CONTROL_ERROR; nghttp2 1.52 resets just the stream. The windows
 * were noted in on_begin_frame.
 */
static void check_initial_window(h2_t *h2, const nghttp2_settings *settings)
{
    for (size_t i = 0; i < settings->niv; i++) {
        if (settings->iv[i].settings_id != NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE)
            continue;
        int64_t delta = (int64_t)settings->iv[i].value - h2->peer_initial_window;
        h2->peer_initial_window = (int32_t)settings->iv[i].value;
        for (casgi__list_t *n = h2->streams.next; n != &h2->streams; n = n->next) {
            stream_t *s = container_of(n, stream_t, node);
            if (s->open && (int64_t)s->send_window + delta > 0x7fffffff) {
                nghttp2_session_terminate_session(h2->session, NGHTTP2_FLOW_CONTROL_ERROR);
                return;
            }
        }
    }
}

static int on_invalid_frame(nghttp2_session *session, const nghttp2_frame *frame, int error,
                            void *user)
{
    (void)session;
    h2_t *h2 = user;
    CASGI_LOG(&h2->server->log, CASGI_LOG_INFO, "HTTP/2 invalid frame (type %d, stream %d): %s",
              frame->hd.type, frame->hd.stream_id, nghttp2_strerror(error));
    return 0;
}

static int on_error(nghttp2_session *session, int code, const char *msg, size_t len, void *user)
{
    (void)session;
    h2_t *h2 = user;
    CASGI_LOG(&h2->server->log, CASGI_LOG_INFO, "HTTP/2 protocol error (%s): %.*s",
              nghttp2_strerror(code), (int)len, msg);
    return 0;
}

/* ---- the engine -------------------------------------------------------------------------- */

static void update_reading(h2_t *h2)
{
    casgi__conn_t *conn = h2->conn;
    if (conn == NULL || conn->closing || conn->lingering || h2->session == NULL)
        return;
    size_t hwm = h2->server->cfg.high_water_mark;
    if (nghttp2_session_want_read(h2->session) && casgi__conn_buffered(conn) < hwm)
        casgi__conn_read_start(conn);
    else
        casgi__conn_read_stop(conn);
}

/* The connection is done when nghttp2 wants neither to read nor to write. */
static void finish_if_done(h2_t *h2)
{
    casgi__conn_t *conn = h2->conn;
    if (conn == NULL || conn->closing || conn->close_after_flush)
        return;
    if (!nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session))
        casgi__conn_close_after_flush(conn);
}

/* A graceful shutdown's second GOAWAY, once the last accepted stream is done (RFC 9113 6.8). */
static void maybe_final_goaway(h2_t *h2)
{
    if (!h2->shutting_down || h2->final_goaway || h2->session == NULL)
        return;
    casgi__list_t *n;
    for (n = h2->streams.next; n != &h2->streams; n = n->next) {
        stream_t *s = container_of(n, stream_t, node);
        if (s->open)
            return;
    }
    h2->final_goaway = 1;
    /* GOAWAY with the last stream we processed; nghttp2 closes once it is sent */
    nghttp2_session_terminate_session(h2->session, NGHTTP2_NO_ERROR);
}

static void run(h2_t *h2)
{
    casgi__conn_t *conn = h2->conn;
    if (conn == NULL || conn->closing || h2->session == NULL)
        return;
    h2->refs++;
    casgi__buf_t *rbuf = &conn->rbuf;
    if (casgi__buf_size(rbuf) > 0 && !conn->lingering && !conn->close_after_flush) {
        h2_ssize_t n = h2_session_mem_recv(h2->session, (const uint8_t *)casgi__buf_data(rbuf),
                                           casgi__buf_size(rbuf));
        if (n < 0) {
            if (n == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
                CASGI_LOG(&h2->server->log, CASGI_LOG_WARNING,
                          "Invalid HTTP/2 connection preface; closing");
            else if (n != NGHTTP2_ERR_CALLBACK_FAILURE)
                CASGI_LOG(&h2->server->log, CASGI_LOG_INFO, "HTTP/2 connection error: %s",
                          nghttp2_strerror((int)n));
            casgi__buf_clear(rbuf);
            /* whatever nghttp2 queued (a GOAWAY) still goes out */
            nghttp2_session_send(h2->session);
            if (h2->conn)
                casgi__conn_close_after_flush(h2->conn);
            goto out;
        }
        casgi__buf_consume(rbuf, (size_t)n);
    }
    maybe_final_goaway(h2);
    if (h2->conn && nghttp2_session_want_write(h2->session)) {
        int rv = nghttp2_session_send(h2->session);
        if (rv != 0 && h2->conn) {
            casgi__conn_close(h2->conn);
            goto out;
        }
        if (h2->conn)
            casgi__conn_flush_later(h2->conn);
    }
    /* The callbacks name the deadline each stream event calls for; only the last one counts,
     * so it is set once here rather than for every stream of a read. */
    if (h2->deadline && h2->conn) {
        casgi__conn_set_deadline(h2->conn, h2->deadline);
        h2->deadline = 0;
    }
    finish_if_done(h2);
    update_reading(h2);
out:
    h2_unref(h2);
}

static void on_conn_task(casgi__task_t *task)
{
    run(container_of(task, h2_t, task));
}

/* ---- connection events ------------------------------------------------------------------- */

static void on_read(casgi__conn_t *conn)
{
    run(conn->proto_data);
}

static void on_drain(casgi__conn_t *conn)
{
    h2_t *h2 = conn->proto_data;
    run(h2);
}

static void on_read_error(casgi__conn_t *conn, int status)
{
    h2_t *h2 = conn->proto_data;
    if (status != UV_EOF)
        CASGI_LOG(&h2->server->log, CASGI_LOG_DEBUG, "HTTP/2 connection lost: %s",
                  casgi_strerror(status));
}

static int any_open_stream(h2_t *h2)
{
    for (casgi__list_t *n = h2->streams.next; n != &h2->streams; n = n->next)
        if (container_of(n, stream_t, node)->open)
            return 1;
    return 0;
}

static void on_timeout(casgi__conn_t *conn)
{
    h2_t *h2 = conn->proto_data;
    for (casgi__list_t *n = h2->streams.next; n != &h2->streams; n = n->next) {
        stream_t *s = container_of(n, stream_t, node);
        if (s->open && !s->headers_done) {
            CASGI_LOG(&h2->server->log, CASGI_LOG_WARNING,
                      "Request header timeout: closing an HTTP/2 connection whose request head "
                      "did not complete in time.");
            nghttp2_session_terminate_session(h2->session, NGHTTP2_NO_ERROR);
            run(h2);
            if (h2->conn && !h2->conn->closing)
                casgi__conn_close_after_flush(h2->conn);
            return;
        }
    }
    if (any_open_stream(h2)) {
        /* streams in progress: idle is measured between requests only */
        casgi__conn_set_deadline(conn, h2->server->cfg.timeout_keep_alive);
        return;
    }
    nghttp2_session_terminate_session(h2->session, NGHTTP2_NO_ERROR);
    run(h2);
    if (h2->conn && !h2->conn->closing)
        casgi__conn_close_after_flush(h2->conn);
}

static void on_shutdown(casgi__conn_t *conn)
{
    h2_t *h2 = conn->proto_data;
    if (h2->shutting_down)
        return;
    h2->shutting_down = 1;
    /* RFC 9113 6.8: first a GOAWAY with the last stream id we may still accept, then, when the
     * accepted streams are done, the final one. */
    nghttp2_submit_shutdown_notice(h2->session);
    for (casgi__list_t *n = h2->streams.next; n != &h2->streams; n = n->next) {
        stream_t *s = container_of(n, stream_t, node);
        if (s->ws != NULL)
            casgi__websocket_on_shutdown(s->ws);
    }
    wake_conn(h2);
}

static void on_close(casgi__conn_t *conn)
{
    h2_t *h2 = conn->proto_data;
    h2->conn = NULL;
    /* Every stream loses its client; the apps see http.disconnect. */
    casgi__list_t *n = h2->streams.next;
    while (n != &h2->streams) {
        stream_t *s = container_of(n, stream_t, node);
        n = n->next;
        if (!s->open)
            continue;
        s->open = 0;
        s->dispatch = 0;
        ws_gone(s);
        if (s->call_live) {
            s->call.disconnected = 1;
            wake_stream(s);
        }
        stream_unref(s); /* nghttp2's reference: the session goes below */
    }
    nghttp2_session_del(h2->session);
    h2->session = NULL;
    h2_unref(h2);
}

static const casgi__proto_t proto = {
    .name = "h2c",
    .on_read = on_read,
    .on_read_error = on_read_error,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_shutdown = on_shutdown,
    .on_close = on_close,
};

/* ---- setup ------------------------------------------------------------------------------- */

static void *mem_malloc(size_t size, void *data)
{
    return casgi__slab_alloc(data, size);
}
static void mem_free(void *ptr, void *data)
{
    casgi__slab_free(data, ptr);
}
static void *mem_calloc(size_t n, size_t size, void *data)
{
    return casgi__slab_calloc(data, n, size);
}
static void *mem_realloc(void *ptr, size_t size, void *data)
{
    return casgi__slab_realloc(data, ptr, size);
}

static int session_new(h2_t *h2)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return CASGI_ENOMEM;
    h2_callbacks_set_send(cbs, send_callback);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return CASGI_ENOMEM;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* nghttp2's HTTP messaging rules cost more than all our own work on a request: the same
     * rules are kept in on_header and on_frame_recv, within the pass that records the fields */
    nghttp2_option_set_no_http_messaging(opt, 1);
    /* nghttp2 rejects the 9th CONTINUATION by default (CVE-2024-28182), and a client that floods
     * SETTINGS or PING without reading the acks hits its outbound-ack limit (1000): the session
     * fails and the connection closes. Before that, our high-water mark stops reading it. */
    /* nghttp2 allocates and frees a handful of small blocks per stream: the server's slab */
    nghttp2_mem mem = {&h2->server->slab, mem_malloc, mem_free, mem_calloc, mem_realloc};
    int rv = nghttp2_session_server_new3(&h2->session, cbs, h2, opt, &mem);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return rv == 0 ? 0 : CASGI_ENOMEM;
}

static int submit_settings(h2_t *h2)
{
    const casgi_config_t *cfg = &h2->server->cfg;
    uint32_t nghttp2_limit = cfg->h2_max_concurrent_streams > 0x3fffffff
                                 ? 0x7fffffff
                                 : 2 * cfg->h2_max_concurrent_streams; /* see advertise_limit */
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, nghttp2_limit},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->h2_stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_request_head},
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, cfg->ws ? 1u : 0u},
    };
    if (nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, settings, ARRAY_SIZE(settings)))
        return CASGI_ENOMEM;
    /* The connection window covers every stream's: one stalled stream cannot starve the rest. */
    uint64_t conn_window = (uint64_t)cfg->h2_stream_window * cfg->h2_max_concurrent_streams;
    if (conn_window > 0x7fffffff)
        conn_window = 0x7fffffff;
    if (conn_window > 65535)
        nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)conn_window);
    return 0;
}

static h2_t *h2_new(casgi__conn_t *conn)
{
    h2_t *h2 = calloc(1, sizeof(*h2));
    if (h2 == NULL)
        return NULL;
    h2->conn = conn;
    h2->server = conn->server;
    h2->refs = 1; /* the connection's */
    h2->task.run = on_conn_task;
    casgi__list_init(&h2->task.node);
    casgi__list_init(&h2->streams);
    h2->reset_window_start = uv_now(conn->server->loop);
    h2->peer_initial_window = 65535;
    if (session_new(h2) != 0 || submit_settings(h2) != 0) {
        if (h2->session)
            nghttp2_session_del(h2->session);
        free(h2);
        return NULL;
    }
    return h2;
}

static void attach(casgi__conn_t *conn, h2_t *h2)
{
    casgi__conn_set_proto(conn, &proto, h2);
    casgi__conn_set_deadline(conn, conn->server->cfg.timeout_keep_alive);
    if (casgi__server_stopping(conn->server))
        on_shutdown(conn);
    casgi__conn_read_start(conn);
    run(h2);
}

int casgi__http2_attach(casgi__conn_t *conn)
{
    h2_t *h2 = h2_new(conn);
    if (h2 == NULL) {
        CASGI_LOG(&conn->server->log, CASGI_LOG_ERROR, "out of memory for an HTTP/2 session");
        return CASGI_ENOMEM;
    }
    attach(conn, h2);
    return 0;
}

int casgi__http2_settings_valid(const uint8_t *payload, size_t len)
{
    if (len % 6 != 0)
        return 0;
    for (const uint8_t *e = payload; e < payload + len; e += 6) {
        unsigned id = (unsigned)e[0] << 8 | e[1];
        uint32_t v = (uint32_t)e[2] << 24 | (uint32_t)e[3] << 16 | (uint32_t)e[4] << 8 | e[5];
        /* RFC 9113 6.5.2's ranges */
        if ((id == NGHTTP2_SETTINGS_ENABLE_PUSH && v > 1) ||
            (id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE && v > 0x7fffffff) ||
            (id == NGHTTP2_SETTINGS_MAX_FRAME_SIZE && (v < 16384 || v > 16777215)) ||
            (id == NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL && v > 1))
            return 0;
    }
    return 1;
}

int casgi__http2_upgrade(casgi__conn_t *conn, const casgi_scope_t *scope, const uint8_t *settings,
                         size_t settings_len, casgi_bytes_t body)
{
    h2_t *h2 = h2_new(conn);
    if (h2 == NULL)
        return CASGI_ENOMEM;
    stream_t *s = stream_new(h2, 1);
    if (s == NULL) {
        h2_unref(h2);
        return CASGI_ENOMEM;
    }
    int is_head = CASGI_NAME_IS(scope->method, "head");
    if (nghttp2_session_upgrade2(h2->session, settings, settings_len, is_head, s) != 0) {
        stream_unref(s);
        h2_unref(h2);
        return CASGI_EHEADER;
    }
    h2->peer_initial_window = (int32_t)nghttp2_session_get_remote_settings(
        h2->session, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
    /* stream 1 is the HTTP/1.1 request: its head and body, already complete */
    size_t off;
    int err = head_append(s, (const uint8_t *)scope->method.base, scope->method.len, &off);
    take_pseudo(&s->method, off, scope->method.len);
    /* the request target as sent: raw path (without root_path) and query */
    size_t root_len = scope->root_path.len;
    casgi_bytes_t raw = {scope->raw_path.base + root_len, scope->raw_path.len - root_len};
    err |= head_append(s, (const uint8_t *)raw.base, raw.len, &off);
    size_t path_len = raw.len;
    if (scope->query_string.len) {
        size_t qoff;
        err |= head_append(s, (const uint8_t *)"?", 1, &qoff);
        err |= head_append(s, (const uint8_t *)scope->query_string.base, scope->query_string.len,
                           &qoff);
        path_len += 1 + scope->query_string.len;
    }
    take_pseudo(&s->path, off, path_len);
    for (size_t i = 0; i < scope->num_headers && !err; i++) {
        casgi_bytes_t name = scope->headers[i].name;
        if (connection_specific(name) || CASGI_NAME_IS(name, "http2-settings"))
            continue;
        casgi_bytes_t value = scope->headers[i].value;
        err |= add_field(s, name.base, name.len, value.base, value.len) == NULL;
    }
    err |= casgi__buf_append(&s->body, body.base, body.len);
    if (err) {
        stream_unref(s);
        h2_unref(h2);
        return CASGI_ENOMEM;
    }
    s->headers_done = 1;
    s->end_stream = 1;
    s->dispatch = 1;
    wake_stream(s);
    attach(conn, h2);
    return 0;
}
