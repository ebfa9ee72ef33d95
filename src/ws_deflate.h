#ifndef CASGI_WS_DEFLATE_H
#define CASGI_WS_DEFLATE_H

#include "buf.h"

/*
 * permessage-deflate (RFC 7692) for websocket.c: negotiation from the client's offer and the
 * per-connection compressor and decompressor (zlib raw deflate). Knows nothing of frames.
 */

/* What was agreed for one connection. */
typedef struct casgi__ws_deflate_params_s {
    int server_no_context_takeover; /* we start every message with an empty window */
    int client_no_context_takeover; /* the client does; we drop our inflate window too */
    int server_max_window_bits;     /* 9..15: what we compress with */
    int client_max_window_bits;     /* 9..15: what we inflate with; never less than the client
                                       may use (15 unless the offer let us limit it) */
} casgi__ws_deflate_params_t;

/*
 * Reads a Sec-WebSocket-Extensions request header value (possibly several offers, comma
 * separated, each with ;-parameters, RFC 7230 tokens or quoted-strings with optional whitespace)
 * and accepts the first permessage-deflate offer we can honour, given our own window bits (9..15;
 * values outside are clamped). An offer with an unknown or duplicate parameter, a bad value, or a
 * syntax error is declined (RFC 7692 5.1) and the next one is tried; so is
 * server_max_window_bits=8, which zlib cannot produce.
 *
 * On acceptance returns 1, fills *params and writes the response extension value into `response`
 * (NUL-terminated, at most `size` bytes including the NUL; 128 is always enough):
 * "permessage-deflate", then "; server_no_context_takeover" and "; client_no_context_takeover"
 * when the client asked for them, "; server_max_window_bits=N" when the client sent that
 * parameter or our window is below 15, and "; client_max_window_bits=N" when the client offered
 * that parameter and we limit it below 15. Returns 0 when no offer is acceptable (or the response
 * does not fit); then *params is untouched and `response` is "" (when size > 0).
 */
int casgi__ws_deflate_negotiate(casgi_bytes_t offer, int our_window_bits,
                                casgi__ws_deflate_params_t *params, char *response, size_t size);

typedef struct casgi__ws_deflate_s casgi__ws_deflate_t;

/*
 * A compressor and a decompressor for one connection, with *params copied (window bits outside
 * 9..15 are clamped). mem_level is zlib's 1..9 (< 1 means zlib's default 8): deflate memory is
 * about 2^(w+2) + 2^(mem_level+9) bytes. zlib's state is allocated on first use and, with
 * no_context_takeover in that direction, released after every message, so an idle connection
 * costs sizeof the object only (see casgi__ws_deflate_memory()). 0, or CASGI_ENOMEM.
 */
int casgi__ws_deflate_new(const casgi__ws_deflate_params_t *params, int mem_level,
                          casgi__ws_deflate_t **out);
/* Releases everything; NULL is allowed. */
void casgi__ws_deflate_free(casgi__ws_deflate_t *d);

/*
 * Compresses one whole message payload, appending to `out` (without the trailing 00 00 ff ff, as
 * RFC 7692 7.2.1 requires; the empty message gives the single byte 0x00). Ends the context
 * afterwards when server_no_context_takeover applies. 0 or CASGI_ENOMEM; on failure `out` holds
 * what it held before and the next message starts with an empty window (always valid for the
 * peer, so the connection may go on).
 */
int casgi__ws_deflate_compress(casgi__ws_deflate_t *d, const void *in, size_t len,
                               casgi__buf_t *out);

/*
 * Decompresses one whole received message payload (RSV1 set), appending to `out`. `max` limits
 * the bytes this call appends: inflation stops as soon as the output would exceed it, so a zip
 * bomb is never buffered whole (`out` grows to at most `max` bytes more). An empty payload gives
 * an empty message. Ends the context afterwards when client_no_context_takeover applies.
 *
 * Returns 0, CASGI_ELENGTH when the message is longer than `max` (the caller closes with 1009),
 * CASGI_EEVENT for corrupt data, including a payload that does not end on a deflate block
 * boundary (the caller closes with 1007), or CASGI_ENOMEM. On failure `out` holds what it held
 * before, and the decompression context is lost: the connection must be closed.
 */
int casgi__ws_deflate_decompress(casgi__ws_deflate_t *d, const void *in, size_t len, size_t max,
                                 casgi__buf_t *out);

/* Bytes held for this connection now: the object plus zlib's current allocations. */
size_t casgi__ws_deflate_memory(const casgi__ws_deflate_t *d);

#endif
