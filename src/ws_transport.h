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
 *
 * The rules both sides keep:
 * - No operation reports an event from inside itself, except abort() and finish(), which may
 *   report casgi__websocket_on_close() at once (the HTTP/1.1 carrier's abort() does).
 * - After abort(), websocket.c calls nothing more; after finish(), only buffered() and abort().
 *   on_close() comes last, exactly once, and may free the session.
 * - Events other than on_close may come at any time before it (also after finish()).
 */
typedef struct casgi__ws_transport_s {
    /* 1 for an HTTP/2 stream: no Sec-WebSocket-Key/Accept, an accept is a 200, not a 101. */
    int http2;

    /*
     * The answer to the handshake, at most once, before any write: `status` and every header
     * field in wire order. websocket.c passes the complete list, the server's defaults (server,
     * date, cfg.headers) included, so the carrier adds only its framing (HTTP/1.1: status line,
     * CRLFs; HTTP/2: :status, and lower-cased names, since app fields keep the app's case).
     * Fields are borrowed for the call. What websocket.c sends:
     * - accept: 101 (HTTP/1.1, with upgrade, connection and sec-websocket-accept) or 200
     *   (HTTP/2), then sec-websocket-protocol/-extensions when chosen, defaults, the app's fields.
     *   The carrier stays open both ways; frames follow through write().
     * - refusal (400, 403, 426 with sec-websocket-version: 13, 500): defaults, content-type,
     *   "connection: close" (HTTP/1.1 only) and an exact content-length; the body follows through
     *   write(), then finish().
     * - denial (the app's status 200-999 and fields): no content-length, transfer-encoding or
     *   connection from the app; "connection: close" over HTTP/1.1 only. The body follows through
     *   write() and ends with finish(): HTTP/1.1 delimits it by closing, HTTP/2 by END_STREAM. An
     *   app that fails in mid-body gets abort() instead (RST_STREAM over HTTP/2).
     * Over HTTP/2 websocket.c passes no connection-specific field (RFC 9113 8.2.2), so the
     * HEADERS can go out as given; they never end the stream by themselves.
     * 0, CASGI_ENOMEM or CASGI_EDISCONNECTED.
     */
    int (*respond)(void *t, int status, const casgi_header_t *headers, size_t num_headers);
    /* Appends bytes after the answer (frames, or a body); `data` is borrowed for the call. 0,
     * CASGI_ENOMEM, CASGI_EDISCONNECTED. */
    int (*write)(void *t, const void *data, size_t len);
    /* Optional (NULL: write() twice): the same for two pieces, a frame's header and its payload,
     * so a frame costs the carrier one call and one check for room. */
    int (*write2)(void *t, const void *a, size_t alen, const void *b, size_t blen);
    /* Output written but not yet taken by the peer (socket, or HTTP/2 flow control). Past
     * cfg.high_water_mark websocket.c holds the app's send callbacks and stops reading until
     * on_drain. */
    size_t (*buffered)(void *t);
    /* Output was appended: send it at the end of this loop turn. */
    void (*flush_later)(void *t);
    /*
     * Bytes received, not yet consumed (the stream's DATA over HTTP/2). websocket.c never
     * appends: it consumes with casgi__buf_consume, or drops everything with casgi__buf_clear
     * after a protocol error; the carrier learns how much went (to open its window) at the next
     * read_start().
     */
    casgi__buf_t *(*input)(void *t);
    /*
     * Input flow control: websocket.c calls one of the two at the end of every pass of its
     * engine (after each event), so they must be cheap and idempotent. read_stop() means "take
     * no more": stop reading the socket / withhold WINDOW_UPDATE. Neither comes after finish().
     */
    void (*read_start)(void *t);
    void (*read_stop)(void *t);
    /* One deadline per carrier: casgi__websocket_on_timeout fires `ms` from now unless set again
     * or cleared first. A deadline set before finish() stays armed; when it fires websocket.c
     * calls abort(). */
    void (*set_deadline)(void *t, uint64_t ms);
    void (*clear_deadline)(void *t);
    /* Ends at once, dropping pending output (TCP close / RST_STREAM CANCEL). May come at any time,
     * also during casgi__websocket_open() and after finish(). */
    void (*abort)(void *t);
    /* Ends after pending output (FIN and a lingering close / END_STREAM), then reports on_close.
     * Input that still comes is the carrier's to discard; HTTP/2 must not leave the peer stuck on
     * a closed window. */
    void (*finish)(void *t);
} casgi__ws_transport_t;

#endif
