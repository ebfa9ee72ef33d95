#ifndef CASGI_HTTP2_H
#define CASGI_HTTP2_H

#include "conn.h"

/* The client connection preface (RFC 9113 3.4): the listener's sniff compares against it. */
#define CASGI_HTTP2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define CASGI_HTTP2_PREFACE_LEN 24

/* Serves the connection as HTTP/2 from its first byte (prior knowledge). 0 or CASGI_ENOMEM. */
int casgi__http2_attach(casgi__conn_t *conn);

/* 1 when a SETTINGS payload (an h2c upgrade's HTTP2-Settings) is well-formed and in range. */
int casgi__http2_settings_valid(const uint8_t *payload, size_t len);

/*
 * Serves the connection as HTTP/2 after http1.c answered "101 Switching Protocols" to
 * "Upgrade: h2c" (RFC 7540 3.2): `settings` is the decoded HTTP2-Settings payload, and the
 * HTTP/1.1 request (scope borrowed for the call, complete `body`) becomes stream 1, half-closed.
 * rbuf holds what the client sent after the request (its preface). 0, or CASGI_EHEADER for bad
 * settings, or CASGI_ENOMEM; on failure the connection is untouched.
 */
int casgi__http2_upgrade(casgi__conn_t *conn, const casgi_scope_t *scope, const uint8_t *settings,
                         size_t settings_len, casgi_bytes_t body);

#endif
