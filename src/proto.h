#ifndef CASGI_PROTO_H
#define CASGI_PROTO_H

#include "internal.h"

typedef struct casgi__conn_s casgi__conn_t;

/*
 * What a protocol (http1, later http2 and websocket) implements for conn.c. conn.c knows sockets,
 * buffers and timers and nothing about HTTP; a protocol switch on a live connection swaps the
 * table and the state pointer (casgi__conn_set_proto), keeping the bytes already read.
 */
typedef struct casgi__proto_s {
    const char *name;
    /* New bytes were appended to conn->rbuf. */
    void (*on_read)(casgi__conn_t *conn);
    /* The peer closed (UV_EOF) or the socket failed. The connection closes right after. */
    void (*on_read_error)(casgi__conn_t *conn, int status);
    /* Output fell below the high-water mark after a write completed. */
    void (*on_drain)(casgi__conn_t *conn);
    /* The connection timer fired (the protocol chose what it means). */
    void (*on_timeout)(casgi__conn_t *conn);
    /* The server began a graceful shutdown: close when idle, else after the current work. */
    void (*on_shutdown)(casgi__conn_t *conn);
    /* The connection is closing; detach from it. Called exactly once. */
    void (*on_close)(casgi__conn_t *conn);
} casgi__proto_t;

#endif
