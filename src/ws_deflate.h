#ifndef CASGI_WS_DEFLATE_H
#define CASGI_WS_DEFLATE_H

#include "buf.h"

/*
 * permessage-deflate (RFC 7692) for websocket.c: negotiation from the client's offer and the
 * per-connection compressor and decompressor (zlib raw deflate). Knows nothing of frames.
 */

/* What was agreed for one connection. */
typedef struct casgi__ws_deflate_params_s {
    int server_no_context_takeover;
    int client_no_context_takeover;
    int server_max_window_bits; /* 9..15: what we compress with */
    int client_max_window_bits; /* 9..15: what the client compresses with (we inflate with 15
                                   unless it was limited) */
} casgi__ws_deflate_params_t;

/*
 * Reads a Sec-WebSocket-Extensions request header value (possibly several offers, comma
 * separated, each with ;-parameters) and accepts the first permessage-deflate offer we can honour,
 * given our own window bits (9..15). On acceptance returns 1, fills *params and writes the
 * response extension value (e.g. "permessage-deflate; server_no_context_takeover") into
 * `response` (NUL-terminated, at most `size` bytes). Returns 0 when no offer is acceptable
 * (including malformed parameters, which RFC 7692 says to decline).
 */
int casgi__ws_deflate_negotiate(casgi_bytes_t offer, int our_window_bits,
                                casgi__ws_deflate_params_t *params, char *response, size_t size);

typedef struct casgi__ws_deflate_s casgi__ws_deflate_t;

/* 0, or CASGI_ENOMEM. mem_level is zlib's 1..9. */
int casgi__ws_deflate_new(const casgi__ws_deflate_params_t *params, int mem_level,
                          casgi__ws_deflate_t **out);
void casgi__ws_deflate_free(casgi__ws_deflate_t *d);

/* Compresses one whole message payload, appending to `out` (without the trailing 00 00 ff ff, as
 * RFC 7692 7.2.1 requires). Resets the context afterwards when no_context_takeover applies.
 * 0 or CASGI_ENOMEM. */
int casgi__ws_deflate_compress(casgi__ws_deflate_t *d, const void *in, size_t len,
                               casgi__buf_t *out);

/* Decompresses one whole received message payload (RSV1 set), appending to `out`. Returns 0,
 * CASGI_ELENGTH when the output would exceed `max` bytes (the caller closes with 1009; stop
 * before inflating everything: a zip bomb must not be buffered whole), or CASGI_EEVENT for
 * corrupt data (the caller closes with 1007... RFC says 1002/1007; we use 1007). */
int casgi__ws_deflate_decompress(casgi__ws_deflate_t *d, const void *in, size_t len,
                                 size_t max, casgi__buf_t *out);

#endif
