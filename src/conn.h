#ifndef CASGI_CONN_H
#define CASGI_CONN_H

#include <netinet/in.h>

#include "buf.h"
#include "proto.h"
#include "server.h"

/*
 * One accepted socket: its handle, the input buffer, the output buffers, one deadline, and the
 * close sequence. Memory is released after the handle closed (libuv's rule), never inside a
 * callback that came from the connection.
 */
struct casgi__conn_s {
    casgi__stream_t io;
    casgi_server_t *server;
    casgi__list_t node;       /* server->conns */
    casgi__list_t flush_node; /* server->flushes while output waits for the end of the turn */

    const casgi__proto_t *proto;
    void *proto_data;

    casgi__buf_t rbuf;     /* read, not yet consumed by the protocol */
    casgi__buf_t wbuf;     /* output gathered this turn */
    casgi__buf_t inflight; /* owned by the uv_write_t while `writing` */

    unsigned reading : 1;
    unsigned writing : 1;
    unsigned closing : 1;
    unsigned lingering : 1; /* output done, FIN sent, discarding input until EOF or timeout */
    unsigned close_after_flush : 1;
    unsigned flush_queued : 1;
    unsigned peer_done : 1; /* the client said it sends nothing more: closing needs no linger */
    uint64_t deadline;           /* loop time at which on_timeout fires; 0 = none */
    casgi__list_t deadline_node; /* in the server's list for this deadline's duration */

    /* scope addresses, formatted once per connection */
    casgi_addr_t client;
    casgi_addr_t local;
    const char *scheme;
    char client_host[INET6_ADDRSTRLEN];
    char local_host[INET6_ADDRSTRLEN];
};

/* Allocates a connection and initialises its socket handle of the listener's kind. */
int casgi__conn_new(casgi_server_t *server, int is_pipe, casgi__conn_t **out);
/* For a connection whose accept failed: closes the handles and frees it. */
void casgi__conn_discard(casgi__conn_t *conn);
/*
 * Fills client/local addresses (TCP) or the Unix form (path, -1), then registers with the server.
 * local_host (with local_port) is the listener's own address when it is bound to one address, so
 * no system call asks the kernel what is known already; NULL asks it.
 */
void casgi__conn_accepted(casgi__conn_t *conn, const char *unix_path, const char *local_host,
                          int local_port);
/* The numeric host and the port of an IPv4 or IPv6 address ("" and 0 for anything else). */
void casgi__format_addr(const struct sockaddr_storage *ss, char *host, size_t size, int *port);
void casgi__conn_set_proto(casgi__conn_t *conn, const casgi__proto_t *proto, void *data);

void casgi__conn_read_start(casgi__conn_t *conn);
void casgi__conn_read_stop(casgi__conn_t *conn);

/* Bytes written by the protocol but not yet acknowledged by the kernel. */
static inline size_t casgi__conn_buffered(const casgi__conn_t *conn)
{
    return casgi__buf_size(&conn->wbuf) + casgi__buf_size(&conn->inflight);
}
/* The protocol appended to conn->wbuf: write it at the end of this loop turn. */
void casgi__conn_flush_later(casgi__conn_t *conn);
/* Writes wbuf now (uv_try_write, then uv_write for the rest). */
void casgi__conn_flush(casgi__conn_t *conn);

/*
 * The protocol's one deadline per connection: on_timeout fires `ms` from now unless the deadline
 * is set again or cleared first. One server timer serves every connection (see
 * casgi__deadlines_t); an idle connection carries a list node, not a uv_timer_t.
 */
void casgi__conn_set_deadline(casgi__conn_t *conn, uint64_t ms);
void casgi__conn_clear_deadline(casgi__conn_t *conn);
/* Makes room at the end of wbuf (a pool block first). 0 or CASGI_ENOMEM. */
static inline int casgi__conn_reserve_output(casgi__conn_t *conn, size_t extra)
{
    casgi__buf_t *w = &conn->wbuf;
    if (CASGI_LIKELY(w->cap - w->len >= extra))
        return 0;
    return casgi__buf_reserve_pooled(&conn->server->pool, w, extra);
}

/*
 * Appends to the output gathered this turn (written at its end). An empty write may pass a NULL
 * pointer. 0 or CASGI_ENOMEM.
 */
static inline int casgi__conn_write(casgi__conn_t *conn, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (casgi__conn_reserve_output(conn, len))
        return CASGI_ENOMEM;
    memcpy(conn->wbuf.base + conn->wbuf.len, data, len);
    conn->wbuf.len += len;
    return 0;
}

/* Closes at once; pending output is dropped (an abort). Safe to call more than once. */
void casgi__conn_close(casgi__conn_t *conn);
/* Writes what is pending, sends FIN, drains input briefly, then closes (lingering close), so the
 * client reads the whole response even when it was still sending. */
void casgi__conn_close_after_flush(casgi__conn_t *conn);

#endif
