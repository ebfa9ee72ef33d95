#ifndef CASGI_WEBSOCKET_H
#define CASGI_WEBSOCKET_H

#include "conn.h"

/*
 * WebSocket (RFC 6455 with wslay, permessage-deflate with zlib) behind the ASGI websocket scope.
 *
 * http1.c calls casgi__websocket_takeover() for a GET whose head asks for "Upgrade: websocket".
 * `scope` is the request's http scope (borrowed for the call: everything needed is copied) and
 * the connection's rbuf holds whatever the client sent after the head. From then on the
 * connection is websocket.c's: the handshake is checked (400 or 426 with
 * Sec-WebSocket-Version: 13 on failure), the app gets a websocket scope and websocket.connect,
 * and its accept/close/denial decides what the client sees. Returns 0 when it took the
 * connection (the caller must not touch it again), or CASGI_ENOMEM.
 */
int casgi__websocket_takeover(casgi__conn_t *conn, const casgi_scope_t *scope);

/* 1 when a request head asks for a websocket upgrade (GET, Upgrade: websocket, Connection:
 * upgrade). */
int casgi__websocket_is_upgrade(const casgi_scope_t *scope);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 characters plus NUL in `out`. */
void casgi__websocket_accept_key(casgi_bytes_t key, char out[29]);

#endif
