#ifndef CASGI_WS_TRANSPORT_H
#define CASGI_WS_TRANSPORT_H

#include "buf.h"
#include "internal.h"

/*
 * What carries a WebSocket: an HTTP/1.1 connection taken over after "Upgrade: websocket"
 * (RFC 6455), or an HTTP/2 stream opened by an extended CONNECT with ":protocol websocket"
 * (RFC 8441). websocket.c speaks to its carrier only through this table, and the carrier reports
 * its events through the casgi__websocket_on_* functions (websocket.h). `t` is the carrier's own
 * pointer (the casgi__conn_t, or the HTTP/2 stream).
 */
typedef struct casgi__ws_transport_s {
    /* 1 for an HTTP/2 stream: no Sec-WebSocket-Key/Accept, an accept is a 200, not a 101. */
    int http2;

    /*
     * The answer to the handshake, once, before any write: `status` (101 or 200 to accept, else a
     * refusal or the app's denial response) and the header fields, in the case given (the HTTP/2
     * carrier lower-cases them). The carrier adds its own framing and the server's default headers
     * (server, date, cfg.headers); the caller leaves out content-length, transfer-encoding and
     * connection. For a response with a body (refusal, denial), the body follows through write()
     * and ends with finish(): HTTP/1.1 delimits it by closing, HTTP/2 by END_STREAM.
     * 0, CASGI_ENOMEM or CASGI_EDISCONNECTED.
     */
    int (*respond)(void *t, int status, const casgi_header_t *headers, size_t num_headers);
    /* Appends bytes after the answer (frames, or a body). 0, CASGI_ENOMEM, CASGI_EDISCONNECTED. */
    int (*write)(void *t, const void *data, size_t len);
    /* Output written but not yet taken by the peer (socket, or HTTP/2 flow control). */
    size_t (*buffered)(void *t);
    /* Output was appended: send it at the end of this loop turn. */
    void (*flush_later)(void *t);
    /* Bytes received, not yet consumed: websocket.c consumes from it with casgi__buf_consume. */
    casgi__buf_t *(*input)(void *t);
    /* Input flow control: stop/start taking more input (HTTP/2: withhold/give window). */
    void (*read_start)(void *t);
    void (*read_stop)(void *t);
    /* One deadline per carrier: casgi__websocket_on_timeout fires `ms` from now. */
    void (*set_deadline)(void *t, uint64_t ms);
    void (*clear_deadline)(void *t);
    /* Ends at once, dropping pending output (TCP close / RST_STREAM CANCEL). */
    void (*abort)(void *t);
    /* Ends after pending output (lingering close / END_STREAM). */
    void (*finish)(void *t);
} casgi__ws_transport_t;

#endif
