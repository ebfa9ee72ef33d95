#include "ws_frame.h"

int casgi__ws_frame_parse(const void *p, size_t n, casgi__ws_frame_t *f)
{
    const unsigned char *b = p;
    if (n < 2)
        return 0;
    unsigned len7 = b[1] & 0x7fu, masked = b[1] >> 7;
    size_t at = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    size_t need = at + (masked ? 4 : 0);
    if (n < need)
        return 0;
    uint64_t len = len7;
    if (len7 == 126) {
        len = (uint64_t)b[2] << 8 | b[3];
    } else if (len7 == 127) {
        len = 0;
        for (int k = 0; k < 8; k++)
            len = len << 8 | b[2 + k];
        if (len >> 63)
            return -1;
    }
    f->len = len;
    f->flags = b[0] & 0xf0u;
    f->opcode = b[0] & 0x0fu;
    f->masked = (unsigned char)masked;
    if (masked)
        memcpy(f->key, b + at, 4);
    else
        memset(f->key, 0, 4);
    f->header_len = (unsigned char)need;
    return (int)need;
}

size_t casgi__ws_frame_header(unsigned char out[CASGI__WS_MAX_SERVER_HEADER], unsigned first,
                              uint64_t len)
{
    out[0] = (unsigned char)first;
    if (len < 126) {
        out[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        return 4;
    }
    out[1] = 127;
    for (int k = 0; k < 8; k++)
        out[2 + k] = (unsigned char)(len >> (56 - 8 * k));
    return 10;
}

/*
 * x86-64's baseline vectors are 16 bytes; with AVX2 the same loop goes 32 bytes a step. The
 * dynamic loader picks the clone once (an ifunc), so a call costs what it did. Elsewhere, or with
 * a compiler without target_clones, the one portable version is built.
 */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define UNMASK_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef UNMASK_CLONES
#define UNMASK_CLONES
#endif

/*
 * The key, rotated to `phase`, is laid out twice over as the 8 bytes of one word: XOR with that
 * word unmasks 8 payload bytes whatever their position, and memcpy in and out of the word
 * compiles to plain (unaligned) loads and stores. The tail, under 8 bytes, goes byte by byte.
 */
UNMASK_CLONES
void casgi__ws_frame_unmask(void *dst, const void *src, size_t len, const unsigned char key[4],
                            unsigned phase)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    unsigned char k[4] = {key[phase & 3], key[(phase + 1) & 3], key[(phase + 2) & 3],
                          key[(phase + 3) & 3]};
    uint32_t k32;
    memcpy(&k32, k, 4);
    uint64_t k64 = (uint64_t)k32 << 32 | k32; /* the same 4 bytes twice, in either byte order */
    size_t i = 0;
    /* 64 bytes a turn: few branches per byte, and compilers turn it into two to four vector
     * operations */
    for (; len - i >= 64; i += 64) {
        uint64_t a, b, c, e, f, g, h, m;
        memcpy(&a, s + i, 8);
        memcpy(&b, s + i + 8, 8);
        memcpy(&c, s + i + 16, 8);
        memcpy(&e, s + i + 24, 8);
        memcpy(&f, s + i + 32, 8);
        memcpy(&g, s + i + 40, 8);
        memcpy(&h, s + i + 48, 8);
        memcpy(&m, s + i + 56, 8);
        a ^= k64;
        b ^= k64;
        c ^= k64;
        e ^= k64;
        f ^= k64;
        g ^= k64;
        h ^= k64;
        m ^= k64;
        memcpy(d + i, &a, 8);
        memcpy(d + i + 8, &b, 8);
        memcpy(d + i + 16, &c, 8);
        memcpy(d + i + 24, &e, 8);
        memcpy(d + i + 32, &f, 8);
        memcpy(d + i + 40, &g, 8);
        memcpy(d + i + 48, &h, 8);
        memcpy(d + i + 56, &m, 8);
    }
    for (; len - i >= 8; i += 8) {
        uint64_t v;
        memcpy(&v, s + i, 8);
        v ^= k64;
        memcpy(d + i, &v, 8);
    }
    for (; i < len; i++)
        d[i] = s[i] ^ k[i & 3];
}

int casgi__ws_frame_utf8(const void *p, size_t len, size_t *complete)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < len) {
        /* runs of ASCII, the common case, 8 bytes at a time */
        while (len - i >= 8) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (v & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i == len)
            break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* a lead byte, the number of continuation bytes, and the range of the first of them
         * (narrower after E0, ED, F0 and F4: no overlongs, surrogates or values over 10FFFF) */
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return -1;
        }
        /* the continuation bytes present must fit, even when the character is cut short */
        size_t have = len - i - 1 < n ? len - i - 1 : n;
        if (have >= 1 && (s[i + 1] < lo || s[i + 1] > hi))
            return -1;
        for (size_t k = 2; k <= have; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
        if (have < n) {
            *complete = i;
            return 0;
        }
        i += n + 1;
    }
    *complete = len;
    return 0;
}
