#ifndef CASGI_WS_FRAME_H
#define CASGI_WS_FRAME_H

#include "internal.h"

/*
 * RFC 6455 framing for websocket.c: the frame header both ways, unmasking, and the UTF-8 rule
 * text payloads and close reasons must keep. Pure functions over the caller's bytes: nothing is
 * allocated, and what a frame or a message means (sequencing, limits, close codes) is
 * websocket.c's business.
 */

enum {
    CASGI__WS_OP_CONTINUATION = 0x0,
    CASGI__WS_OP_TEXT = 0x1,
    CASGI__WS_OP_BINARY = 0x2,
    CASGI__WS_OP_CLOSE = 0x8,
    CASGI__WS_OP_PING = 0x9,
    CASGI__WS_OP_PONG = 0xa,
};

/* The first header byte's flags: FIN, and RSV1 (permessage-deflate's "compressed"). */
#define CASGI__WS_FIN 0x80u
#define CASGI__WS_RSV1 0x40u
#define CASGI__WS_RSV2 0x20u
#define CASGI__WS_RSV3 0x10u

/* The largest header: 2 bytes, a 64-bit length, a masking key. */
#define CASGI__WS_MAX_HEADER 14
/* The largest header a server writes (unmasked). */
#define CASGI__WS_MAX_SERVER_HEADER 10

/* One frame header as received. */
typedef struct casgi__ws_frame_s {
    uint64_t len;             /* payload length */
    unsigned char key[4];     /* the masking key; zero when `masked` is 0 */
    unsigned char flags;      /* CASGI__WS_FIN and the RSV bits, as on the wire */
    unsigned char opcode;     /* 0x0..0xf, unchecked */
    unsigned char masked;     /* the MASK bit */
    unsigned char header_len; /* 2..14 */
} casgi__ws_frame_t;

/*
 * Reads the frame header at the start of p[0, n). Returns its length (2..14) and fills *f; 0 when
 * n is too short for the whole header (*f untouched: call again with more bytes); -1 when the
 * 64-bit length has its most significant bit set (RFC 6455 5.2: a protocol error). Nothing else
 * is checked.
 */
int casgi__ws_frame_parse(const void *p, size_t n, casgi__ws_frame_t *f);

/*
 * Writes the header of an unmasked frame (what a server sends) with first byte `first` (FIN, RSV
 * bits and opcode) and a payload of `len` bytes into `out`. Returns its length: 2, 4 or 10.
 */
size_t casgi__ws_frame_header(unsigned char out[CASGI__WS_MAX_SERVER_HEADER], unsigned first,
                              uint64_t len);

/*
 * Unmasks (or masks: it is the same XOR) `len` bytes from `src` into `dst`, which may be the same
 * buffer or must not overlap it. `phase` is the position of src[0] in its frame's payload modulo 4,
 * so a payload that arrives in pieces can be unmasked piece by piece. Works 8 bytes at a time
 * through memcpy, so neither pointer needs any alignment.
 */
void casgi__ws_frame_unmask(void *dst, const void *src, size_t len, const unsigned char key[4],
                            unsigned phase);

/*
 * Checks UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) in s[0, len)
 * that may stop in the middle of a character, as a fragment of a message may. Returns -1 when the
 * bytes cannot be the start of valid UTF-8; otherwise 0, and *complete is the length of the part
 * made of whole characters: what follows it (at most 3 bytes) is a valid but unfinished
 * character, whose check must be redone once more bytes came. A whole message is valid when the
 * result is 0 and *complete == len.
 */
int casgi__ws_frame_utf8(const void *s, size_t len, size_t *complete);

/*
 * 1 when a peer may send `code` in a close frame (RFC 6455 7.4 and IANA's registry: 1012 service
 * restart, 1013 try again later, 1014 bad gateway; 1004 is reserved and 1005, 1006 and 1015 never
 * go on the wire), or it is in 3000-4999, for libraries and applications.
 */
static inline int casgi__ws_frame_valid_close_code(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* 1 when s[0, len) is whole, valid UTF-8. */
static inline int casgi__ws_frame_valid_utf8(const void *s, size_t len)
{
    size_t complete;
    return casgi__ws_frame_utf8(s, len, &complete) == 0 && complete == len;
}

#endif
