#include <stdlib.h>

#include "conn.h"

/* How long a lingering close waits for the client's FIN before closing anyway. */
#define LINGER_MS 2000
/* Bytes asked of the kernel per read. */
#define READ_SIZE 16384

static void on_handle_closed(uv_handle_t *handle);

int casgi__conn_new(casgi_server_t *server, int is_pipe, casgi__conn_t **out)
{
    casgi__conn_t *conn = casgi__pool_take(&server->conn_states, sizeof(*conn));
    if (conn == NULL)
        return CASGI_ENOMEM;
    memset(conn, 0, sizeof(*conn));
    conn->server = server;
    casgi__list_init(&conn->node);
    casgi__list_init(&conn->flush_node);
    int err = casgi__stream_init(server->loop, &conn->io, is_pipe);
    if (err) {
        casgi__pool_give(&server->conn_states, conn);
        return err;
    }
    conn->io.handle.data = conn;
    casgi__list_init(&conn->deadline_node);
    conn->scheme = "http";
    *out = conn;
    return 0;
}

static void on_discarded(uv_handle_t *handle)
{
    casgi__conn_t *conn = handle->data;
    casgi__pool_give(&conn->server->conn_states, conn);
}

void casgi__conn_discard(casgi__conn_t *conn)
{
    uv_close(&conn->io.handle, on_discarded);
}

void casgi__format_addr(const struct sockaddr_storage *ss, char *host, size_t size, int *port)
{
    host[0] = '\0';
    *port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        /* by hand: inet_ntop goes through snprintf, which cost a connection ~1,800 instructions */
        const unsigned char *a = (const unsigned char *)&sin->sin_addr.s_addr;
        char *p = host;
        CASGI_ASSERT(size >= INET_ADDRSTRLEN);
        for (int i = 0; i < 4; i++) {
            unsigned v = a[i];
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
            *p++ = i < 3 ? '.' : '\0';
        }
        *port = ntohs(sin->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(sin6, host, size);
        *port = ntohs(sin6->sin6_port);
    }
}

void casgi__conn_accepted(casgi__conn_t *conn, const char *unix_path, const char *local_host,
                          int local_port)
{
    if (unix_path != NULL) {
        /* ASGI's Unix form: server is [path, None], the client is unknown (None). */
        conn->local.host = unix_path;
        conn->local.port = -1;
        conn->client.host = NULL;
        conn->client.port = -1;
    } else {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
#ifndef __linux__
        uv_tcp_nodelay(&conn->io.tcp, 1); /* Linux: inherited from the listener (listener.c) */
#endif
        if (uv_tcp_getpeername(&conn->io.tcp, (struct sockaddr *)&ss, &len) == 0) {
            casgi__format_addr(&ss, conn->client_host, sizeof(conn->client_host),
                               &conn->client.port);
            conn->client.host = conn->client_host;
        }
        len = sizeof(ss);
        if (local_host != NULL) {
            /* copied, not pointed to: the listener may close before this connection does */
            size_t n = strlen(local_host) + 1;
            CASGI_ASSERT(n <= sizeof(conn->local_host));
            memcpy(conn->local_host, local_host, n);
            conn->local.port = local_port;
            conn->local.host = conn->local_host;
        } else if (uv_tcp_getsockname(&conn->io.tcp, (struct sockaddr *)&ss, &len) == 0) {
            casgi__format_addr(&ss, conn->local_host, sizeof(conn->local_host), &conn->local.port);
            conn->local.host = conn->local_host;
        }
    }
    casgi__server_conn_opened(conn->server, conn);
}

void casgi__conn_set_proto(casgi__conn_t *conn, const casgi__proto_t *proto, void *data)
{
    conn->proto = proto;
    conn->proto_data = data;
}

/* ---- reading ---------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    casgi__conn_t *conn = handle->data;
    casgi__buf_t *b = &conn->rbuf;
    int err = 0;
    if (b->base == NULL)
        err = casgi__buf_reserve_pooled(&conn->server->pool, b, READ_SIZE);
    else if (b->cap - b->len < READ_SIZE / 4)
        err = casgi__buf_reserve(b, READ_SIZE);
    if (err != 0) {
        buf->base = NULL;
        buf->len = 0; /* libuv reports UV_ENOBUFS to on_read */
        return;
    }
    buf->base = conn->rbuf.base + conn->rbuf.len;
    buf->len = conn->rbuf.cap - conn->rbuf.len;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    casgi__conn_t *conn = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (conn->lingering) {
            casgi__conn_close(conn);
            return;
        }
        if (conn->proto && conn->proto->on_read_error)
            conn->proto->on_read_error(conn, (int)nread);
        casgi__conn_close(conn);
        return;
    }
    if (conn->lingering) {
        casgi__buf_clear(&conn->rbuf); /* the response is out; what the client sends is dropped */
        return;
    }
    conn->rbuf.len += (size_t)nread;
    conn->proto->on_read(conn);
    if (!conn->closing && casgi__buf_size(&conn->rbuf) == 0)
        casgi__buf_release(&conn->server->pool, &conn->rbuf);
}

void casgi__conn_read_start(casgi__conn_t *conn)
{
    if (conn->reading || conn->closing)
        return;
    if (uv_read_start(&conn->io.stream, on_alloc, on_read) == 0)
        conn->reading = 1;
}

void casgi__conn_read_stop(casgi__conn_t *conn)
{
    if (!conn->reading)
        return;
    uv_read_stop(&conn->io.stream);
    conn->reading = 0;
}

/* ---- writing ---------------------------------------------------------------------------- */

static void start_linger(casgi__conn_t *conn);

/* Write and shutdown requests are allocated only when needed: most responses leave with one
 * uv_try_write(), and an idle connection should not carry 272 bytes of request structs. */
static void on_write(uv_write_t *req, int status)
{
    casgi__conn_t *conn = req->data;
    free(req);
    conn->writing = 0;
    casgi__buf_clear(&conn->inflight);
    if (conn->closing)
        return;
    casgi__buf_release(&conn->server->pool, &conn->inflight);
    if (status < 0) {
        if (conn->proto && conn->proto->on_read_error)
            conn->proto->on_read_error(conn, status);
        casgi__conn_close(conn);
        return;
    }
    if (casgi__buf_size(&conn->wbuf) > 0)
        casgi__conn_flush(conn);
    else if (conn->close_after_flush)
        start_linger(conn);
    if (!conn->closing && conn->proto && conn->proto->on_drain &&
        casgi__conn_buffered(conn) < conn->server->cfg.high_water_mark)
        conn->proto->on_drain(conn);
}

void casgi__conn_flush(casgi__conn_t *conn)
{
    if (conn->closing || conn->writing)
        return;
    size_t size = casgi__buf_size(&conn->wbuf);
    if (size == 0) {
        if (conn->close_after_flush && !conn->lingering)
            start_linger(conn);
        return;
    }
    uv_buf_t b = uv_buf_init(casgi__buf_data(&conn->wbuf), (unsigned)size);
    int n = uv_try_write(&conn->io.stream, &b, 1);
    if (n == (int)size) {
        casgi__buf_clear(&conn->wbuf);
        casgi__buf_release(&conn->server->pool, &conn->wbuf);
        if (conn->close_after_flush)
            start_linger(conn);
        else if (size >= conn->server->cfg.high_water_mark && conn->proto && conn->proto->on_drain)
            conn->proto->on_drain(conn); /* whoever waited for room is not waiting for a write */
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        if (conn->proto && conn->proto->on_read_error)
            conn->proto->on_read_error(conn, n);
        casgi__conn_close(conn);
        return;
    }
    if (n > 0)
        casgi__buf_consume(&conn->wbuf, (size_t)n);
    /* The kernel took what it could; hand the rest to uv_write and gather new output in the
     * other buffer meanwhile, so nothing is copied twice. */
    casgi__buf_t tmp = conn->inflight;
    conn->inflight = conn->wbuf;
    conn->wbuf = tmp;
    casgi__buf_clear(&conn->wbuf);
    b = uv_buf_init(casgi__buf_data(&conn->inflight), (unsigned)casgi__buf_size(&conn->inflight));
    uv_write_t *req = malloc(sizeof(*req));
    int err = req ? uv_write(req, &conn->io.stream, &b, 1, on_write) : CASGI_ENOMEM;
    if (err) {
        free(req);
        casgi__conn_close(conn);
        return;
    }
    req->data = conn;
    conn->writing = 1;
}

void casgi__conn_flush_later(casgi__conn_t *conn)
{
    if (conn->flush_queued || conn->closing)
        return;
    conn->flush_queued = 1;
    casgi__list_insert_tail(&conn->server->flushes, &conn->flush_node);
}

/* ---- deadlines -------------------------------------------------------------------------- */

static void on_deadline_timer(uv_timer_t *timer);

static void arm(casgi_server_t *server, uint64_t now, uint64_t due)
{
    server->deadline_due = due;
    uv_timer_start(&server->deadline_timer, on_deadline_timer, due > now ? due - now : 0, 0);
}

static casgi__deadlines_t *deadlines_for(casgi_server_t *server, uint64_t ms)
{
    for (unsigned i = 0; i < server->num_deadline_lists; i++)
        if (server->deadlines[i].ms == ms)
            return &server->deadlines[i];
    /* Six durations exist (keep-alive, request head, linger, websocket close wait, ping interval
     * and ping timeout), all fixed by the config; the table has room for them. */
    CASGI_ASSERT(server->num_deadline_lists < CASGI__DEADLINE_LISTS);
    if (server->num_deadline_lists == CASGI__DEADLINE_LISTS)
        return NULL;
    casgi__deadlines_t *d = &server->deadlines[server->num_deadline_lists++];
    d->ms = ms;
    casgi__list_init(&d->conns);
    return d;
}

void casgi__conn_set_deadline(casgi__conn_t *conn, uint64_t ms)
{
    casgi_server_t *server = conn->server;
    if (conn->closing)
        return;
    casgi__deadlines_t *d = deadlines_for(server, ms);
    if (d == NULL)
        return;
    uint64_t now = uv_now(server->loop);
    casgi__list_remove(&conn->deadline_node);
    casgi__list_insert_tail(&d->conns, &conn->deadline_node);
    conn->deadline = now + ms;
    if (server->deadline_due == 0 || server->deadline_due > conn->deadline)
        arm(server, now, conn->deadline);
}

void casgi__conn_clear_deadline(casgi__conn_t *conn)
{
    conn->deadline = 0;
    casgi__list_remove(&conn->deadline_node);
}

static void expire(casgi__conn_t *conn)
{
    casgi__conn_clear_deadline(conn);
    if (conn->lingering)
        casgi__conn_close(conn);
    else if (conn->proto && conn->proto->on_timeout)
        conn->proto->on_timeout(conn);
}

/* Fires every connection whose deadline passed, then waits for the earliest one left. */
static void on_deadline_timer(uv_timer_t *timer)
{
    casgi_server_t *server = timer->data;
    uint64_t now = uv_now(server->loop);
    uint64_t next = 0;
    server->deadline_due = 0;
    for (unsigned i = 0; i < server->num_deadline_lists; i++) {
        casgi__list_t *head = &server->deadlines[i].conns;
        while (!casgi__list_empty(head)) {
            casgi__conn_t *conn = container_of(head->next, casgi__conn_t, deadline_node);
            if (conn->deadline > now) {
                if (next == 0 || conn->deadline < next)
                    next = conn->deadline;
                break;
            }
            expire(conn); /* it leaves the list; a deadline it sets anew lies in the future */
        }
    }
    if (next != 0 && (server->deadline_due == 0 || server->deadline_due > next))
        arm(server, now, next);
}

/* ---- closing ---------------------------------------------------------------------------- */

static void on_shutdown_sent(uv_shutdown_t *req, int status)
{
    casgi__conn_t *conn = req->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED)
        casgi__conn_close(conn);
}

static void start_linger(casgi__conn_t *conn)
{
    if (conn->lingering || conn->closing)
        return;
    /* Lingering protects a response from the reset that unread input turns a close into. With
     * nothing unread and nothing more coming, a plain close sends the same FIN after the data,
     * without the shutdown, the poll changes and the wait for the client's FIN. */
    if (conn->peer_done && casgi__buf_size(&conn->rbuf) == 0) {
        casgi__conn_close(conn);
        return;
    }
    conn->lingering = 1;
    conn->close_after_flush = 0;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL || uv_shutdown(req, &conn->io.stream, on_shutdown_sent) != 0) {
        free(req);
        casgi__conn_close(conn);
        return;
    }
    req->data = conn;
    /* Keep reading so unread request bytes do not turn our close into a reset that destroys the
     * response before the client read it. */
    casgi__conn_read_start(conn);
    casgi__conn_set_deadline(conn, LINGER_MS);
}

void casgi__conn_close_after_flush(casgi__conn_t *conn)
{
    if (conn->closing || conn->lingering)
        return;
    conn->close_after_flush = 1;
    casgi__conn_flush_later(conn);
}

static void on_handle_closed(uv_handle_t *handle)
{
    casgi__conn_t *conn = handle->data;
    casgi_server_t *server = conn->server;
    casgi__buf_t *bufs[] = {&conn->rbuf, &conn->wbuf, &conn->inflight};
    for (size_t i = 0; i < ARRAY_SIZE(bufs); i++) {
        casgi__buf_clear(bufs[i]);
        casgi__buf_release(&server->pool, bufs[i]);
    }
    casgi__list_remove(&conn->node);
    casgi__pool_give(&server->conn_states, conn);
    casgi__server_conn_closed(server, NULL);
}

void casgi__conn_close(casgi__conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = 1;
    if (conn->flush_queued) {
        casgi__list_remove(&conn->flush_node);
        conn->flush_queued = 0;
    }
    const casgi__proto_t *proto = conn->proto;
    conn->proto = NULL;
    if (proto && proto->on_close)
        proto->on_close(conn);
    conn->proto_data = NULL;
    casgi__conn_clear_deadline(conn);
    uv_close(&conn->io.handle, on_handle_closed);
}
