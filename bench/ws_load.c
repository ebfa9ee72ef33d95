/*
 * ws_load: a WebSocket echo load client (libuv, and nothing else but libcrypto for the handshake's
 * SHA-1), for bench/compare.sh. It speaks RFC 6455 with the server's own framing helpers
 * (src/ws_frame.c): it frames and masks its messages 8 bytes a word (frame_out), parses the
 * server's frames as they arrive without copying or allocating (ws_input), answers pings and does
 * the closing handshake, and fails a connection on anything a server must not send.
 *
 *   ws_load -c CONNS -s MSG_SIZE {-d SECONDS | -m MESSAGES} [-u ws://127.0.0.1:PORT/path]
 *           [-n IN_FLIGHT]
 *
 * Opens CONNS connections (the HTTP/1.1 upgrade by hand: GET with Upgrade, Sec-WebSocket-Key,
 * Sec-WebSocket-Version 13; the answer must be 101 with the right Sec-WebSocket-Accept). Once
 * every connection is open (or has failed), each keeps IN_FLIGHT (default 1) binary messages of
 * MSG_SIZE bytes outstanding: it sends, waits for the echo, checks it (length, kind, content,
 * order), records the round trip (uv_hrtime, from queueing the message to having its echo whole)
 * and sends the next. After SECONDS it stops sending, waits for the echoes still in flight, sends
 * a close frame (1000), waits for the server's close frame and then for the server to close the
 * TCP connection. With -m the run is MESSAGES echoes in all instead (bench/ws_perreq.sh counts the
 * server's cost per message, which needs the same messages every time): a connection closes as
 * soon as its last echo came and no message is left to send. It prints:
 *
 *   ws_load: ws://127.0.0.1:8000/, 64 connections x 1 in flight, 64-byte binary messages, 5 s
 *   connections: 64 opened, 64 closed cleanly, 0 failed
 *   messages: 1234567 echoed in 5.000 s, 246913.4 msg/s
 *   latency: mean 0.259 ms, p50 0.251 ms, p99 0.502 ms, max 3.120 ms
 *   errors: 0
 *
 * Only echoes that arrive within the SECONDS count (with -m: all of them). Latencies go into a
 * log-linear histogram (64 steps per power of two, so a percentile is within 1.6 % of the true
 * value; the mean and max are exact). Exits 0 only if every connection opened, echoed correctly and
 * closed cleanly. One thread, one loop: run it pinned to its own core (taskset) so it measures the
 * server.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <uv.h>

#include "ws_frame.h"

#define READ_BUF_SIZE (256 * 1024)
#define HANDSHAKE_MAX 8192
#define OPEN_TIMEOUT_MS 30000  /* for every connection to finish its handshake */
#define CLOSE_TIMEOUT_MS 10000 /* after the run, for the echoes in flight and the closes */
#define MAX_ERROR_LINES 10     /* errors printed one by one; the rest are only counted */

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ---- latency histogram (nanoseconds, log-linear) ------------------------------------------ */

#define HIST_SUB_BITS 6
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_LINEAR (2u * HIST_SUB) /* values below are exact */
#define HIST_BUCKETS (HIST_LINEAR + (64 - HIST_SUB_BITS - 1) * HIST_SUB)

static unsigned hist_bucket(uint64_t v)
{
    unsigned e;

    if (v < HIST_LINEAR)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v); /* >= HIST_SUB_BITS + 1 */
    return HIST_LINEAR + (e - HIST_SUB_BITS - 1) * HIST_SUB +
           (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* The middle of bucket b's range of values. */
static double hist_value(unsigned b)
{
    unsigned e, sub;
    uint64_t lo, width;

    if (b < HIST_LINEAR)
        return (double)b;
    e = (b - HIST_LINEAR) / HIST_SUB + HIST_SUB_BITS + 1;
    sub = (b - HIST_LINEAR) % HIST_SUB;
    width = (uint64_t)1 << (e - HIST_SUB_BITS);
    lo = ((uint64_t)1 << e) + (uint64_t)sub * width;
    return (double)lo + (double)(width - 1) / 2.0;
}

/* ---- state -------------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

typedef enum {
    ST_CONNECTING,
    ST_HANDSHAKE, /* request sent, reading the 101 */
    ST_OPEN,
    ST_CLOSING, /* our close frame queued; waiting for the server's, then for its FIN */
    ST_DONE,    /* uv_close called */
} state_t;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    unsigned id;
    state_t state;
    int failed;
    int was_open;
    char accept[32]; /* the Sec-WebSocket-Accept we expect */
    char hs[HANDSHAKE_MAX];
    size_t hs_len;
    buf_t out;     /* whole frames not yet written */
    buf_t writing; /* what the pending uv_write holds */
    int write_pending;
    uint64_t *sent_at; /* ring of IN_FLIGHT send times; echoes come back in order */
    unsigned ring_head, in_flight;
    uint64_t seq_sent, seq_recv;
    /* the server's frames (ws_input) */
    unsigned char hdr[CASGI__WS_MAX_HEADER]; /* the start of a header a read cut short */
    unsigned char hdr_len;
    unsigned char in_frame;  /* a header was read; frame_left payload bytes still to come */
    unsigned char frame_op;  /* the current frame's opcode */
    unsigned char frame_fin; /* ... and its FIN bit */
    uint64_t frame_left;
    unsigned char in_msg;      /* a data message started and its last frame has not ended */
    unsigned char msg_op;      /* its first frame's opcode */
    unsigned char msg_differs; /* a payload byte differed from what was sent */
    uint64_t msg_len;          /* its payload bytes so far */
    unsigned char ctl[125];    /* the current control frame's payload */
    unsigned ctl_len;
    int close_sent, close_received;
} conn_t;

static struct {
    /* options */
    unsigned conns, in_flight;
    size_t msg_size;
    double seconds;
    uint64_t max_messages; /* -m; 0: run for `seconds` */
    char url[1024], host[256], port[16], path[768], host_header[300];

    uv_loop_t *loop;
    struct sockaddr_storage addr;
    conn_t *c;
    uint8_t *payload;
    uint64_t prng;
    uv_timer_t timer;
    int timer_closed;

    unsigned opened, failed, settled, closed_clean, done;
    int running, stopping;
    uint64_t t_start, t_stop;
    uint64_t sent, messages, lat_sum, lat_max;
    uint64_t *hist;
    unsigned error_lines;
    uint64_t errors;
} g;

static char read_buf[READ_BUF_SIZE];

static uint64_t prng_next(void)
{
    /* xorshift64*: plenty for masking keys and Sec-WebSocket-Key (RFC 6455 wants them
     * unpredictable to intermediaries, not cryptographic for a benchmark on loopback). */
    g.prng ^= g.prng >> 12;
    g.prng ^= g.prng << 25;
    g.prng ^= g.prng >> 27;
    return g.prng * 2685821657736338717ull;
}

static int buf_append(buf_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;
        while (cap < b->len + len)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    if (data != NULL) /* NULL: room only, the caller fills it */
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

static void on_closed(uv_handle_t *h);
static void maybe_start(void);
static void stop_timer_if_done(void);

static void conn_close(conn_t *c)
{
    if (c->state == ST_DONE)
        return;
    c->state = ST_DONE;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Reports the connection's error (the first only) and closes it. Returns -1. */
static int conn_fail(conn_t *c, const char *fmt, ...)
{
    va_list ap;

    if (c->failed || c->state == ST_DONE)
        return -1;
    c->failed = 1;
    g.errors++;
    if (g.error_lines++ < MAX_ERROR_LINES) {
        fprintf(stderr, "ws_load: connection %u: ", c->id);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    } else if (g.error_lines == MAX_ERROR_LINES + 1) {
        fprintf(stderr, "ws_load: (further errors are only counted)\n");
    }
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
        g.failed++;
        g.settled++;
        conn_close(c);
        maybe_start();
        return -1;
    }
    conn_close(c);
    return -1;
}

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;

    if (c->was_open && !c->failed)
        g.closed_clean++;
    g.done++;
    stop_timer_if_done();
}

/* ---- writing ------------------------------------------------------------------------------ */

static void write_out(conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;

    c->write_pending = 0;
    c->writing.len = 0;
    if (c->state == ST_DONE)
        return;
    if (status < 0) {
        conn_fail(c, "write: %s", uv_strerror(status));
        return;
    }
    write_out(c);
}

/* Writes what is in c->out: uv_try_write first, uv_write for what the socket did not take. */
static void write_out(conn_t *c)
{
    uv_buf_t b;
    buf_t tmp;
    int n;

    if (c->write_pending || c->out.len == 0 || c->state == ST_DONE)
        return;
    b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        conn_fail(c, "write: %s", uv_strerror(n));
        return;
    }
    if ((size_t)n == c->out.len) {
        c->out.len = 0;
        return;
    }
    /* The rest goes out through uv_write, from the other buffer, while c->out fills again. */
    tmp = c->writing;
    c->writing = c->out;
    c->out = tmp;
    c->out.len = 0;
    b = uv_buf_init(c->writing.data + n, (unsigned)(c->writing.len - (size_t)n));
    c->write_pending = 1;
    n = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (n < 0) {
        c->write_pending = 0;
        conn_fail(c, "write: %s", uv_strerror(n));
    }
}

/* ---- sending ------------------------------------------------------------------------------ */

/* Appends one whole masked frame (first byte FIRST: FIN and opcode) carrying DATA to c->out. A
 * client masks every frame (RFC 6455 5.3); masking is unmasking, the same XOR, 8 bytes at a time
 * (src/ws_frame.c), where a byte-by-byte loop made the client, not the server, the limit at 4 KiB.
 * Only whole frames ever go into c->out, so messages, pongs and the close cannot interleave. */
static int frame_out(conn_t *c, unsigned first, const uint8_t *data, size_t len)
{
    uint8_t head[CASGI__WS_MAX_HEADER];
    size_t hlen;
    uint64_t r = prng_next();

    /* the server's header writer, with the MASK bit a client must set */
    hlen = casgi__ws_frame_header(head, first, len);
    head[1] |= 0x80;
    memcpy(head + hlen, &r, 4); /* the masking key */
    hlen += 4;
    if (buf_append(&c->out, head, hlen) != 0 || buf_append(&c->out, NULL, len) != 0)
        return -1;
    casgi__ws_frame_unmask((uint8_t *)c->out.data + c->out.len - len, data, len, head + hlen - 4,
                           0);
    return 0;
}

/* Queues a close frame with CODE (none when CODE is 0) and writes it out. */
static int send_close(conn_t *c, unsigned code)
{
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};

    c->close_sent = 1;
    if (frame_out(c, CASGI__WS_FIN | CASGI__WS_OP_CLOSE, payload, code ? 2 : 0) != 0) {
        conn_fail(c, "out of memory");
        return -1;
    }
    write_out(c);
    return 0;
}

static void begin_close(conn_t *c)
{
    c->state = ST_CLOSING;
    send_close(c, 1000);
}

/* Queues the next message; its first 8 bytes carry the connection's sequence number. */
static int send_one(conn_t *c)
{
    unsigned slot = (c->ring_head + c->in_flight) % g.in_flight;

    if (g.msg_size >= sizeof(uint64_t))
        memcpy(g.payload, &c->seq_sent, sizeof(uint64_t));
    if (frame_out(c, CASGI__WS_FIN | CASGI__WS_OP_BINARY, g.payload, g.msg_size) != 0) {
        conn_fail(c, "out of memory");
        return -1;
    }
    c->seq_sent++;
    g.sent++;
    c->sent_at[slot] = uv_hrtime();
    c->in_flight++;
    return 0;
}

static void on_run_end(uv_timer_t *t);

/* With -m: every message of the run has been sent. */
static int all_sent(void)
{
    return g.max_messages != 0 && g.sent >= g.max_messages;
}

/* ---- the server's frames ------------------------------------------------------------------ */

/*
 * The server's frames are parsed as the bytes arrive, straight from the read buffer: a header
 * cut by the end of a read waits in c->hdr, a control frame's payload (at most 125 bytes) in
 * c->ctl, and a data frame's payload is compared with what was sent piece by piece, at its offset
 * in the message, so a message is never copied or assembled, and nothing is allocated per frame.
 */

/* 1 when P[0, N), at offset POS of the message being received, is what the next echo must hold
 * there: the sequence number in the first 8 bytes (when the messages are that long), then the
 * shared payload. Bytes beyond the message size are left to the length check at its end. */
static int echo_matches(const conn_t *c, uint64_t pos, const uint8_t *p, size_t n)
{
    size_t off = g.msg_size >= sizeof(uint64_t) ? sizeof(uint64_t) : 0, k;

    if (pos >= g.msg_size)
        return 1;
    if (n > g.msg_size - pos)
        n = (size_t)(g.msg_size - pos);
    if (pos < off) {
        k = n < off - pos ? n : (size_t)(off - pos);
        if (memcmp(p, (const uint8_t *)&c->seq_recv + pos, k) != 0)
            return 0;
        p += k;
        pos += k;
        n -= k;
    }
    return n == 0 || memcmp(p, g.payload + pos, n) == 0;
}

/* A whole message came (its last frame's payload included): check it as the echo of the oldest
 * message in flight, record its round trip and send the next. */
static void on_echo(conn_t *c)
{
    uint64_t now = uv_hrtime(), lat;

    if (c->in_flight == 0) {
        conn_fail(c, "a message nobody sent (%" PRIu64 " bytes, opcode %u)", c->msg_len,
                  (unsigned)c->msg_op);
        return;
    }
    if (c->msg_op != CASGI__WS_OP_BINARY || c->msg_len != g.msg_size) {
        conn_fail(
            c, "echo of message %" PRIu64 ": opcode %u, %" PRIu64 " bytes (sent binary, %zu bytes)",
            c->seq_recv, (unsigned)c->msg_op, c->msg_len, g.msg_size);
        return;
    }
    if (c->msg_differs) {
        conn_fail(c, "echo of message %" PRIu64 " differs from what was sent", c->seq_recv);
        return;
    }
    lat = now - c->sent_at[c->ring_head];
    c->ring_head = (c->ring_head + 1) % g.in_flight;
    c->in_flight--;
    c->seq_recv++;
    if (g.running && !g.stopping) {
        g.messages++;
        g.lat_sum += lat;
        if (lat > g.lat_max)
            g.lat_max = lat;
        g.hist[hist_bucket(lat)]++;
        if (!all_sent()) {
            send_one(c);
            return;
        }
        if (g.messages == g.max_messages)
            on_run_end(&g.timer);
    }
    if (c->in_flight == 0 && c->state == ST_OPEN)
        begin_close(c);
}

/* The server's close frame, its payload in c->ctl. */
static void on_close_frame(conn_t *c)
{
    unsigned code = 1005; /* "no status", as RFC 6455 7.1.5 names an empty close */

    if (c->ctl_len == 1) {
        conn_fail(c, "protocol error: a close frame with a 1-byte payload");
        return;
    }
    if (c->ctl_len >= 2) {
        code = (unsigned)c->ctl[0] << 8 | c->ctl[1];
        if (!casgi__ws_frame_valid_close_code(code)) {
            conn_fail(c, "protocol error: a close frame with code %u", code);
            return;
        }
        if (!casgi__ws_frame_valid_utf8(c->ctl + 2, c->ctl_len - 2u)) {
            conn_fail(c, "protocol error: a close reason that is not UTF-8");
            return;
        }
    }
    c->close_received = 1;
    if (c->state != ST_CLOSING) {
        /* Not an answer to ours: the server ended the run early (1012 when it shuts down). The
         * echoed close still goes out; then the error closes the connection. */
        if (!c->close_sent && send_close(c, code == 1005 ? 0 : code) != 0)
            return;
        conn_fail(c, "the server closed the WebSocket (code %u)", code);
    } else if (code != 1000) {
        conn_fail(c, "the server answered our close with code %u", code);
    }
    /* else the clean end, once the server closes the TCP connection (on_read) */
}

/* A frame's payload is complete. */
static void on_frame_end(conn_t *c)
{
    switch (c->frame_op) {
    case CASGI__WS_OP_PING:
        /* the answer, unless we sent our close: nothing may follow it (RFC 6455 5.5.1) */
        if (!c->close_sent &&
            frame_out(c, CASGI__WS_FIN | CASGI__WS_OP_PONG, c->ctl, c->ctl_len) != 0)
            conn_fail(c, "out of memory");
        break;
    case CASGI__WS_OP_PONG: break; /* unsolicited: allowed and ignored */
    case CASGI__WS_OP_CLOSE: on_close_frame(c); break;
    default: /* a data frame */
        if (c->frame_fin) {
            c->in_msg = 0;
            on_echo(c);
        }
        break;
    }
}

/* The header F of the server's next frame: anything RFC 6455 forbids a server to send (with no
 * extension negotiated) fails the connection. Returns 0, or -1 after conn_fail. */
static int on_frame_start(conn_t *c, const casgi__ws_frame_t *f)
{
    unsigned op = f->opcode;

    if (c->close_received)
        return conn_fail(c, "protocol error: a frame (opcode %u) after the server's close", op);
    if (f->flags & (CASGI__WS_RSV1 | CASGI__WS_RSV2 | CASGI__WS_RSV3))
        return conn_fail(c, "protocol error: a frame with reserved bits 0x%02x", f->flags & 0x70u);
    if (f->masked)
        return conn_fail(c, "protocol error: a masked frame from the server");
    /* the shortest length encoding is a MUST (RFC 6455 5.2) */
    if ((f->header_len == 4 && f->len < 126) || (f->header_len == 10 && f->len <= 0xffff))
        return conn_fail(c, "protocol error: a %" PRIu64 "-byte payload with a %u-byte header",
                         f->len, (unsigned)f->header_len);
    if (op >= CASGI__WS_OP_CLOSE) {
        if (op > CASGI__WS_OP_PONG)
            return conn_fail(c, "protocol error: unknown opcode %u", op);
        if (!(f->flags & CASGI__WS_FIN))
            return conn_fail(c, "protocol error: a fragmented control frame (opcode %u)", op);
        if (f->len > sizeof(c->ctl))
            return conn_fail(c, "protocol error: a %" PRIu64 "-byte control frame (opcode %u)",
                             f->len, op);
        c->ctl_len = 0;
    } else if (op == CASGI__WS_OP_CONTINUATION) {
        if (!c->in_msg)
            return conn_fail(c, "protocol error: a continuation frame outside a message");
    } else if (op == CASGI__WS_OP_TEXT || op == CASGI__WS_OP_BINARY) {
        if (c->in_msg)
            return conn_fail(c, "protocol error: a new message before the last one ended");
        c->in_msg = 1;
        c->msg_op = (unsigned char)op;
        c->msg_len = 0;
        c->msg_differs = 0;
    } else {
        return conn_fail(c, "protocol error: unknown opcode %u", op);
    }
    c->frame_op = (unsigned char)op;
    c->frame_fin = (f->flags & CASGI__WS_FIN) != 0;
    c->frame_left = f->len;
    return 0;
}

/* Payload bytes P[0, N) of the current frame, N <= c->frame_left. */
static void on_payload(conn_t *c, const uint8_t *p, size_t n)
{
    if (c->frame_op >= CASGI__WS_OP_CLOSE) {
        memcpy(c->ctl + c->ctl_len, p, n); /* fits: checked against sizeof(c->ctl) */
        c->ctl_len += (unsigned)n;
        return;
    }
    if (!c->msg_differs && !echo_matches(c, c->msg_len, p, n))
        c->msg_differs = 1;
    c->msg_len += n;
}

/* Feeds P[0, N), the next bytes from the server, through the frame parser. Stops early when the
 * connection failed. */
static void ws_input(conn_t *c, const uint8_t *p, size_t n)
{
    casgi__ws_frame_t f;
    size_t take;
    int hlen;

    while (n > 0 && c->state != ST_DONE) {
        if (!c->in_frame) {
            /* a header: from the read itself, or completed in c->hdr when a read cut it */
            if (c->hdr_len == 0) {
                hlen = casgi__ws_frame_parse(p, n, &f);
                if (hlen == 0) { /* n < CASGI__WS_MAX_HEADER */
                    memcpy(c->hdr, p, n);
                    c->hdr_len = (unsigned char)n;
                    return;
                }
                take = hlen > 0 ? (size_t)hlen : 0;
            } else {
                take = sizeof(c->hdr) - c->hdr_len < n ? sizeof(c->hdr) - c->hdr_len : n;
                memcpy(c->hdr + c->hdr_len, p, take);
                hlen = casgi__ws_frame_parse(c->hdr, c->hdr_len + take, &f);
                if (hlen == 0) {
                    c->hdr_len = (unsigned char)(c->hdr_len + take);
                    return; /* take == n */
                }
                /* of the bytes copied, only the header's own are consumed */
                take = hlen > 0 ? (size_t)hlen - c->hdr_len : 0;
                c->hdr_len = 0;
            }
            if (hlen < 0) {
                conn_fail(c, "protocol error: a 64-bit payload length with its top bit set");
                return;
            }
            p += take;
            n -= take;
            if (on_frame_start(c, &f) != 0)
                return;
            c->in_frame = 1;
        } else {
            take = c->frame_left < n ? (size_t)c->frame_left : n;
            on_payload(c, p, take);
            p += take;
            n -= take;
            c->frame_left -= take;
        }
        if (c->frame_left == 0) { /* also right after the header of an empty frame */
            c->in_frame = 0;
            on_frame_end(c);
        }
    }
}

/* ---- the run ------------------------------------------------------------------------------ */

static void stop_timer_if_done(void)
{
    if (g.done == g.conns && g.running && !g.stopping) { /* every connection failed early */
        g.stopping = 1;
        g.t_stop = uv_hrtime();
    }
    if (g.done == g.conns && !g.timer_closed) {
        g.timer_closed = 1;
        uv_close((uv_handle_t *)&g.timer, NULL);
    }
}

static void on_close_timeout(uv_timer_t *t)
{
    unsigned i;

    (void)t;
    for (i = 0; i < g.conns; i++) {
        conn_t *c = &g.c[i];
        if (c->state == ST_DONE)
            continue;
        if (c->in_flight)
            conn_fail(c, "%u echoes still missing %d s after the end", c->in_flight,
                      CLOSE_TIMEOUT_MS / 1000);
        else
            conn_fail(c, "no clean close within %d s", CLOSE_TIMEOUT_MS / 1000);
    }
}

static void on_run_end(uv_timer_t *t)
{
    unsigned i;

    g.stopping = 1;
    g.t_stop = uv_hrtime();
    for (i = 0; i < g.conns; i++) {
        conn_t *c = &g.c[i];
        if (c->state == ST_OPEN && c->in_flight == 0)
            begin_close(c);
    }
    uv_timer_start(t, on_close_timeout, CLOSE_TIMEOUT_MS, 0);
}

static void on_open_timeout(uv_timer_t *t)
{
    unsigned i;

    (void)t;
    for (i = 0; i < g.conns; i++) {
        conn_t *c = &g.c[i];
        if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
            conn_fail(c, "not open after %d s", OPEN_TIMEOUT_MS / 1000);
    }
}

/* Once every connection is open or has failed: start the clock and the messages. */
static void maybe_start(void)
{
    unsigned i, j;

    if (g.running || g.settled < g.conns)
        return;
    g.running = 1;
    uv_timer_stop(&g.timer);
    if (g.opened == 0) {
        g.stopping = 1;
        stop_timer_if_done();
        return;
    }
    g.t_start = uv_hrtime();
    if (g.max_messages == 0)
        uv_timer_start(&g.timer, on_run_end, (uint64_t)(g.seconds * 1000.0 + 0.5), 0);
    for (i = 0; i < g.conns; i++) {
        conn_t *c = &g.c[i];
        if (c->state != ST_OPEN)
            continue;
        for (j = 0; j < g.in_flight && c->state == ST_OPEN && !all_sent(); j++)
            send_one(c);
        if (c->state == ST_OPEN && c->in_flight == 0)
            begin_close(c); /* more connections than messages */
        else
            write_out(c);
    }
}

/* ---- the handshake ------------------------------------------------------------------------ */

/* The value of header NAME in the response head (NUL-terminated, CRLF lines), or NULL. */
static const char *header(const char *head, const char *name, size_t *len)
{
    size_t n = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p != NULL && p[2] != '\r') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (end == NULL)
            return NULL;
        if ((size_t)(end - line) > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            *len = (size_t)(end - v);
            while (*len > 0 && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
                (*len)--;
            return v;
        }
        p = end;
    }
    return NULL;
}

static int has_token(const char *v, size_t len, const char *token)
{
    size_t n = strlen(token), i;

    for (i = 0; i + n <= len; i++)
        if (strncasecmp(v + i, token, n) == 0 && (i == 0 || v[i - 1] == ' ' || v[i - 1] == ',') &&
            (i + n == len || v[i + n] == ' ' || v[i + n] == ','))
            return 1;
    return 0;
}

static void on_handshake_read(conn_t *c, const char *data, size_t len)
{
    char *end;
    const char *v;
    size_t vlen, head_len;

    if (len > sizeof(c->hs) - 1 - c->hs_len) {
        conn_fail(c, "handshake response longer than %d bytes", HANDSHAKE_MAX - 1);
        return;
    }
    memcpy(c->hs + c->hs_len, data, len);
    c->hs_len += len;
    c->hs[c->hs_len] = '\0';
    end = strstr(c->hs, "\r\n\r\n");
    if (end == NULL)
        return;
    head_len = (size_t)(end - c->hs) + 4;
    end[2] = '\0'; /* keep the last header's CRLF for header() */
    if (strncmp(c->hs, "HTTP/1.1 101 ", 13) != 0 && strcmp(c->hs, "HTTP/1.1 101\r\n") != 0) {
        char *eol = strstr(c->hs, "\r\n");
        if (eol)
            *eol = '\0';
        conn_fail(c, "handshake answered \"%.100s\", not 101", c->hs);
        return;
    }
    v = header(c->hs, "Upgrade", &vlen);
    if (v == NULL || !has_token(v, vlen, "websocket")) {
        conn_fail(c, "101 without Upgrade: websocket");
        return;
    }
    v = header(c->hs, "Connection", &vlen);
    if (v == NULL || !has_token(v, vlen, "upgrade")) {
        conn_fail(c, "101 without Connection: upgrade");
        return;
    }
    v = header(c->hs, "Sec-WebSocket-Accept", &vlen);
    if (v == NULL || vlen != strlen(c->accept) || memcmp(v, c->accept, vlen) != 0) {
        conn_fail(c, "wrong or missing Sec-WebSocket-Accept");
        return;
    }
    if (header(c->hs, "Sec-WebSocket-Extensions", &vlen) != NULL) {
        conn_fail(c, "the server chose an extension we did not offer");
        return;
    }
    c->state = ST_OPEN;
    c->was_open = 1;
    g.opened++;
    g.settled++;
    /* Anything after the head is already WebSocket. */
    if (c->hs_len > head_len)
        ws_input(c, (const uint8_t *)c->hs + head_len, c->hs_len - head_len);
    maybe_start();
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    /* One buffer for everyone: libuv calls on_read right after on_alloc, and on_read consumes
     * the whole read before it returns. */
    *buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = s->data;

    if (c->state == ST_DONE || nread == 0)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            conn_fail(c, "read: %s", uv_strerror((int)nread));
        else if (c->state == ST_CLOSING && c->close_received)
            conn_close(c); /* the clean end: close frames both ways, then the server's FIN */
        else if (c->state != ST_CLOSING)
            conn_fail(c, "the server closed the connection%s",
                      c->state == ST_HANDSHAKE ? " during the handshake" : "");
        else
            conn_fail(c, "the server closed the connection without a close frame");
        return;
    }
    if (c->state == ST_HANDSHAKE)
        on_handshake_read(c, buf->base, (size_t)nread);
    else
        ws_input(c, (const uint8_t *)buf->base, (size_t)nread);
    write_out(c); /* pongs, the reply to a close, the next messages */
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = req->data;
    uint8_t raw[16], key_in[24 + sizeof(ws_guid)], sha[EVP_MAX_MD_SIZE];
    char key[32], req_text[1024];
    unsigned sha_len = 0;
    uint64_t r;
    int n;

    if (c->state == ST_DONE)
        return;
    if (status < 0) {
        conn_fail(c, "connect: %s", uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    r = prng_next();
    memcpy(raw, &r, 8);
    r = prng_next();
    memcpy(raw + 8, &r, 8);
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw)); /* 24 characters and a NUL */
    memcpy(key_in, key, 24);
    memcpy(key_in + 24, ws_guid, sizeof(ws_guid) - 1);
    if (!EVP_Digest(key_in, 24 + sizeof(ws_guid) - 1, sha, &sha_len, EVP_sha1(), NULL)) {
        conn_fail(c, "SHA-1 failed");
        return;
    }
    EVP_EncodeBlock((unsigned char *)c->accept, sha, (int)sha_len);
    n = snprintf(req_text, sizeof(req_text),
                 "GET %s HTTP/1.1\r\n"
                 "Host: %s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "\r\n",
                 g.path, g.host_header, key);
    if (n < 0 || (size_t)n >= sizeof(req_text) || buf_append(&c->out, req_text, (size_t)n) != 0) {
        conn_fail(c, "request too long");
        return;
    }
    c->state = ST_HANDSHAKE;
    n = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (n < 0) {
        conn_fail(c, "uv_read_start: %s", uv_strerror(n));
        return;
    }
    write_out(c);
}

/* ---- set-up and report -------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: ws_load -c CONNS -s MSG_SIZE {-d SECONDS | -m MESSAGES} "
               "[-u ws://127.0.0.1:PORT/path] [-n IN_FLIGHT]\n"
               "  -c  connections [64]\n"
               "  -s  message size in bytes [64]\n"
               "  -d  seconds of load after every connection is open [5]\n"
               "  -m  messages echoed in all, instead of a duration\n"
               "  -u  the server [ws://127.0.0.1:8000/]\n"
               "  -n  messages in flight per connection [1]\n");
}

static int parse_url(const char *url)
{
    const char *p, *host_end, *path;
    size_t len;

    if (strlen(url) >= sizeof(g.url))
        return -1;
    strcpy(g.url, url);
    if (strncmp(url, "ws://", 5) != 0)
        return -1;
    p = url + 5;
    path = strchr(p, '/');
    if (path == NULL)
        path = p + strlen(p);
    len = (size_t)(path - p);
    if (len == 0 || len >= sizeof(g.host_header))
        return -1;
    memcpy(g.host_header, p, len);
    g.host_header[len] = '\0';
    if (*p == '[') { /* [v6]:port */
        host_end = memchr(p, ']', len);
        if (host_end == NULL)
            return -1;
        memcpy(g.host, p + 1, (size_t)(host_end - p - 1));
        g.host[host_end - p - 1] = '\0';
        host_end++;
    } else {
        host_end = memchr(p, ':', len);
        if (host_end == NULL)
            host_end = path;
        if ((size_t)(host_end - p) >= sizeof(g.host))
            return -1;
        memcpy(g.host, p, (size_t)(host_end - p));
        g.host[host_end - p] = '\0';
    }
    if (host_end < path && *host_end == ':') {
        if ((size_t)(path - host_end - 1) >= sizeof(g.port) || path == host_end + 1)
            return -1;
        memcpy(g.port, host_end + 1, (size_t)(path - host_end - 1));
        g.port[path - host_end - 1] = '\0';
    } else if (host_end == path) {
        strcpy(g.port, "80");
    } else {
        return -1;
    }
    snprintf(g.path, sizeof(g.path), "%s", *path ? path : "/");
    return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static double percentile(double q)
{
    uint64_t rank = (uint64_t)(q * (double)g.messages + 0.999999), seen = 0;
    unsigned b;

    if (rank < 1)
        rank = 1;
    for (b = 0; b < HIST_BUCKETS; b++) {
        seen += g.hist[b];
        if (seen >= rank) /* the bucket's middle, but never above the largest seen */
            return hist_value(b) < (double)g.lat_max ? hist_value(b) : (double)g.lat_max;
    }
    return (double)g.lat_max;
}

int main(int argc, char **argv)
{
    unsigned long v;
    double elapsed;
    struct addrinfo hints = {0}, *ai = NULL;
    struct rlimit rl;
    unsigned i;
    int opt, rv, ok;

    g.conns = 64;
    g.in_flight = 1;
    g.msg_size = 64;
    g.seconds = 5;
    parse_url("ws://127.0.0.1:8000/");
    while ((opt = getopt(argc, argv, "c:s:d:m:u:n:h")) != -1) {
        char *end;
        switch (opt) {
        case 'c':
            if (parse_uint(optarg, 1000000, &v) || v == 0)
                goto bad;
            g.conns = (unsigned)v;
            break;
        case 's':
            if (parse_uint(optarg, 1ul << 30, &v))
                goto bad;
            g.msg_size = v;
            break;
        case 'n':
            if (parse_uint(optarg, 1000000, &v) || v == 0)
                goto bad;
            g.in_flight = (unsigned)v;
            break;
        case 'm':
            if (parse_uint(optarg, ULONG_MAX, &v) || v == 0)
                goto bad;
            g.max_messages = v;
            break;
        case 'd':
            g.seconds = strtod(optarg, &end);
            if (end == optarg || *end || !(g.seconds > 0) || g.seconds > 86400)
                goto bad;
            break;
        case 'u':
            if (parse_url(optarg) != 0) {
                fprintf(stderr, "ws_load: bad URL %s (ws://HOST[:PORT][/PATH])\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: goto bad;
        }
    }
    if (optind != argc)
        goto bad;

    /* Room for CONNS sockets. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)g.conns + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rv = getaddrinfo(g.host, g.port, &hints, &ai);
    if (rv != 0) {
        fprintf(stderr, "ws_load: %s:%s: %s\n", g.host, g.port, gai_strerror(rv));
        return 2;
    }
    memcpy(&g.addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);

    g.prng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ull;
    g.c = calloc(g.conns, sizeof(*g.c));
    g.payload = malloc(g.msg_size ? g.msg_size : 1);
    g.hist = calloc(HIST_BUCKETS, sizeof(*g.hist));
    if (g.c == NULL || g.payload == NULL || g.hist == NULL) {
        fprintf(stderr, "ws_load: out of memory\n");
        return 2;
    }
    for (i = 0; i < g.msg_size; i++)
        g.payload[i] = (uint8_t)(i * 31u + 7u);

    g.loop = uv_default_loop();
    uv_timer_init(g.loop, &g.timer);
    uv_timer_start(&g.timer, on_open_timeout, OPEN_TIMEOUT_MS, 0);
    for (i = 0; i < g.conns; i++) {
        conn_t *c = &g.c[i];
        c->id = i;
        c->sent_at = calloc(g.in_flight, sizeof(*c->sent_at));
        uv_tcp_init(g.loop, &c->tcp);
        c->tcp.data = c;
        c->connect_req.data = c;
        c->write_req.data = c;
        c->state = ST_CONNECTING;
        if (c->sent_at == NULL) {
            conn_fail(c, "out of memory");
            continue;
        }
        rv = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&g.addr, on_connect);
        if (rv < 0)
            conn_fail(c, "connect: %s", uv_strerror(rv));
    }
    uv_run(g.loop, UV_RUN_DEFAULT);

    elapsed = g.t_stop > g.t_start ? (double)(g.t_stop - g.t_start) / 1e9 : 0.0;
    printf("ws_load: %s, %u connections x %u in flight, %zu-byte binary messages, ", g.url, g.conns,
           g.in_flight, g.msg_size);
    if (g.max_messages)
        printf("%" PRIu64 " messages\n", g.max_messages);
    else
        printf("%g s\n", g.seconds);
    printf("connections: %u opened, %u closed cleanly, %u failed\n", g.opened, g.closed_clean,
           g.conns - g.closed_clean);
    printf("messages: %" PRIu64 " echoed in %.3f s, %.1f msg/s\n", g.messages, elapsed,
           elapsed > 0 ? (double)g.messages / elapsed : 0.0);
    if (g.messages)
        printf("latency: mean %.3f ms, p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
               (double)g.lat_sum / (double)g.messages / 1e6, percentile(0.50) / 1e6,
               percentile(0.99) / 1e6, (double)g.lat_max / 1e6);
    else
        printf("latency: none measured\n");
    printf("errors: %" PRIu64 "\n", g.errors);
    ok = g.errors == 0 && g.closed_clean == g.conns && g.messages > 0 &&
         (g.max_messages == 0 || g.messages == g.max_messages);

    for (i = 0; i < g.conns; i++) {
        free(g.c[i].out.data);
        free(g.c[i].writing.data);
        free(g.c[i].sent_at);
    }
    free(g.c);
    free(g.payload);
    free(g.hist);
    uv_loop_close(g.loop);
    return ok ? 0 : 1;

bad:
    usage(stderr);
    return 2;
}
