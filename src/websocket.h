#ifndef CASGI_WEBSOCKET_H
#define CASGI_WEBSOCKET_H

#include "conn.h"
#include "ws_transport.h"

/*
 * WebSocket (RFC 6455 framing in ws_frame.c, permessage-deflate with zlib) behind the ASGI
 * websocket scope, over any carrier that implements casgi__ws_transport_t: an HTTP/1.1
 * connection taken over after "Upgrade: websocket", or an HTTP/2 stream opened by an extended
 * CONNECT with ":protocol websocket" (RFC 8441).
 *
 * The handshake is checked (426 with Sec-WebSocket-Version: 13 for another version; over
 * HTTP/1.1 also 400 for a bad Sec-WebSocket-Key), the app gets a websocket scope and
 * websocket.connect, and its accept (101, or 200 over HTTP/2), close (403) or denial response
 * decides what the client sees. After an accept the carrier's bytes, both ways, are the WebSocket
 * byte stream.
 */
typedef struct ws_s casgi__websocket_t;

/*
 * Starts a WebSocket session on a carrier for a request that asked for one. `scope` is the
 * request's http scope (borrowed for the call: everything needed is copied; http_version is
 * kept, scheme becomes "ws"); tr->input(t) holds whatever the client sent after the request.
 *
 * On success *out is set before the first call to the carrier, and the carrier must report its
 * events with the functions below until it has called casgi__websocket_on_close(). The app starts
 * inside this call and may answer at once, so any transport operation may run before it returns:
 * respond/write/finish (a refusal, an accept, a denial) and even abort() (an app that fails in
 * mid-denial). A carrier whose abort() reports on_close from inside must therefore be able to
 * route that event to *out already (pass the final home of the pointer as `out`); after such an
 * on_close, *out must not be used again. On failure nothing reached the carrier and *out is
 * untouched. 0 or CASGI_ENOMEM.
 */
int casgi__websocket_open(casgi_server_t *server, const casgi__ws_transport_t *tr, void *t,
                          const casgi_scope_t *scope, casgi__websocket_t **out);

/* tr->input() grew. */
void casgi__websocket_on_read(casgi__websocket_t *w);
/* tr->buffered() fell (below cfg.high_water_mark, or may have: a spare call is harmless). */
void casgi__websocket_on_drain(casgi__websocket_t *w);
/* The peer went away without a clean end (EOF, reset, RST_STREAM); on_close follows. */
void casgi__websocket_on_read_error(casgi__websocket_t *w, int status);
/* The deadline set with tr->set_deadline() passed. */
void casgi__websocket_on_timeout(casgi__websocket_t *w);
/* The server began a graceful shutdown: an open socket gets close 1012. */
void casgi__websocket_on_shutdown(casgi__websocket_t *w);
/* The carrier is gone: called exactly once, last; websocket.c never touches tr/t again and `w`
 * may be freed inside this call. */
void casgi__websocket_on_close(casgi__websocket_t *w);

/*
 * The HTTP/1.1 carrier: http1.c calls this for a GET whose head asks for "Upgrade: websocket",
 * with the connection's rbuf holding whatever the client sent after the head. The connection's
 * protocol becomes websocket.c's. Returns 0 when it took the connection (the caller must not
 * touch it again), or CASGI_ENOMEM.
 */
int casgi__websocket_takeover(casgi__conn_t *conn, const casgi_scope_t *scope);

/* 1 when a request head asks for a websocket upgrade (GET, Upgrade: websocket, Connection:
 * upgrade). */
int casgi__websocket_is_upgrade(const casgi_scope_t *scope);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 characters plus NUL in `out`. */
void casgi__websocket_accept_key(casgi_bytes_t key, char out[29]);

#endif
